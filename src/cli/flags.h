// Flag values parsed, not coerced: a number flag takes the whole text as a number of its type
// and range, or fails with one message naming the flag ("--seed: '-5' ... must be at least 0",
// "--max-tokens: 'abc' is not a number"), instead of CLI11's conversions, which wrap negative
// numbers into unsigned ones and print ranges as 309-digit doubles. Also the value choices
// (--device cpu|cuda|auto) and the argv clean-up the parser needs.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tk::cli {

// The whole of `text` as a whole number in [lo, hi], or the reason it is not one (a sentence
// without the flag's name).
struct ParsedInt {
  bool ok = false;
  __int128 value = 0;
  std::string error;
};
ParsedInt parse_int(const std::string& text, __int128 lo, __int128 hi);

// The whole of `text` as a finite number within the bounds (open or closed at each end).
struct RealRange {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
};
struct ParsedReal {
  bool ok = false;
  double value = 0;
  std::string error;
};
ParsedReal parse_real(const std::string& text, const RealRange& range);

// An option whose value goes through `set`, which returns "" or why the value is refused;
// errors read "--flag: why". The option's first long name is the one errors use.
CLI::Option* add_checked(CLI::App& app, const std::string& names, std::function<std::string(const std::string&)> set,
                         const std::string& help);

std::string integer_text(__int128 v);

template <typename T>
CLI::Option* add_int(CLI::App& app, const std::string& names, T& target, const std::string& help,
                     __int128 lo = std::numeric_limits<T>::min(), __int128 hi = std::numeric_limits<T>::max()) {
  return add_checked(
             app, names,
             [&target, lo, hi](const std::string& s) {
               ParsedInt p = parse_int(s, lo, hi);
               if (p.ok) target = static_cast<T>(p.value);
               return p.error;
             },
             help)
      ->type_name("INT");
}

template <typename T>
CLI::Option* add_int(CLI::App& app, const std::string& names, std::optional<T>& target, const std::string& help,
                     __int128 lo = std::numeric_limits<T>::min(), __int128 hi = std::numeric_limits<T>::max()) {
  return add_checked(
             app, names,
             [&target, lo, hi](const std::string& s) {
               ParsedInt p = parse_int(s, lo, hi);
               if (p.ok) target = static_cast<T>(p.value);
               return p.error;
             },
             help)
      ->type_name("INT");
}

template <typename T>
struct Unwrap {
  using type = T;
};
template <typename T>
struct Unwrap<std::optional<T>> {
  using type = T;
};

template <typename T>  // float, double, std::optional<float>
CLI::Option* add_real(CLI::App& app, const std::string& names, T& target, const std::string& help, RealRange range = {}) {
  return add_checked(
             app, names,
             [&target, range](const std::string& s) {
               ParsedReal p = parse_real(s, range);
               if (p.ok) target = static_cast<typename Unwrap<T>::type>(p.value);
               return p.error;
             },
             help)
      ->type_name("FLOAT");
}

// One of `choices` (case-insensitive), shown as "a|b|c" in the help.
template <typename T>
CLI::Option* add_choice(CLI::App& app, const std::string& names, T& target, const std::vector<std::pair<std::string, T>>& choices,
                        const std::string& help) {
  std::string list;
  for (const auto& [name, value] : choices) list += (list.empty() ? "" : "|") + name;
  return add_checked(
             app, names,
             [&target, choices, list](const std::string& s) -> std::string {
               std::string lower = s;
               for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
               for (const auto& [name, value] : choices)
                 if (name == lower) {
                   target = value;
                   return "";
                 }
               return "'" + s + "' is not one of " + list;
             },
             help)
      ->type_name(list);
}

// argv as the parser should see it: "--flag=" (an empty value) becomes "--flag" "" so that it
// does not take the next argument as its value; vLLM's "-tp" becomes "--tensor-parallel-size".
std::vector<std::string> normalize_args(int argc, char** argv);

}  // namespace tk::cli
