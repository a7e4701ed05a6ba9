// One parse function per block tag, then the pass that checks filter and test names the way
// Jinja's compiler does: an unknown name is a compile error, except inside `if` blocks and
// conditional expressions, where it fails only when evaluated.
#include "parser_impl.h"

namespace tk::jinja::detail {

namespace {

StmtPtr make(StmtKind kind, int line) { return std::make_unique<Stmt>(kind, line); }

}  // namespace

StmtPtr Parser::parse_statement() {
  DepthScope depth(*this);
  const Token& token = current();
  if (token.type != TokenType::kName) fail("tag name expected", token.line);
  const std::string name = token.value;
  static const char* const kUnsupported[] = {"extends", "include", "import", "from", "autoescape", "do"};
  for (const char* tag : kUnsupported) {
    if (name == tag) fail("tag '" + name + "' is not supported (chat templates are rendered without a loader or extensions)");
  }
  tag_stack_.push_back(name);
  StmtPtr stmt;
  if (name == "for") stmt = parse_for();
  else if (name == "if") stmt = parse_if();
  else if (name == "set") stmt = parse_set();
  else if (name == "macro") stmt = parse_macro();
  else if (name == "call") stmt = parse_call_block();
  else if (name == "filter") stmt = parse_filter_block();
  else if (name == "with") stmt = parse_with();
  else if (name == "block") stmt = parse_scoped_block("endblock");
  else if (name == "generation") stmt = parse_scoped_block("endgeneration");
  else if (name == "print") stmt = parse_print();
  else if (name == "break" || name == "continue") stmt = make(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, next().line);
  else {
    tag_stack_.pop_back();
    fail_unknown_tag(name, token.line);
  }
  tag_stack_.pop_back();
  return stmt;
}

StmtPtr Parser::parse_for() {
  auto s = make(StmtKind::kFor, expect_name("for").line);
  s->target = parse_assign_target(true, false, {"in"});
  expect_name("in");
  s->expr = parse_tuple(false, /*with_condexpr=*/false, {"recursive"});
  if (skip_name("if")) s->filter_test = parse_expression();
  s->recursive = skip_name("recursive");
  s->body = parse_statements({"endfor", "else"}, false);
  if (next().value == "else") s->else_body = parse_statements({"endfor"}, true);
  return s;
}

StmtPtr Parser::parse_if() {
  auto s = make(StmtKind::kIf, expect_name("if").line);
  s->expr = parse_tuple(false, false);
  s->body = parse_statements({"elif", "else", "endif"}, false);
  const Token& token = next();
  if (token.value == "elif") {
    // elif chains become nested ifs in the else branch; the tag stack keeps 'if' for messages.
    auto nested = make(StmtKind::kIf, current().line);
    nested->expr = parse_tuple(false, false);
    nested->body = parse_statements({"elif", "else", "endif"}, false);
    Stmt* tail = nested.get();
    s->else_body.push_back(std::move(nested));
    while (true) {
      const Token& t = next();
      if (t.value == "elif") {
        auto more = make(StmtKind::kIf, current().line);
        more->expr = parse_tuple(false, false);
        more->body = parse_statements({"elif", "else", "endif"}, false);
        Stmt* next_tail = more.get();
        tail->else_body.push_back(std::move(more));
        tail = next_tail;
      } else {
        if (t.value == "else") tail->else_body = parse_statements({"endif"}, true);
        break;
      }
    }
  } else if (token.value == "else") {
    s->else_body = parse_statements({"endif"}, true);
  }
  return s;
}

StmtPtr Parser::parse_set() {
  const int line = next().line;
  ExprPtr target = parse_assign_target(true, false, {}, /*with_namespace=*/true);
  if (skip_op("=")) {
    auto s = make(StmtKind::kSet, line);
    s->target = std::move(target);
    s->expr = parse_tuple();
    return s;
  }
  auto s = make(StmtKind::kSetBlock, line);
  s->target = std::move(target);
  s->filter_test = parse_filter(nullptr);
  s->body = parse_statements({"endset"}, true);
  return s;
}

void Parser::parse_signature(MacroSignature& signature) {
  expect_op("(");
  while (!is_op(")")) {
    if (!signature.params.empty()) expect_op(",");
    signature.params.push_back(parse_assign_target(true, true)->name);
    if (skip_op("=")) signature.defaults.push_back(parse_expression());
    else if (!signature.defaults.empty()) fail("non-default argument follows default argument");
  }
  expect_op(")");
}

namespace {

// Whether the body reads `varargs`, `kwargs` or `caller` (what Jinja's find_undeclared tells).
void scan_names(const Expr* e, Stmt& macro);
void scan_body(const Body& body, Stmt& macro);

void scan_args(const ArgList& call, Stmt& macro) {
  for (const auto& a : call.args) scan_names(a.get(), macro);
  for (const auto& k : call.kwargs) scan_names(k.value.get(), macro);
  scan_names(call.dyn_args.get(), macro);
  scan_names(call.dyn_kwargs.get(), macro);
}

void scan_names(const Expr* e, Stmt& macro) {
  if (!e) return;
  if (e->kind == ExprKind::kName) {
    macro.uses_varargs |= e->name == "varargs";
    macro.uses_kwargs |= e->name == "kwargs";
    macro.uses_caller |= e->name == "caller";
  }
  for (const auto& item : e->items) scan_names(item.get(), macro);
  scan_names(e->a.get(), macro);
  scan_names(e->b.get(), macro);
  scan_names(e->c.get(), macro);
  for (const auto& [op, operand] : e->comparisons) scan_names(operand.get(), macro);
  scan_args(e->call, macro);
}

void scan_body(const Body& body, Stmt& macro) {
  for (const StmtPtr& s : body) {
    for (const auto& piece : s->pieces) scan_names(piece.expr.get(), macro);
    scan_names(s->target.get(), macro);
    scan_names(s->expr.get(), macro);
    scan_names(s->filter_test.get(), macro);
    for (const auto& d : s->signature.defaults) scan_names(d.get(), macro);
    for (const auto& v : s->values) scan_names(v.get(), macro);
    scan_body(s->body, macro);
    scan_body(s->else_body, macro);
  }
}

}  // namespace

StmtPtr Parser::parse_macro() {
  auto s = make(StmtKind::kMacro, next().line);
  s->name = parse_assign_target(true, true)->name;
  parse_signature(s->signature);
  s->body = parse_statements({"endmacro"}, true);
  scan_body(s->body, *s);
  for (const auto& d : s->signature.defaults) scan_names(d.get(), *s);
  return s;
}

StmtPtr Parser::parse_call_block() {
  auto s = make(StmtKind::kCallBlock, next().line);
  if (is_op("(")) parse_signature(s->signature);
  s->expr = parse_expression();
  if (s->expr->kind != ExprKind::kCall) fail("expected call", s->line);
  s->body = parse_statements({"endcall"}, true);
  scan_body(s->body, *s);
  return s;
}

StmtPtr Parser::parse_filter_block() {
  auto s = make(StmtKind::kFilterBlock, next().line);
  s->expr = parse_filter(nullptr, /*start_inline=*/true);
  s->body = parse_statements({"endfilter"}, true);
  return s;
}

StmtPtr Parser::parse_with() {
  auto s = make(StmtKind::kWith, next().line);
  while (current().type != TokenType::kBlockEnd) {
    if (!s->targets.empty()) expect_op(",");
    s->targets.push_back(parse_assign_target());
    expect_op("=");
    s->values.push_back(parse_expression());
  }
  s->body = parse_statements({"endwith"}, true);
  return s;
}

// `block NAME` (rendered in place: there is no inheritance without a loader) and transformers'
// `generation` (its body, in a scope of its own as the caller() of a call block).
StmtPtr Parser::parse_scoped_block(const char* end_tag) {
  const bool is_block = std::string(end_tag) == "endblock";
  auto s = make(StmtKind::kScope, next().line);
  std::string block_name;
  if (is_block) {
    block_name = expect_name().value;
    skip_name("scoped");
    skip_name("required");
  }
  s->body = parse_statements({end_tag}, true);
  if (is_block && current().type == TokenType::kName && current().value == block_name) next();
  return s;
}

StmtPtr Parser::parse_print() {
  auto s = make(StmtKind::kOutput, next().line);
  s->pieces.emplace_back();
  s->pieces.back().expr = parse_tuple();
  return s;
}

namespace {

class NameChecker {
 public:
  explicit NameChecker(const ParseOptions& o) : o_(o) {}

