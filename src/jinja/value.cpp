// Value construction and the Python semantics of the data types: truthiness, ==, <, hashing,
// iteration and len().
#include "value.h"

#include <algorithm>
#include <cmath>

#include "ustr.h"

namespace tk::jinja::detail {

namespace {

// NOTE: values built by templates can nest arbitrarily ({% set ns.x = [ns.x] %} in a loop);
// the recursive helpers below give a RecursionError instead of overflowing the stack.
thread_local int g_value_depth = 0;
struct DepthGuard {
  DepthGuard() {
    if (++g_value_depth > 400) {
      --g_value_depth;
      raise(ErrorKind::kRecursionError, "maximum recursion depth exceeded");
    }
  }
  ~DepthGuard() { --g_value_depth; }
};

}  // namespace

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kTemplateSyntaxError: return "TemplateSyntaxError";
    case ErrorKind::kTemplateAssertionError: return "TemplateAssertionError";
    case ErrorKind::kTemplateRuntimeError: return "TemplateRuntimeError";
    case ErrorKind::kTemplateError: return "TemplateError";
    case ErrorKind::kUndefinedError: return "UndefinedError";
    case ErrorKind::kSecurityError: return "SecurityError";
    case ErrorKind::kTypeError: return "TypeError";
    case ErrorKind::kValueError: return "ValueError";
    case ErrorKind::kKeyError: return "KeyError";
    case ErrorKind::kIndexError: return "IndexError";
    case ErrorKind::kAttributeError: return "AttributeError";
    case ErrorKind::kAssertionError: return "AssertionError";
    case ErrorKind::kZeroDivisionError: return "ZeroDivisionError";
    case ErrorKind::kOverflowError: return "OverflowError";
    case ErrorKind::kRecursionError: return "RecursionError";
    case ErrorKind::kLimitError: return "LimitError";
  }
  return "Error";
}

Value Value::undefined(std::string message, ErrorKind kind) {
  Value v;
  v.ptr_ = std::make_shared<UndefinedInfo>(UndefinedInfo{std::move(message), kind});
  return v;
}
Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}
Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}
Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}
Value Value::string(std::string s, bool markup) {
  Value v;
  v.kind_ = Kind::kString;
  v.markup_ = markup;
  v.ptr_ = std::make_shared<std::string>(std::move(s));
  return v;
}
namespace {

uint16_t nest(int inner) {
  if (inner + 1 > kMaxValueDepth) {
    raise(ErrorKind::kRecursionError, "values nest deeper than " + std::to_string(kMaxValueDepth) + " levels");
  }
  return static_cast<uint16_t>(inner + 1);
}

uint16_t nest(const std::vector<Value>& items) {
  int inner = 0;
  for (const Value& item : items) inner = std::max(inner, item.depth());
  return nest(inner);
}

}  // namespace

Value Value::list(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::kList;
  v.depth_ = nest(items);
  v.ptr_ = std::make_shared<std::vector<Value>>(std::move(items));
  return v;
}
Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.kind_ = Kind::kTuple;
  return v;
}
Value Value::group_tuple(Value grouper, Value list) {
  Value v = tuple({std::move(grouper), std::move(list)});
  v.markup_ = true;
  return v;
}
Value Value::dict(std::shared_ptr<const Dict> d) {
  Value v;
  v.kind_ = Kind::kDict;
  int inner = 0;
  for (const auto& [key, value] : d->entries()) inner = std::max({inner, key.depth(), value.depth()});
  v.depth_ = nest(inner);
  v.ptr_ = std::const_pointer_cast<Dict>(std::move(d));
  return v;
}
Value Value::object(std::shared_ptr<Object> o) {
  Value v;
  v.kind_ = Kind::kObject;
  v.depth_ = nest(o->nesting());
  if (ObjectRegistry* registry = current_registry()) registry->add(o);
  v.ptr_ = std::move(o);
  return v;
}

bool Value::same_as(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined: case Kind::kNone: return true;
    case Kind::kBool: return b_ == other.b_;
    case Kind::kInt: return i_ == other.i_;
    case Kind::kFloat: return f_ == other.f_;
    default: return ptr_ == other.ptr_;
  }
}

void Dict::set(Value key, Value value) {
  std::string h = hash_key(key);
  auto it = index_.find(h);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(std::move(h), entries_.size());
  entries_.emplace_back(std::move(key), std::move(value));
}

