// Helpers shared by the filter files and the registry that names every built-in filter.
#pragma once

#include <functional>
#include <string>

#include "args.h"
#include "interpreter.h"

namespace tk::jinja::detail {

// Jinja's make_attrgetter: "a.b.0" looked up part by part with item-first lookup; `fallback`
// replaces an Undefined result when given.
std::function<Value(const Value&)> attr_getter(Interpreter& interp, const Value& attribute,
                                               const std::optional<Value>& fallback = std::nullopt, bool lower = false);
Value ignore_case(const Value& v);  // lower-cases strings, for case-insensitive sorting
Value generator(std::vector<Value> items, std::string type_name = "generator");

// Registration: each filters_*.cpp adds its own.
using FilterTable = std::unordered_map<std::string, FilterFn>;
void add_text_filters(FilterTable& table);
void add_sequence_filters(FilterTable& table);
void add_misc_filters(FilterTable& table);

}  // namespace tk::jinja::detail
