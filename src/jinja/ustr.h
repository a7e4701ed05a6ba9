// UTF-8 and Python str semantics: templates index, slice, case-map and classify strings by code
// point as CPython does, while tokamak keeps every string as UTF-8 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/core.h"

namespace tk::jinja::detail {

// Invalid bytes decode to U+FFFD; input from JSON is always valid.
std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);
using ::tk::append_utf8;  // core
int64_t count_code_points(std::string_view s);

// Python's str predicates for one character.
bool py_isspace(char32_t c);
bool py_isprintable(char32_t c);
bool py_isalpha(char32_t c);
bool py_isdecimal(char32_t c);
bool py_isdigit(char32_t c);
bool py_isnumeric(char32_t c);
bool py_islower(char32_t c);
bool py_isupper(char32_t c);
bool py_iscased(char32_t c);
char32_t py_lower(char32_t c);
char32_t py_upper(char32_t c);
char32_t py_title(char32_t c);

std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

}  // namespace tk::jinja::detail
