# tk_module(): one module = one static library with one public header.
#
# The dependency direction of ../shared/DESIGN.md is enforced by include paths: each module's
# public header is exposed through its own folder under build/inc/<module>, and a target sees
# only the folders of the modules it links. Including a header of a module you do not link
# fails to compile.
#
#   tk_module(NAME core HEADER core.h SOURCES a.cpp b.cpp DEPS ... [PRIVATE_DEPS ...])
# makes target tokamak_<NAME>; its header is included as "<NAME>/<HEADER>".
function(tk_module)
  cmake_parse_arguments(M "" "NAME;HEADER" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(inc ${CMAKE_BINARY_DIR}/inc/${M_NAME})
  file(MAKE_DIRECTORY ${inc}/${M_NAME})
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/${M_HEADER} ${inc}/${M_NAME}/${M_HEADER} SYMBOLIC)
  if(M_SOURCES)
    add_library(tokamak_${M_NAME} STATIC ${M_SOURCES})
    target_include_directories(tokamak_${M_NAME} PUBLIC ${inc} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(tokamak_${M_NAME} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
    target_compile_options(tokamak_${M_NAME} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
  else()
    add_library(tokamak_${M_NAME} INTERFACE)
    target_include_directories(tokamak_${M_NAME} INTERFACE ${inc})
    target_link_libraries(tokamak_${M_NAME} INTERFACE ${M_DEPS})
  endif()
endfunction()
