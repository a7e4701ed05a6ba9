// The built-in tests of `x is name(args)` (jinja2.tests), with Python's isinstance semantics:
// bool is a number and an int subclass but not `integer`; Undefined is iterable, a sequence and
// callable, as Jinja's Undefined class makes it.
#include "filters.h"
#include "ustr.h"

namespace tk::jinja::detail {

namespace {

const Value& arg(const char* name, CallArgs& c) {
  if (c.args.empty()) {
    for (const auto& [k, v] : c.kwargs)
      if (k == "other" || k == "value" || k == "seq" || k == "num") return v;
    type_error(std::string(name) + "() missing 1 required positional argument");
  }
  return c.args[0];
}

bool t_defined(Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(Interpreter&, const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(Interpreter&, const Value& v, CallArgs&) { return v.is_bool(); }
bool t_true(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_false(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_integer(Interpreter&, const Value& v, CallArgs&) { return v.is_int(); }
bool t_float(Interpreter&, const Value& v, CallArgs&) { return v.is_float(); }
bool t_number(Interpreter&, const Value& v, CallArgs&) { return v.is_number(); }
bool t_string(Interpreter&, const Value& v, CallArgs&) { return v.is_string(); }
bool t_mapping(Interpreter&, const Value& v, CallArgs&) { return v.is_dict(); }
bool t_escaped(Interpreter&, const Value& v, CallArgs&) { return v.is_markup(); }
bool t_sequence(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined();
}
bool t_iterable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined() || v.as<Generator>() != nullptr;
}
bool t_callable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined() || (v.is_object() && v.obj().callable());
}

bool t_lower(Interpreter&, const Value& v, CallArgs&) {
  bool cased = false;
  for (char32_t c : decode_utf8(to_str(v))) {
    if (py_isupper(c)) return false;
    cased = cased || py_islower(c);
  }
  return cased;
}

bool t_upper(Interpreter&, const Value& v, CallArgs&) {
  bool cased = false;
  for (char32_t c : decode_utf8(to_str(v))) {
    if (py_islower(c)) return false;
    cased = cased || py_isupper(c);
  }
  return cased;
}

Value mod(Interpreter& interp, const Value& v, const Value& n) { return binary_op(BinaryOp::kMod, v, n, interp); }

bool t_even(Interpreter& i, const Value& v, CallArgs&) { return equals(mod(i, v, Value::integer(2)), Value::integer(0)); }
bool t_odd(Interpreter& i, const Value& v, CallArgs&) { return equals(mod(i, v, Value::integer(2)), Value::integer(1)); }
bool t_divisibleby(Interpreter& i, const Value& v, CallArgs& c) {
  return equals(mod(i, v, arg("divisibleby", c)), Value::integer(0));
}

bool t_eq(Interpreter&, const Value& v, CallArgs& c) { return compare_values(CompareOp::kEq, v, arg("eq", c)); }
bool t_ne(Interpreter&, const Value& v, CallArgs& c) { return compare_values(CompareOp::kNe, v, arg("ne", c)); }
bool t_lt(Interpreter&, const Value& v, CallArgs& c) { return compare_values(CompareOp::kLt, v, arg("lt", c)); }
bool t_le(Interpreter&, const Value& v, CallArgs& c) { return compare_values(CompareOp::kLe, v, arg("le", c)); }
bool t_gt(Interpreter&, const Value& v, CallArgs& c) { return compare_values(CompareOp::kGt, v, arg("gt", c)); }
bool t_ge(Interpreter&, const Value& v, CallArgs& c) { return compare_values(CompareOp::kGe, v, arg("ge", c)); }
bool t_in(Interpreter&, const Value& v, CallArgs& c) { return contains(arg("in", c), v); }
bool t_sameas(Interpreter&, const Value& v, CallArgs& c) { return v.same_as(arg("sameas", c)); }
bool t_filter(Interpreter&, const Value& v, CallArgs&) { return v.is_string() && builtin_filters().count(v.str()); }
bool t_test(Interpreter&, const Value& v, CallArgs&) { return v.is_string() && builtin_tests().count(v.str()); }

std::unordered_map<std::string, TestFn> make_table() {
  return {
      {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none}, {"boolean", t_boolean},
      {"true", t_true}, {"false", t_false}, {"integer", t_integer}, {"float", t_float}, {"number", t_number},
      {"string", t_string}, {"mapping", t_mapping}, {"sequence", t_sequence}, {"iterable", t_iterable},
      {"callable", t_callable}, {"escaped", t_escaped}, {"lower", t_lower}, {"upper", t_upper},
      {"even", t_even}, {"odd", t_odd}, {"divisibleby", t_divisibleby},
      {"eq", t_eq}, {"equalto", t_eq}, {"==", t_eq}, {"ne", t_ne}, {"!=", t_ne},
      {"lt", t_lt}, {"lessthan", t_lt}, {"<", t_lt}, {"le", t_le}, {"<=", t_le},
      {"gt", t_gt}, {"greaterthan", t_gt}, {">", t_gt}, {"ge", t_ge}, {">=", t_ge},
      {"in", t_in}, {"sameas", t_sameas}, {"filter", t_filter}, {"test", t_test},
  };
}

}  // namespace

const std::unordered_map<std::string, TestFn>& builtin_tests() {
  static const std::unordered_map<std::string, TestFn> table = make_table();
  return table;
}

}  // namespace tk::jinja::detail