  void body(Body& b, bool soft, bool in_loop) {
    for (StmtPtr& s : b) stmt(*s, soft, in_loop);
  }

 private:
  void stmt(Stmt& s, bool soft, bool in_loop) {
    if ((s.kind == StmtKind::kBreak || s.kind == StmtKind::kContinue) && !in_loop) {
      throw JinjaError(ErrorKind::kTemplateSyntaxError,
                       std::string("'") + (s.kind == StmtKind::kBreak ? "break" : "continue") + "' outside of a loop", s.line);
    }
    for (auto& piece : s.pieces) expr(piece.expr.get(), soft);
    const bool if_stmt = s.kind == StmtKind::kIf;
    // Every block but `if` runs in an inner frame, which is never soft.
    const bool inner = !if_stmt && s.kind != StmtKind::kOutput && s.kind != StmtKind::kSet;
    expr(s.expr.get(), soft || if_stmt);
    expr(s.target.get(), soft);
    for (auto& v : s.values) expr(v.get(), soft);
    for (auto& d : s.signature.defaults) expr(d.get(), false);
    expr(s.filter_test.get(), inner ? false : soft);
    const bool body_soft = if_stmt || (!inner && soft);
    const bool defines = s.kind == StmtKind::kMacro || s.kind == StmtKind::kCallBlock;
    const bool child_loop = s.kind == StmtKind::kFor || (!defines && in_loop);
    body(s.body, body_soft, child_loop);
    body(s.else_body, body_soft, s.kind == StmtKind::kFor ? in_loop : child_loop);
  }

