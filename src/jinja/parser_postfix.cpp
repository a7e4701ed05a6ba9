// Postfix expressions and targets: .attr and [subscript] (with slices), call arguments
// (positional, keyword, *args, **kwargs), |filters, `is` tests and assignment targets.
#include "parser_impl.h"

namespace tk::jinja::detail {

namespace {

ExprPtr make(ExprKind kind, int line) { return std::make_unique<Expr>(kind, line); }

}  // namespace

ExprPtr Parser::parse_subscript(ExprPtr node) {
  const Token& token = next();
  const int line = token.line;
  if (token.type == TokenType::kOperator && token.value == ".") {
    const Token& attr = next();
    if (attr.type == TokenType::kName) {
      auto e = make(ExprKind::kGetAttr, line);
      e->a = std::move(node);
      e->name = attr.value;
      return e;
    }
    if (attr.type != TokenType::kInteger) fail("expected name or number", attr.line);
    auto index = make(ExprKind::kConst, attr.line);
    index->value = Value::integer(attr.int_value);
    auto e = make(ExprKind::kGetItem, line);
    e->a = std::move(node);
    e->b = std::move(index);
    return e;
  }
  // '['
  std::vector<ExprPtr> args;
  while (!is_op("]")) {
    if (!args.empty()) expect_op(",");
    args.push_back(parse_subscribed());
  }
  expect_op("]");
  auto e = make(ExprKind::kGetItem, line);
  e->a = std::move(node);
  if (args.size() == 1) {
    e->b = std::move(args[0]);
  } else {
    e->b = make(ExprKind::kTuple, line);
    e->b->items = std::move(args);
  }
  return e;
}

// One subscript: an expression, or a slice start:stop:step with any part left out.
ExprPtr Parser::parse_subscribed() {
  const int line = current().line;
  ExprPtr start;
  if (!skip_op(":")) {
    ExprPtr node = parse_expression();
    if (!is_op(":")) return node;
    next();
    start = std::move(node);
  }
  auto slice = make(ExprKind::kSlice, line);
  slice->a = std::move(start);
  if (!is_op(":") && !is_op("]") && !is_op(",")) slice->b = parse_expression();
  if (skip_op(":")) {
    if (!is_op("]") && !is_op(",")) slice->c = parse_expression();
  }
  return slice;
}

void Parser::parse_call_args(ArgList& out) {
  const int line = expect_op("(").line;
  auto ensure = [&](bool ok) {
    if (!ok) fail("invalid syntax for function call expression", line);
  };
  bool require_comma = false;
  while (!is_op(")")) {
    if (require_comma) {
      expect_op(",");
      if (is_op(")")) break;  // trailing comma
    }
    if (is_op("*")) {
      ensure(!out.dyn_args && !out.dyn_kwargs);
      next();
      out.dyn_args = parse_expression();
    } else if (is_op("**")) {
      ensure(!out.dyn_kwargs);
      next();
      out.dyn_kwargs = parse_expression();
    } else if (current().type == TokenType::kName && look().type == TokenType::kOperator && look().value == "=") {
      ensure(!out.dyn_kwargs);
      std::string key = next().value;
      next();
      out.kwargs.push_back({std::move(key), parse_expression()});
    } else {
      ensure(!out.dyn_args && !out.dyn_kwargs && out.kwargs.empty());
      out.args.push_back(parse_expression());
    }
    require_comma = true;
  }
  expect_op(")");
}

ExprPtr Parser::parse_call(ExprPtr node) {
  auto e = make(ExprKind::kCall, current().line);
  e->a = std::move(node);
  parse_call_args(e->call);
  return e;
}

ExprPtr Parser::parse_filter(ExprPtr node, bool start_inline) {
  while (is_op("|") || start_inline) {
    if (!start_inline) next();
    const Token& token = expect_name();
    auto e = make(ExprKind::kFilter, token.line);
    e->name = token.value;
    while (skip_op(".")) e->name += "." + expect_name().value;
    if (is_op("(")) parse_call_args(e->call);
    e->a = std::move(node);
    node = std::move(e);
    start_inline = false;
  }
  return node;
}

ExprPtr Parser::parse_test(ExprPtr node) {
  const int line = next().line;  // 'is'
  const bool negated = skip_name("not");
  auto e = make(ExprKind::kTest, line);
  e->name = expect_name().value;
  while (skip_op(".")) e->name += "." + expect_name().value;
  const Token& t = current();
  if (is_op("(")) {
    parse_call_args(e->call);
  } else if ((t.type == TokenType::kName || t.type == TokenType::kString || t.type == TokenType::kInteger ||
              t.type == TokenType::kFloat || is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) fail("You cannot chain multiple tests with is");
    e->call.args.push_back(parse_postfix(parse_primary()));
  }
  e->a = std::move(node);
  if (!negated) return e;
  auto n = make(ExprKind::kNot, line);
  n->a = std::move(e);
  return n;
}

ExprPtr Parser::parse_assign_target(bool with_tuple, bool name_only, const std::vector<std::string>& extra_end,
                                    bool with_namespace) {
  ExprPtr target;
  if (name_only) {
    const Token& token = expect_name();
    target = make(ExprKind::kName, token.line);
    target->name = token.value;
    return target;
  }
  target = with_tuple ? parse_tuple(true, true, extra_end, false, with_namespace) : parse_primary(with_namespace);
  auto assignable = [](const Expr& e) {
    return e.kind == ExprKind::kName || e.kind == ExprKind::kNsRef;
  };
  bool ok = assignable(*target);
  if (target->kind == ExprKind::kTuple) {
    ok = true;
    for (const ExprPtr& item : target->items) ok = ok && item->kind == ExprKind::kName;
  }
  if (!ok) {
    std::string what = target->kind == ExprKind::kConst ? "const" : "expression";
    fail("can't assign to '" + what + "'", target->line);
  }
  return target;
}

}  // namespace tk::jinja::detail
