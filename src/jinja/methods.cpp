// Python attributes of the non-str data types as the immutable sandbox exposes them: list and
// dict read methods (mutating ones are unsafe: using them raises SecurityError), the few number
// attributes, host objects' attributes, and no attribute starting with `_` ever.
#include <cmath>

#include "args.h"
#include "interpreter.h"
#include "pystr.h"

namespace tk::jinja::detail {

namespace {

Value unsafe(const Value& obj, const std::string& name) {
  return Value::undefined("access to attribute '" + name + "' of '" + type_name(obj) + "' object is unsafe.",
                          ErrorKind::kSecurityError);
}

Value bound(const std::string& name, Function::Fn fn) { return make_function(name, std::move(fn)); }

std::optional<Value> sequence_attribute(const Value& obj, const std::string& name) {
  if (obj.is_group_tuple() && (name == "grouper" || name == "list")) return obj.items()[name == "grouper" ? 0 : 1];
  if (name == "count") {
    return bound(name, [obj](Interpreter&, CallArgs& c) {
      Args a("count", c, {"value"}, 1);
      int64_t n = 0;
      for (const Value& v : obj.items()) n += equals(v, a.get(0));
      return Value::integer(n);
    });
  }
  if (name == "index") {
    return bound(name, [obj](Interpreter&, CallArgs& c) {
      Args a("index", c, {"value", "start", "stop"}, 1);
      const int64_t n = static_cast<int64_t>(obj.items().size());
      auto clamp = [n](int64_t v) { return std::max<int64_t>(0, std::min(n, v < 0 ? v + n : v)); };
      for (int64_t k = clamp(a.get_int(1, 0)); k < clamp(a.get_int(2, n)); ++k)
        if (equals(obj.items()[static_cast<size_t>(k)], a.get(0))) return Value::integer(k);
      raise(ErrorKind::kValueError, repr(a.get(0)) + " is not in " + (obj.is_tuple() ? "tuple" : "list"));
    });
  }
  if (obj.is_list()) {
    if (name == "copy") return bound(name, [obj](Interpreter&, CallArgs&) { return Value::list(obj.items()); });
    static const char* const kMutating[] = {"append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove"};
    for (const char* m : kMutating)
      if (name == m) return unsafe(obj, name);
  }
  return std::nullopt;
}

std::optional<Value> dict_attribute(const Value& obj, const std::string& name) {
  if (name == "items") {
    return bound(name, [obj](Interpreter&, CallArgs& c) {
      Args("items", c, {});
      std::vector<Value> pairs;
      for (const auto& [k, v] : obj.dict().entries()) pairs.push_back(Value::tuple({k, v}));
      return Value::list(std::move(pairs));
    });
  }
  if (name == "keys" || name == "values") {
    const bool keys = name == "keys";
    return bound(name, [obj, keys](Interpreter&, CallArgs& c) {
      Args(keys ? "keys" : "values", c, {});
      std::vector<Value> out;
      for (const auto& [k, v] : obj.dict().entries()) out.push_back(keys ? k : v);
      return Value::list(std::move(out));
    });
  }
  if (name == "get") {
    return bound(name, [obj](Interpreter&, CallArgs& c) {
      Args a("get", c, {"key", "default"}, 1);
      const Value* v = obj.dict().find(a.get(0));
      return v ? *v : a.get_or(1, Value::none());
    });
  }
  if (name == "copy") return bound(name, [obj](Interpreter&, CallArgs&) { return obj; });
  static const char* const kMutating[] = {"clear", "pop", "popitem", "setdefault", "update"};
  for (const char* m : kMutating)
    if (name == m) return unsafe(obj, name);
  if (name == "fromkeys") return bound(name, [](Interpreter&, CallArgs&) -> Value { type_error("dict.fromkeys() is only available on the dict global"); });
  return std::nullopt;
}

std::optional<Value> number_attribute(const Value& obj, const std::string& name) {
  if (name == "real") return obj.is_float() ? obj : Value::integer(obj.as_int());
  if (name == "imag") return obj.is_float() ? Value::number(0.0) : Value::integer(0);
  if (name == "conjugate") return bound(name, [obj](Interpreter&, CallArgs&) { return obj; });
  if (obj.is_float() && name == "is_integer") {
    return bound(name, [obj](Interpreter&, CallArgs&) {
      double f = obj.as_float();
      return Value::boolean(std::isfinite(f) && f == std::floor(f));
    });
  }
  if (!obj.is_float() && (name == "numerator" || name == "denominator")) {
    return Value::integer(name == "numerator" ? obj.as_int() : 1);
  }
  if (!obj.is_float() && name == "bit_length") {
    return bound(name, [obj](Interpreter&, CallArgs&) {
      uint64_t v = static_cast<uint64_t>(obj.as_int() < 0 ? -obj.as_int() : obj.as_int());
      int64_t bits = 0;
      while (v) ++bits, v >>= 1;
      return Value::integer(bits);
    });
  }
  return std::nullopt;
}

}  // namespace

std::optional<Value> builtin_attribute(Interpreter& interp, const Value& obj, const std::string& name) {
  // Every Python object has dunder attributes, and the sandbox refuses them all.
  if (name.size() > 4 && name.compare(0, 2, "__") == 0 && name.compare(name.size() - 2, 2, "__") == 0) return unsafe(obj, name);
  switch (obj.kind()) {
    case Kind::kString: return str_method(obj, name);
    case Kind::kList: case Kind::kTuple: return sequence_attribute(obj, name);
    case Kind::kDict: return dict_attribute(obj, name);
    case Kind::kInt: case Kind::kFloat: case Kind::kBool: return number_attribute(obj, name);
    case Kind::kObject: {
      std::optional<Value> v = obj.obj().get_attr(interp, name);
      if (v && !name.empty() && name[0] == '_') return unsafe(obj, name);
      return v;
    }
    default: return std::nullopt;
  }
}

}  // namespace tk::jinja::detail
