// Statements: output, if, for (with else, filter clause, unpacking, the loop object, recursion),
// set (plain, block, namespace attribute), macros and call blocks, filter blocks, with, and
// break/continue as control flow returned up to the enclosing loop.
#include "interpreter.h"

namespace tk::jinja::detail {

namespace {

// Jinja's LoopContext.
class Loop : public Object {
 public:
  Loop(std::vector<Value> items, int depth, const Stmt& node, ScopePtr scope)
      : items_(std::move(items)), depth_(depth), node_(node), scope_(std::move(scope)) {}
  std::string type_name() const override { return "LoopContext"; }
  std::string type_repr() const override { return "jinja2.runtime.LoopContext object"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index_ + 1) + "/" + std::to_string(items_.size()) + ">";
  }
  bool callable() const override { return true; }
  Value call(Interpreter& interp, CallArgs& args) override {
    if (args.args.size() != 1 || !args.kwargs.empty()) {
      type_error("LoopContext.__call__() missing 1 required positional argument: 'iterable'");
    }
    if (!node_.recursive) type_error("Tried to call non recursive loop. Maybe you forgot the 'recursive' modifier.");
    return Value::string(interp.run_loop(node_, args.args[0], scope_, depth_ + 1));
  }
  std::optional<Value> get_attr(Interpreter& interp, const std::string& name) override;
  void set_index(size_t index) { index_ = index; }
  void release() override {
    items_.clear();
    scope_.reset();
    last_changed_.reset();
  }

 private:
  std::vector<Value> items_;
  size_t index_ = 0;
  int depth_;
  const Stmt& node_;
  ScopePtr scope_;
  std::optional<Value> last_changed_;
  friend Value loop_changed(Loop& loop, CallArgs& args);
};

Value loop_changed(Loop& loop, CallArgs& args) {
  Value current = Value::tuple(args.args);
  if (loop.last_changed_ && equals(*loop.last_changed_, current)) return Value::boolean(false);
  loop.last_changed_ = current;
  return Value::boolean(true);
}

std::optional<Value> Loop::get_attr(Interpreter&, const std::string& name) {
  const int64_t n = static_cast<int64_t>(items_.size()), i = static_cast<int64_t>(index_);
  if (name == "index") return Value::integer(i + 1);
  if (name == "index0") return Value::integer(i);
  if (name == "revindex") return Value::integer(n - i);
  if (name == "revindex0") return Value::integer(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i == n - 1);
  if (name == "length") return Value::integer(n);
  if (name == "depth") return Value::integer(depth_ + 1);
  if (name == "depth0") return Value::integer(depth_);
  if (name == "previtem") return i > 0 ? items_[index_ - 1] : Value::undefined("there is no previous item");
  if (name == "nextitem") return i + 1 < n ? items_[index_ + 1] : Value::undefined("there is no next item");
  if (name == "cycle") {
    const size_t index = index_;
    return make_function("cycle", [index](Interpreter&, CallArgs& args) {
      if (args.args.empty()) type_error("no items for cycling given");
      return args.args[index % args.args.size()];
    });
  }
  if (name == "changed") {
    auto self = std::static_pointer_cast<Loop>(shared_from_this());
    return make_function("changed", [self](Interpreter&, CallArgs& args) { return loop_changed(*self, args); });
  }
  return std::nullopt;
}

ScopePtr child_of(const ScopePtr& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

}  // namespace

Interpreter::DepthGuard::DepthGuard(Interpreter& i) : interp(i) {
  if (++interp.depth_ > interp.options_.limits.max_depth) {
    --interp.depth_;
    raise(ErrorKind::kRecursionError, "maximum recursion depth exceeded (the template nests or recurses deeper than " +
                                          std::to_string(interp.options_.limits.max_depth) + " levels)");
  }
}

void Interpreter::check_size(int64_t bytes) const {
  if (bytes > options_.limits.max_output_bytes) {
    raise(ErrorKind::kLimitError, "the template output would exceed " + std::to_string(options_.limits.max_output_bytes) + " bytes");
  }
}

void Interpreter::count_iterations(int64_t n) {
  iterations_ += n;
  if (iterations_ > options_.limits.max_loop_iterations) {
    raise(ErrorKind::kLimitError, "the template ran more than " + std::to_string(options_.limits.max_loop_iterations) + " loop iterations");
  }
}

void Interpreter::append(std::string& out, std::string_view text) const {
  check_size(static_cast<int64_t>(out.size() + text.size()));
  out += text;
}

std::string Interpreter::render(const Program& program, const Value& variables) {
  ObjectRegistry registry;
  struct Release {  // also on errors
    ObjectRegistry& registry;
    ObjectRegistry* outer;
    ~Release() {
      registry.release_all();
      current_registry() = outer;
    }
  } release{registry, current_registry()};
  current_registry() = &registry;
  auto globals = std::make_shared<Scope>();
  add_globals(*globals);
  auto root = child_of(globals);
  for (const auto& [key, value] : variables.dict().entries()) root->vars[to_str(key)] = value;
  std::string out;
  exec_body(program.body, root, out);
  return out;
}

Flow Interpreter::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const StmtPtr& s : body) {
    Flow flow = exec(*s, scope, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Flow Interpreter::exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
  DepthGuard guard(*this);
  try {
    switch (s.kind) {
      case StmtKind::kOutput: exec_output(s, scope, out); return Flow::kNormal;
      case StmtKind::kIf: return exec_body(truthy(eval(*s.expr, scope)) ? s.body : s.else_body, scope, out);
      case StmtKind::kFor: return exec_for(s, scope, out);
      case StmtKind::kSet: case StmtKind::kSetBlock: exec_set(s, scope, out); return Flow::kNormal;
      case StmtKind::kMacro:
        scope->vars[s.name] = Value::object(std::make_shared<Macro>(s, s.name, scope, false));
        return Flow::kNormal;
      case StmtKind::kCallBlock: exec_call_block(s, scope, out); return Flow::kNormal;
      case StmtKind::kFilterBlock: exec_filter_block(s, scope, out); return Flow::kNormal;
      case StmtKind::kWith: {
        auto inner = child_of(scope);
        for (size_t k = 0; k < s.targets.size(); ++k) assign(*s.targets[k], eval(*s.values[k], scope), inner);
        return exec_body(s.body, inner, out);
      }
      case StmtKind::kScope: return exec_body(s.body, child_of(scope), out);
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
    }
  } catch (JinjaError& e) {
    if (!e.line) e.line = s.line;
    throw;
  }
  return Flow::kNormal;
}

void Interpreter::exec_output(const Stmt& s, const ScopePtr& scope, std::string& out) {
  for (const Stmt::Piece& piece : s.pieces) {
    if (!piece.expr) {
      append(out, piece.text);
      continue;
    }
    Value v = eval(*piece.expr, scope);
    append(out, v.is_string() ? std::string_view(v.str()) : std::string_view(to_str(v)));
  }
}

Flow Interpreter::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
  Value iterable = eval(*s.expr, scope);
  out += run_loop(s, iterable, scope, 0);
  check_size(static_cast<int64_t>(out.size()));
  return Flow::kNormal;
}

