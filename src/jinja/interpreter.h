// The tree-walking evaluator: scopes as Jinja's frames (a for-loop iteration, macro call, with
// or call block gets a fresh scope whose writes do not leak out; `if` does not), the sandbox's
// attribute and item lookup, calls, and the resource limits of one render.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "ast.h"
#include "jinja/jinja.h"
#include "value.h"

namespace tk::jinja::detail {

struct Scope {
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> vars;
  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { kNormal, kBreak, kContinue };

using FilterFn = Value (*)(Interpreter&, const Value& input, CallArgs& args);
using TestFn = bool (*)(Interpreter&, const Value& input, CallArgs& args);
const std::unordered_map<std::string, FilterFn>& builtin_filters();  // filters*.cpp
const std::unordered_map<std::string, TestFn>& builtin_tests();      // tests.cpp
void add_globals(Scope& globals);                                     // globals.cpp

class Interpreter {
 public:
  Interpreter(const RenderOptions& options) : options_(options) {}

  std::string render(const Program& program, const Value& variables);

  // Statements (interp_stmt.cpp).
  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  // Expressions (interp_expr.cpp).
  Value eval(const Expr& e, const ScopePtr& scope);

  // What filters, tests and methods need.
  Value getattr(const Value& obj, const std::string& name);  // x.name: attribute, then item
  Value getitem(const Value& obj, const Value& key);         // x[key]: item, then attribute
  Value call(const Value& callee, CallArgs& args);
  Value apply_filter(const std::string& name, const Value& input, CallArgs& args);
  bool apply_test(const std::string& name, const Value& input, CallArgs& args);
  std::tm now() const;
  const Limits& limits() const { return options_.limits; }
  // Fails with a LimitError when a string or list of `bytes` would pass the output limit.
  void check_size(int64_t bytes) const;
  void count_iterations(int64_t n);
  Value run_macro(const class Macro& macro, CallArgs& args);
  std::string run_loop(const Stmt& loop, const Value& iterable, const ScopePtr& scope, int depth);

  struct DepthGuard {
    explicit DepthGuard(Interpreter& i);
    ~DepthGuard() { --interp.depth_; }
    Interpreter& interp;
  };

 private:
  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out);
  void exec_output(const Stmt& s, const ScopePtr& scope, std::string& out);
  Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
  void exec_set(const Stmt& s, const ScopePtr& scope, std::string& out);
  void exec_call_block(const Stmt& s, const ScopePtr& scope, std::string& out);
  void exec_filter_block(const Stmt& s, const ScopePtr& scope, std::string& out);
  void assign(const Expr& target, const Value& value, const ScopePtr& scope);
  void append(std::string& out, std::string_view text) const;

  Value eval_name(const Expr& e, const ScopePtr& scope);
  Value eval_call(const Expr& e, const ScopePtr& scope);
  Value eval_filter(const Expr& e, const ScopePtr& scope);
  Value eval_test(const Expr& e, const ScopePtr& scope);
  Value eval_compare(const Expr& e, const ScopePtr& scope);
  Value eval_getitem(const Expr& e, const ScopePtr& scope);
  Value eval_literal(const Expr& e, const ScopePtr& scope);
  CallArgs eval_args(const ArgList& call, const ScopePtr& scope);

  const RenderOptions& options_;
  int depth_ = 0;
  int64_t iterations_ = 0;
  const Value* filter_block_input_ = nullptr;  // the rendered body a `{% filter %}` block filters
};

// A macro (or the `caller` of a call block): its node, and the scope it was defined in.
class Macro : public Object {
 public:
  Macro(const Stmt& node, std::string name, ScopePtr closure, bool is_caller)
      : node(node), name(std::move(name)), closure(std::move(closure)), is_caller(is_caller) {}
  std::string type_name() const override { return "Macro"; }
  std::string type_repr() const override { return "jinja2.runtime.Macro object"; }
  bool callable() const override { return true; }
  Value call(Interpreter& interp, CallArgs& args) override { return interp.run_macro(*this, args); }
  std::optional<Value> get_attr(Interpreter& interp, const std::string& attr) override;
  std::string repr() const override { return "<Macro '" + name + "'>"; }
  void release() override { closure.reset(); }

  const Stmt& node;
  std::string name;
  ScopePtr closure;
  bool is_caller;
};

// Python semantics of operators (operators.cpp).
Value binary_op(BinaryOp op, const Value& a, const Value& b, const Interpreter& interp);
bool contains(const Value& container, const Value& item);  // `item in container`
Value negate(const Value& v);
Value slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step);
std::optional<Value> index_item(const Value& sequence, int64_t index);  // seq[i]; nullopt when out of range
bool compare_values(CompareOp op, const Value& a, const Value& b);     // a == b, a < b, a in b, ...

// Python attributes of the data types (methods.cpp): the bound method, or nullopt when the type
// has no such attribute. Unsafe attributes come back as an Undefined that raises SecurityError.
std::optional<Value> builtin_attribute(Interpreter& interp, const Value& obj, const std::string& name);

}  // namespace tk::jinja::detail

namespace tk::jinja::detail {

// namespace(): the one mutable object a template can make ({% set ns.x = ... %}).
class Namespace : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  std::string type_repr() const override { return "jinja2.utils.Namespace object"; }
  std::optional<Value> get_attr(Interpreter& interp, const std::string& name) override;
  std::string repr() const override;
  void set(const std::string& name, Value value);
  int nesting() const override { return nesting_; }
  void release() override { attrs_.clear(); }

 private:
  std::vector<std::pair<std::string, Value>> attrs_;  // in assignment order, as Python dicts
  int nesting_ = 0;
};

}  // namespace tk::jinja::detail
