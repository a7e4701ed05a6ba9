// Template values with Python semantics: what a Jinja expression can evaluate to (Undefined,
// None, bool, int, float, str, list, tuple, dict and host objects such as macros, namespaces and
// the loop object). Lists and dicts are immutable once built (the sandbox forbids mutation), so
// values share them freely; only namespaces and generators hold mutable state.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "error.h"

namespace tk::jinja::detail {

class Value;
class Object;
class Interpreter;

constexpr int kMaxValueDepth = 400;

enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kTuple, kDict, kObject };

// Why a value is undefined, and what using it raises.
struct UndefinedInfo {
  std::string message;  // "'x' is undefined", "'dict object' has no attribute 'content'"
  ErrorKind kind = ErrorKind::kUndefinedError;
};

class Dict;

class Value {
 public:
  Value() = default;  // Undefined without a hint
  static Value undefined(std::string message, ErrorKind kind = ErrorKind::kUndefinedError);
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s, bool markup = false);
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  // groupby's _GroupTuple: a (grouper, list) tuple whose items are also attributes.
  static Value group_tuple(Value grouper, Value list);
  static Value dict(std::shared_ptr<const Dict> d);
  static Value object(std::shared_ptr<Object> o);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_markup() const { return kind_ == Kind::kString && markup_; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kTuple; }
  bool is_sequence() const { return kind_ == Kind::kList || kind_ == Kind::kTuple; }
  bool is_group_tuple() const { return kind_ == Kind::kTuple && markup_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_object() const { return kind_ == Kind::kObject; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }  // bool or int
  double as_float() const { return kind_ == Kind::kFloat ? f_ : static_cast<double>(as_int()); }
  const std::string& str() const { return *static_cast<const std::string*>(ptr_.get()); }
  const std::vector<Value>& items() const { return *static_cast<const std::vector<Value>*>(ptr_.get()); }
  const Dict& dict() const { return *static_cast<const Dict*>(ptr_.get()); }
  std::shared_ptr<const Dict> dict_ptr() const { return std::static_pointer_cast<const Dict>(ptr_); }
  Object& obj() const { return *static_cast<Object*>(ptr_.get()); }
  std::shared_ptr<Object> obj_ptr() const { return std::static_pointer_cast<Object>(ptr_); }
  const UndefinedInfo* undefined_info() const { return static_cast<const UndefinedInfo*>(ptr_.get()); }
  // The object as T, or null (for namespaces, loops, macros, generators).
  template <typename T>
  T* as() const { return kind_ == Kind::kObject ? dynamic_cast<T*>(&obj()) : nullptr; }
  // Same object (Python `is`) for shared values; value equality for scalars.
  bool same_as(const Value& other) const;
  // Container nesting (0 for scalars). NOTE: values nest at most kMaxValueDepth deep, so that
  // destroying, printing or comparing one never recurses without bound.
  int depth() const { return depth_; }

 private:
  Kind kind_ = Kind::kUndefined;
  bool markup_ = false;
  uint16_t depth_ = 0;  // how deeply containers nest inside this value
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
  };
  std::shared_ptr<void> ptr_;
};

// An insertion-ordered dict keyed by hashable values (str, numbers, None, tuples of those).
class Dict {
 public:
  void set(Value key, Value value);
  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<Value, Value>> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// Positional and keyword arguments of one call.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

// Host objects: anything with attributes or a call operator beyond the plain data types.
class Object : public std::enable_shared_from_this<Object> {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;  // type(x).__name__
  // What Jinja's object_type_repr says in undefined messages ("str object").
  virtual std::string type_repr() const { return type_name() + " object"; }
  virtual std::optional<Value> get_attr(Interpreter& interp, const std::string& name);
  virtual bool callable() const { return false; }
  virtual Value call(Interpreter& interp, CallArgs& args);
  virtual std::string repr() const { return "<" + type_repr() + ">"; }
  // How deeply values nest inside this object (see Value::depth).
  virtual int nesting() const { return 0; }
  // Drops the values this object holds. Called on every object when its render ends: values can
  // form cycles (a macro stored in the scope it closes over, `ns.me = ns`) that would leak.
  virtual void release() {}
};

// The objects made during one render (registered by Value::object on this thread).
class ObjectRegistry {
 public:
  void add(const std::shared_ptr<Object>& object);
  void release_all();

 private:
  std::vector<std::weak_ptr<Object>> objects_;
  size_t compact_at_ = 4096;
};
// The registry of the render running on this thread, or null.
ObjectRegistry*& current_registry();

// A built-in function or bound method.
class Function : public Object {
 public:
  using Fn = std::function<Value(Interpreter&, CallArgs&)>;
  Function(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string type_name() const override { return "builtin_function_or_method"; }
  bool callable() const override { return true; }
  Value call(Interpreter& interp, CallArgs& args) override {
    if (!fn_) raise(ErrorKind::kTemplateRuntimeError, "function used after its render ended");
    return fn_(interp, args);
  }
  void release() override { fn_ = nullptr; }
  std::string repr() const override { return "<built-in function " + name_ + ">"; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  Fn fn_;
};
Value make_function(std::string name, Function::Fn fn);

// A one-shot iterator (what map/select/reject return). Materialised eagerly; iterating it a
// second time yields nothing, as with a Python generator.
class Generator : public Object {
 public:
  explicit Generator(std::vector<Value> items, std::string type_name = "generator")
      : items_(std::move(items)), type_name_(std::move(type_name)) {
    for (const Value& v : items_) nesting_ = std::max(nesting_, v.depth());
  }
  int nesting() const override { return nesting_; }
  void release() override { items_.clear(); }
  std::string type_name() const override { return type_name_; }
  std::string repr() const override { return "<" + type_name_ + " object at 0x7f0000000000>"; }
  std::vector<Value> take() {
    std::vector<Value> out;
    out.swap(items_);
    return out;
  }

 private:
  std::vector<Value> items_;
  std::string type_name_;
  int nesting_ = 0;
};

// ---- Python semantics over values (value.cpp, value_repr.cpp) --------------------------------

std::string type_name(const Value& v);    // 'str', 'int', 'NoneType', ...
std::string type_repr(const Value& v);    // Jinja's object_type_repr: 'str object', 'None'
bool truthy(const Value& v);
bool equals(const Value& a, const Value& b);
// Python's a < b (op names the operator for the TypeError message).
bool less_than(const Value& a, const Value& b, const char* op = "<");
// Dict key identity: equal keys (1, 1.0, True) map to the same string; TypeError if unhashable.
std::string hash_key(const Value& v);
// Iteration as Python's iter(): list/tuple items, dict keys, str characters, generator items.
std::vector<Value> iterate(const Value& v);
int64_t length(const Value& v);  // Python len(); TypeError when there is none
[[noreturn]] void raise_undefined(const Value& v);  // UndefinedError / SecurityError of an Undefined

std::string to_str(const Value& v);  // Python str()
std::string repr(const Value& v);    // Python repr()
std::string py_float_repr(double f);
std::string py_str_repr(std::string_view s);

}  // namespace tk::jinja::detail
