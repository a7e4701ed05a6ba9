# Third-party libraries. Found through CMAKE_PREFIX_PATH as well as the system, so that an
# air-gapped host can build from Debian packages unpacked into a folder
# (scripts/offline_deps.sh). PCRE2 and utf8proc are linked statically when the archive exists,
# so the binary does not need their runtime packages.
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(ZLIB REQUIRED)

function(tk_find_c_library target header)
  cmake_parse_arguments(L "" "" "NAMES" ${ARGN})
  find_path(${target}_INCLUDE_DIR ${header} REQUIRED)
  find_library(${target}_LIBRARY NAMES ${L_NAMES} REQUIRED)
  add_library(tk::${target} INTERFACE IMPORTED GLOBAL)
  target_include_directories(tk::${target} INTERFACE ${${target}_INCLUDE_DIR})
  target_link_libraries(tk::${target} INTERFACE ${${target}_LIBRARY})
  message(STATUS "tokamak: ${target}: ${${target}_LIBRARY}")
endfunction()

tk_find_c_library(pcre2 pcre2.h NAMES libpcre2-8.a pcre2-8)
target_compile_definitions(tk::pcre2 INTERFACE PCRE2_STATIC)
tk_find_c_library(utf8proc utf8proc.h NAMES libutf8proc.a utf8proc)
target_compile_definitions(tk::utf8proc INTERFACE UTF8PROC_STATIC)

# Boost.Beast/Asio for src/http, header-only: no compiled Boost library is linked. Debian's
# libboost1.81-dev ships a relocatable BoostConfig.cmake, so an unpacked bundle works too.
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED CONFIG COMPONENTS headers)  # the imported target Boost::headers
message(STATUS "tokamak: boost headers: ${Boost_DIR}")
