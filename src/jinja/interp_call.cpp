// Calls: argument evaluation (*args, **kwargs), macro invocation with Jinja's binding rules
// (defaults evaluated in the macro's scope, varargs/kwargs/caller only when the body reads
// them), and the namespace object.
#include "interpreter.h"

namespace tk::jinja::detail {

CallArgs Interpreter::eval_args(const ArgList& call, const ScopePtr& scope) {
  CallArgs out;
  for (const ExprPtr& a : call.args) out.args.push_back(eval(*a, scope));
  for (const Keyword& k : call.kwargs) out.kwargs.emplace_back(k.name, eval(*k.value, scope));
  if (call.dyn_args) {
    for (Value& v : iterate(eval(*call.dyn_args, scope))) out.args.push_back(std::move(v));
  }
  if (call.dyn_kwargs) {
    Value extra = eval(*call.dyn_kwargs, scope);
    if (!extra.is_dict()) type_error("argument after ** must be a mapping, not " + type_name(extra));
    for (const auto& [key, value] : extra.dict().entries()) {
      if (!key.is_string()) type_error("keywords must be strings");
      for (const auto& existing : out.kwargs) {
        if (existing.first == key.str()) type_error("got multiple values for keyword argument '" + key.str() + "'");
      }
      out.kwargs.emplace_back(key.str(), value);
    }
  }
  return out;
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) raise_undefined(callee);
  if (callee.is_object() && callee.obj().callable()) return callee.obj().call(*this, args);
  type_error("'" + type_name(callee) + "' object is not callable");
}

namespace {

std::optional<Value> take_kwarg(CallArgs& args, const std::string& name) {
  for (auto it = args.kwargs.begin(); it != args.kwargs.end(); ++it) {
    if (it->first == name) {
      Value v = std::move(it->second);
      args.kwargs.erase(it);
      return v;
    }
  }
  return std::nullopt;
}

}  // namespace

Value Interpreter::run_macro(const Macro& macro, CallArgs& args) {
  DepthGuard guard(*this);
  const Stmt& node = macro.node;
  const auto& params = node.signature.params;
  const auto& defaults = node.signature.defaults;
  auto scope = std::make_shared<Scope>();
  scope->parent = macro.closure;
  const size_t positional = std::min(args.args.size(), params.size());
  bool caller_param = false;
  for (size_t k = 0; k < params.size(); ++k) {
    caller_param |= params[k] == "caller";
    std::optional<Value> value;
    if (k < positional) value = args.args[k];
    else value = take_kwarg(args, params[k]);
    if (!value) {
      const size_t first_default = params.size() - defaults.size();
      if (k >= first_default) value = eval(*defaults[k - first_default], scope);
      else value = Value::undefined("parameter '" + params[k] + "' was not provided");
    }
    scope->vars[params[k]] = *value;
  }
  if (node.uses_caller && !caller_param) {
    std::optional<Value> caller = take_kwarg(args, "caller");
    scope->vars["caller"] = caller ? *caller : Value::undefined("No caller defined");
  }
  if (node.uses_kwargs) {
    auto kwargs = std::make_shared<Dict>();
    for (auto& [key, value] : args.kwargs) kwargs->set(Value::string(key), value);
    scope->vars["kwargs"] = Value::dict(std::move(kwargs));
  } else if (!args.kwargs.empty()) {
    if (args.kwargs.front().first == "caller") {
      type_error("macro '" + macro.name + "' was invoked with two values for the special caller argument. This is most likely a bug.");
    }
    type_error("macro '" + macro.name + "' takes no keyword argument '" + args.kwargs.front().first + "'");
  }
  if (node.uses_varargs) {
    std::vector<Value> rest;
    for (size_t k = params.size(); k < args.args.size(); ++k) rest.push_back(args.args[k]);
    scope->vars["varargs"] = Value::tuple(std::move(rest));
  } else if (args.args.size() > params.size()) {
    type_error("macro '" + macro.name + "' takes not more than " + std::to_string(params.size()) + " argument(s)");
  }
  std::string out;
  exec_body(node.body, scope, out);
  return Value::string(std::move(out));
}

std::optional<Value> Macro::get_attr(Interpreter&, const std::string& attr) {
  if (attr == "name") return Value::string(name);
  if (attr == "arguments") {
    std::vector<Value> names;
    for (const std::string& p : node.signature.params) names.push_back(Value::string(p));
    return Value::tuple(std::move(names));
  }
  if (attr == "catch_kwargs") return Value::boolean(node.uses_kwargs);
  if (attr == "catch_varargs") return Value::boolean(node.uses_varargs);
  if (attr == "caller") return Value::boolean(node.uses_caller);
  return std::nullopt;
}

std::optional<Value> Namespace::get_attr(Interpreter&, const std::string& name) {
  for (const auto& [key, value] : attrs_)
    if (key == name) return value;
  return std::nullopt;
}

void Namespace::set(const std::string& name, Value value) {
  if (value.depth() + 1 >= kMaxValueDepth) {
    raise(ErrorKind::kRecursionError, "values nest deeper than " + std::to_string(kMaxValueDepth) + " levels");
  }
  nesting_ = std::max(nesting_, value.depth());
  for (auto& [key, existing] : attrs_) {
    if (key == name) {
      existing = std::move(value);
      return;
    }
  }
  attrs_.emplace_back(name, std::move(value));
}

std::string Namespace::repr() const {
  std::string out = "<Namespace {";
  for (size_t k = 0; k < attrs_.size(); ++k) {
    if (k) out += ", ";
    out += py_str_repr(attrs_[k].first) + ": " + detail::repr(attrs_[k].second);
  }
  return out + "}>";
}

}  // namespace tk::jinja::detail
