// Python's str methods over UTF-8 strings, for `"x".strip()` in templates and for the filters
// that Jinja writes in terms of them (trim, title, capitalize, replace, ...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "value.h"

namespace tk::jinja::detail {

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit, bool from_right = false);
std::string py_title(std::string_view s);
std::string py_capitalize(std::string_view s);
// Fails with a LimitError once the result passes max_bytes.
std::string py_replace(std::string_view s, std::string_view old, std::string_view replacement, int64_t count,
                       int64_t max_bytes = INT64_MAX);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);
std::string html_escape(std::string_view s);  // markupsafe.escape

// The bound method `name` of a str value, or nullopt when str has no such attribute.
std::optional<Value> str_method(const Value& self, const std::string& name);

}  // namespace tk::jinja::detail
