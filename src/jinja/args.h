// Binding a call's positional and keyword arguments to a Python-style signature, with CPython's
// TypeError wording, for filters, tests, globals and methods.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "value.h"

namespace tk::jinja::detail {

class Args {
 public:
  // `names` lists the parameters after the bound input; the first `required` must be given.
  Args(std::string function, const CallArgs& call, std::initializer_list<const char*> names, size_t required = 0);
  bool has(size_t i) const { return values_[i].has_value(); }
  const Value& get(size_t i) const { return *values_[i]; }
  Value get_or(size_t i, Value fallback) const { return values_[i] ? *values_[i] : std::move(fallback); }
  // Typed accessors raising TypeError with the parameter's name.
  int64_t get_int(size_t i, int64_t fallback) const;
  bool get_bool(size_t i, bool fallback) const;
  std::string get_string(size_t i, const std::string& fallback) const;
  const std::string& function() const { return function_; }

 private:
  std::string function_;
  std::vector<std::string> names_;
  std::vector<std::optional<Value>> values_;
};

// An integer argument (bool counts, as in Python); TypeError naming `what` otherwise.
int64_t expect_int(const Value& v, const std::string& what);
const std::string& expect_string(const Value& v, const std::string& what);

}  // namespace tk::jinja::detail