std::string Interpreter::run_loop(const Stmt& s, const Value& iterable, const ScopePtr& scope, int depth) {
  DepthGuard guard(*this);
  std::vector<Value> items = iterate(iterable);
  count_iterations(static_cast<int64_t>(items.size()));
  if (s.filter_test) {
    std::vector<Value> kept;
    for (Value& item : items) {
      auto probe = child_of(scope);
      assign(*s.target, item, probe);
      if (truthy(eval(*s.filter_test, probe))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  std::string out;
  if (items.empty()) {
    exec_body(s.else_body, child_of(scope), out);
    return out;
  }
  auto loop = std::make_shared<Loop>(items, depth, s, scope);
  const Value loop_value = Value::object(loop);
  for (size_t k = 0; k < items.size(); ++k) {
    auto iteration = child_of(scope);
    assign(*s.target, items[k], iteration);
    loop->set_index(k);
    iteration->vars["loop"] = loop_value;
    if (exec_body(s.body, iteration, out) == Flow::kBreak) break;
  }
  return out;
}

void Interpreter::assign(const Expr& target, const Value& value, const ScopePtr& scope) {
  if (target.kind == ExprKind::kName) {
    scope->vars[target.name] = value;
    return;
  }
  if (target.kind == ExprKind::kNsRef) {
    const Value* ns = scope->find(target.value.str());
    Namespace* space = ns ? ns->as<Namespace>() : nullptr;
    if (!space) raise(ErrorKind::kTemplateRuntimeError, "cannot assign attribute on non-namespace object");
    space->set(target.name, value);
    return;
  }
  std::vector<Value> parts = iterate(value);  // tuple unpacking
  const size_t want = target.items.size();
  if (parts.size() < want) {
    raise(ErrorKind::kValueError, "not enough values to unpack (expected " + std::to_string(want) + ", got " + std::to_string(parts.size()) + ")");
  }
  if (parts.size() > want) raise(ErrorKind::kValueError, "too many values to unpack (expected " + std::to_string(want) + ")");
  for (size_t k = 0; k < want; ++k) assign(*target.items[k], parts[k], scope);
}

void Interpreter::exec_set(const Stmt& s, const ScopePtr& scope, std::string&) {
  if (s.kind == StmtKind::kSet) {
    assign(*s.target, eval(*s.expr, scope), scope);
    return;
  }
  std::string text;
  exec_body(s.body, child_of(scope), text);
  Value value = Value::string(std::move(text));
  if (s.filter_test) {
    const Value* saved = filter_block_input_;
    filter_block_input_ = &value;
    Value filtered = eval(*s.filter_test, scope);
    filter_block_input_ = saved;
    value = filtered;
  }
  assign(*s.target, value, scope);
}

void Interpreter::exec_call_block(const Stmt& s, const ScopePtr& scope, std::string& out) {
  Value caller = Value::object(std::make_shared<Macro>(s, "caller", scope, true));
  Value callee = eval(*s.expr->a, scope);
  CallArgs args = eval_args(s.expr->call, scope);
  args.kwargs.emplace_back("caller", caller);
  Value result = call(callee, args);
  append(out, to_str(result));
}

void Interpreter::exec_filter_block(const Stmt& s, const ScopePtr& scope, std::string& out) {
  std::string text;
  exec_body(s.body, child_of(scope), text);
  Value body = Value::string(std::move(text));
  const Value* saved = filter_block_input_;
  filter_block_input_ = &body;
  Value result = eval(*s.expr, scope);
  filter_block_input_ = saved;
  append(out, to_str(result));
}

}  // namespace tk::jinja::detail