const Value* Dict::find(const Value& key) const {
  auto it = index_.find(hash_key(key));
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const Value* Dict::find(const std::string& key) const {
  auto it = index_.find("s" + key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

ObjectRegistry*& current_registry() {
  thread_local ObjectRegistry* registry = nullptr;
  return registry;
}

void ObjectRegistry::add(const std::shared_ptr<Object>& object) {
  objects_.push_back(object);
  if (objects_.size() < compact_at_) return;
  // Bound methods are made per call: forget the ones already gone, keep the list small.
  std::erase_if(objects_, [](const std::weak_ptr<Object>& w) { return w.expired(); });
  compact_at_ = std::max<size_t>(4096, objects_.size() * 2);
}

void ObjectRegistry::release_all() {
  std::vector<std::shared_ptr<Object>> alive;
  alive.reserve(objects_.size());
  for (const auto& w : objects_)
    if (auto o = w.lock()) alive.push_back(std::move(o));
  objects_.clear();
  for (const auto& o : alive) o->release();  // all stay alive until every one has let go
}

std::optional<Value> Object::get_attr(Interpreter&, const std::string&) { return std::nullopt; }
Value Object::call(Interpreter&, CallArgs&) { type_error("'" + type_name() + "' object is not callable"); }

Value make_function(std::string name, Function::Fn fn) {
  return Value::object(std::make_shared<Function>(std::move(name), std::move(fn)));
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return v.is_markup() ? "Markup" : "str";
    case Kind::kList: return "list";
    case Kind::kTuple: return "tuple";
    case Kind::kDict: return "dict";
    case Kind::kObject: return v.obj().type_name();
  }
  return "object";
}

std::string type_repr(const Value& v) {
  if (v.is_none()) return "None";
  if (v.is_markup()) return "markupsafe.Markup object";
  if (v.is_object()) return v.obj().type_repr();
  return type_name(v) + " object";
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: case Kind::kNone: return false;
    case Kind::kBool: return v.as_bool();
    case Kind::kInt: return v.as_int() != 0;
    case Kind::kFloat: return v.as_float() != 0.0;
    case Kind::kString: return !v.str().empty();
    case Kind::kList: case Kind::kTuple: return !v.items().empty();
    case Kind::kDict: return v.dict().size() != 0;
    case Kind::kObject: return true;
  }
  return false;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kUndefined: case Kind::kNone: return true;
    case Kind::kString: return a.str() == b.str();
    case Kind::kList: case Kind::kTuple: {
      DepthGuard guard;
      if (a.items().size() != b.items().size()) return false;
      for (size_t k = 0; k < a.items().size(); ++k)
        if (!equals(a.items()[k], b.items()[k])) return false;
      return true;
    }
    case Kind::kDict: {
      DepthGuard guard;
      if (a.dict().size() != b.dict().size()) return false;
      for (const auto& [key, value] : a.dict().entries()) {
        const Value* other = b.dict().find(key);
        if (!other || !equals(value, *other)) return false;
      }
      return true;
    }
    default: return a.same_as(b);
  }
}

bool less_than(const Value& a, const Value& b, const char* op) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 order is code point order
  if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
    DepthGuard guard;
    const auto &x = a.items(), &y = b.items();
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (equals(x[k], y[k])) continue;
      return less_than(x[k], y[k], op);
    }
    return x.size() < y.size();
  }
  if (a.is_undefined() || b.is_undefined()) raise_undefined(a.is_undefined() ? a : b);
  type_error(std::string("'") + op + "' not supported between instances of '" + type_name(a) + "' and '" +
             type_name(b) + "'");
}

std::string hash_key(const Value& v) {
  switch (v.kind()) {
    case Kind::kNone: return "N";
    case Kind::kBool: case Kind::kInt: return "n" + std::to_string(v.as_int());
    case Kind::kFloat: {
      double f = v.as_float();
      if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 9.2e18)
        return "n" + std::to_string(static_cast<int64_t>(f));
      return "f" + py_float_repr(f);
    }
    case Kind::kString: return "s" + v.str();
    case Kind::kTuple: {
      DepthGuard guard;
      std::string h = "t";
      for (const Value& item : v.items()) {
        std::string k = hash_key(item);
        h += std::to_string(k.size()) + ":" + k;
      }
      return h;
    }
    case Kind::kUndefined: return "U";
    case Kind::kObject: return "o" + std::to_string(reinterpret_cast<uintptr_t>(&v.obj()));
    default: type_error("unhashable type: '" + type_name(v) + "'");
  }
}

[[noreturn]] void raise_undefined(const Value& v) {
  const UndefinedInfo* info = v.undefined_info();
  if (!info) raise(ErrorKind::kUndefinedError, "undefined value");
  raise(info->kind, info->message);
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return {};
    case Kind::kList: case Kind::kTuple: return v.items();
    case Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.dict().size());
      for (const auto& entry : v.dict().entries()) keys.push_back(entry.first);
      return keys;
    }
    case Kind::kString: {
      std::vector<Value> chars;
      std::string one;
      for (char32_t c : decode_utf8(v.str())) {
        one.clear();
        append_utf8(one, c);
        chars.push_back(Value::string(one));
      }
      return chars;
    }
    case Kind::kObject:
      if (auto* gen = v.as<Generator>()) return gen->take();
      break;
    default: break;
  }
  type_error("'" + type_name(v) + "' object is not iterable");
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return 0;
    case Kind::kString: return count_code_points(v.str());
    case Kind::kList: case Kind::kTuple: return static_cast<int64_t>(v.items().size());
    case Kind::kDict: return static_cast<int64_t>(v.dict().size());
    default: type_error("object of type '" + type_name(v) + "' has no len()");
  }
}

}  // namespace tk::jinja::detail