  void expr(Expr* e, bool soft) {
    if (!e) return;
    if (e->kind == ExprKind::kCondExpr) soft = true;
    if (e->kind == ExprKind::kFilter || e->kind == ExprKind::kTest) {
      const bool filter = e->kind == ExprKind::kFilter;
      const bool known = filter ? o_.has_filter(e->name) : o_.has_test(e->name);
      if (!known && !soft) {
        throw JinjaError(ErrorKind::kTemplateAssertionError,
                         std::string("No ") + (filter ? "filter" : "test") + " named '" + e->name + "'.", e->line);
      }
      e->in_soft_frame = soft;
    }
    for (auto& item : e->items) expr(item.get(), soft);
    expr(e->a.get(), soft);
    expr(e->b.get(), soft);
    expr(e->c.get(), soft);
    for (auto& [op, operand] : e->comparisons) expr(operand.get(), soft);
    for (auto& a : e->call.args) expr(a.get(), soft);
    for (auto& k : e->call.kwargs) expr(k.value.get(), soft);
    expr(e->call.dyn_args.get(), soft);
    expr(e->call.dyn_kwargs.get(), soft);
  }

  const ParseOptions& o_;
};

}  // namespace

std::unique_ptr<Program> parse_template(std::string_view source, const ParseOptions& options) {
  auto program = std::make_unique<Program>();
  program->source = std::string(source);
  Parser parser(tokenize(source), options);
  program->body = parser.subparse({});
  NameChecker(options).body(program->body, false, false);
  return program;
}

}  // namespace tk::jinja::detail
