// Argument binding for the built-in callables.
#include "args.h"

namespace tk::jinja::detail {

Args::Args(std::string function, const CallArgs& call, std::initializer_list<const char*> names, size_t required)
    : function_(std::move(function)), names_(names.begin(), names.end()), values_(names.size()) {
  if (names_.empty() && (!call.args.empty() || !call.kwargs.empty())) {
    if (call.args.empty()) type_error(function_ + "() takes no keyword arguments");
    type_error(function_ + "() takes no arguments (" + std::to_string(call.args.size()) + " given)");
  }
  if (call.args.size() > names_.size()) {
    type_error(function_ + "() takes at most " + std::to_string(names_.size()) + " argument" +
               (names_.size() == 1 ? "" : "s") + " (" + std::to_string(call.args.size()) + " given)");
  }
  for (size_t k = 0; k < call.args.size(); ++k) values_[k] = call.args[k];
  for (const auto& [key, value] : call.kwargs) {
    size_t k = 0;
    while (k < names_.size() && names_[k] != key) ++k;
    if (k == names_.size()) type_error(function_ + "() got an unexpected keyword argument '" + key + "'");
    if (values_[k]) type_error(function_ + "() got multiple values for argument '" + key + "'");
    values_[k] = value;
  }
  for (size_t k = 0; k < required; ++k) {
    if (!values_[k]) type_error(function_ + "() missing 1 required positional argument: '" + names_[k] + "'");
  }
}

int64_t expect_int(const Value& v, const std::string& what) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_undefined()) raise_undefined(v);
  (void)what;
  type_error("'" + type_name(v) + "' object cannot be interpreted as an integer");
}

const std::string& expect_string(const Value& v, const std::string& what) {
  if (v.is_string()) return v.str();
  if (v.is_undefined()) raise_undefined(v);
  type_error(what + " must be str, not " + type_name(v));
}

int64_t Args::get_int(size_t i, int64_t fallback) const {
  if (!values_[i] || values_[i]->is_none()) return fallback;
  return expect_int(*values_[i], function_ + "() argument '" + names_[i] + "'");
}

bool Args::get_bool(size_t i, bool fallback) const { return values_[i] ? truthy(*values_[i]) : fallback; }

std::string Args::get_string(size_t i, const std::string& fallback) const {
  if (!values_[i]) return fallback;
  return expect_string(*values_[i], function_ + "() argument '" + names_[i] + "'");
}

}  // namespace tk::jinja::detail
