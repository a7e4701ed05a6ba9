// Expression evaluation, and the sandbox's lookup rules: `x.y` tries the attribute first, then
// the item; `x['y']` the item first, then the attribute; attributes starting with `_` and
// mutating methods come back as an Undefined that raises SecurityError when used.
#include "interpreter.h"

namespace tk::jinja::detail {

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
  DepthGuard guard(*this);
  try {
    switch (e.kind) {
      case ExprKind::kConst: return e.value;
      case ExprKind::kName: return eval_name(e, scope);
      case ExprKind::kTuple: case ExprKind::kList: case ExprKind::kDict: return eval_literal(e, scope);
      case ExprKind::kGetAttr: return getattr(eval(*e.a, scope), e.name);
      case ExprKind::kGetItem: return eval_getitem(e, scope);
      case ExprKind::kCall: return eval_call(e, scope);
      case ExprKind::kFilter: return eval_filter(e, scope);
      case ExprKind::kTest: return eval_test(e, scope);
      case ExprKind::kNot: return Value::boolean(!truthy(eval(*e.a, scope)));
      case ExprKind::kNeg: return negate(eval(*e.a, scope));
      case ExprKind::kPos: {
        Value v = eval(*e.a, scope);
        if (v.is_undefined()) raise_undefined(v);
        if (!v.is_number()) type_error("bad operand type for unary +: '" + type_name(v) + "'");
        return v.is_bool() ? Value::integer(v.as_int()) : v;
      }
      case ExprKind::kBinary: {
        Value a = eval(*e.a, scope);
        Value b = eval(*e.b, scope);
        return binary_op(e.op, a, b, *this);
      }
      case ExprKind::kAnd: {
        Value a = eval(*e.a, scope);
        return truthy(a) ? eval(*e.b, scope) : a;
      }
      case ExprKind::kOr: {
        Value a = eval(*e.a, scope);
        return truthy(a) ? a : eval(*e.b, scope);
      }
      case ExprKind::kConcat: {
        std::string s;
        for (const ExprPtr& part : e.items) {
          s += to_str(eval(*part, scope));
          check_size(static_cast<int64_t>(s.size()));
        }
        return Value::string(std::move(s));
      }
      case ExprKind::kCompare: return eval_compare(e, scope);
      case ExprKind::kCondExpr:
        if (truthy(eval(*e.a, scope))) return eval(*e.b, scope);
        if (e.c) return eval(*e.c, scope);
        return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                " evaluated to false and no else section was defined.");
      case ExprKind::kSlice: raise(ErrorKind::kTemplateSyntaxError, "a slice is only valid inside [ ]");
      case ExprKind::kNsRef: raise(ErrorKind::kTemplateSyntaxError, "a namespace reference is only valid in set");
    }
  } catch (JinjaError& err) {
    if (!err.line) err.line = e.line;
    throw;
  }
  return Value();
}

Value Interpreter::eval_name(const Expr& e, const ScopePtr& scope) {
  if (const Value* v = scope->find(e.name)) return *v;
  return Value::undefined("'" + e.name + "' is undefined");
}

Value Interpreter::eval_literal(const Expr& e, const ScopePtr& scope) {
  if (e.kind == ExprKind::kDict) {
    auto d = std::make_shared<Dict>();
    for (size_t k = 0; k + 1 < e.items.size(); k += 2) {
      Value key = eval(*e.items[k], scope);
      d->set(std::move(key), eval(*e.items[k + 1], scope));
    }
    return Value::dict(std::move(d));
  }
  std::vector<Value> items;
  items.reserve(e.items.size());
  for (const ExprPtr& item : e.items) items.push_back(eval(*item, scope));
  return e.kind == ExprKind::kList ? Value::list(std::move(items)) : Value::tuple(std::move(items));
}

Value Interpreter::eval_getitem(const Expr& e, const ScopePtr& scope) {
  Value obj = eval(*e.a, scope);
  if (e.b->kind == ExprKind::kSlice) {
    const Expr& s = *e.b;
    Value start = s.a ? eval(*s.a, scope) : Value::none();
    Value stop = s.b ? eval(*s.b, scope) : Value::none();
    Value step = s.c ? eval(*s.c, scope) : Value::none();
    if (obj.is_undefined()) raise_undefined(obj);
    return slice_value(obj, start, stop, step);
  }
  return getitem(obj, eval(*e.b, scope));
}

Value Interpreter::eval_call(const Expr& e, const ScopePtr& scope) {
  Value callee = eval(*e.a, scope);
  CallArgs args = eval_args(e.call, scope);
  return call(callee, args);
}

Value Interpreter::eval_filter(const Expr& e, const ScopePtr& scope) {
  Value input;
  if (e.a) {
    input = eval(*e.a, scope);
  } else if (filter_block_input_) {
    input = *filter_block_input_;
  }
  const auto& filters = builtin_filters();
  auto it = filters.find(e.name);
  if (it == filters.end()) raise(ErrorKind::kTemplateRuntimeError, "No filter named '" + e.name + "' found.");
  CallArgs args = eval_args(e.call, scope);
  return it->second(*this, input, args);
}

Value Interpreter::eval_test(const Expr& e, const ScopePtr& scope) {
  Value input = eval(*e.a, scope);
  const auto& tests = builtin_tests();
  auto it = tests.find(e.name);
  if (it == tests.end()) raise(ErrorKind::kTemplateRuntimeError, "No test named '" + e.name + "' found.");
  CallArgs args = eval_args(e.call, scope);
  return Value::boolean(it->second(*this, input, args));
}

Value Interpreter::apply_filter(const std::string& name, const Value& input, CallArgs& args) {
  const auto& filters = builtin_filters();
  auto it = filters.find(name);
  if (it == filters.end()) raise(ErrorKind::kTemplateRuntimeError, "No filter named '" + name + "'.");
  return it->second(*this, input, args);
}

bool Interpreter::apply_test(const std::string& name, const Value& input, CallArgs& args) {
  const auto& tests = builtin_tests();
  auto it = tests.find(name);
  if (it == tests.end()) raise(ErrorKind::kTemplateRuntimeError, "No test named '" + name + "'.");
  return it->second(*this, input, args);
}

Value Interpreter::eval_compare(const Expr& e, const ScopePtr& scope) {
  Value left = eval(*e.a, scope);
  for (const auto& [op, operand] : e.comparisons) {
    Value right = eval(*operand, scope);
    if (!compare_values(op, left, right)) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interpreter::getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (std::optional<Value> attr = builtin_attribute(*this, obj, name)) return *attr;
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().find(name)) return *v;
  }
  return Value::undefined("'" + type_repr(obj) + "' has no attribute '" + name + "'");
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (obj.is_dict()) {
    try {
      if (const Value* v = obj.dict().find(key)) return *v;
    } catch (const JinjaError&) {  // unhashable key: Python's TypeError, which Jinja swallows
    }
  } else if ((obj.is_sequence() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    if (std::optional<Value> item = index_item(obj, key.as_int())) return *item;
  }
  if (key.is_string()) {
    if (std::optional<Value> attr = builtin_attribute(*this, obj, key.str())) return *attr;
    return Value::undefined("'" + type_repr(obj) + "' has no attribute '" + key.str() + "'");
  }
  return Value::undefined(type_repr(obj) + " has no element " + repr(key));
}

}  // namespace tk::jinja::detail
