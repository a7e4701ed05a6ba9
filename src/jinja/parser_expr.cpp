// Expressions, with Jinja's precedence from loosest to tightest: conditional `a if c else b`,
// or, and, not, comparisons (chained; in / not in), + -, ~, * / // %, ** (left-associative),
// unary - +, then primaries with postfix .attr [index] (call) and |filter / `is` test.
#include "parser_impl.h"

namespace tk::jinja::detail {

namespace {

ExprPtr make(ExprKind kind, int line) { return std::make_unique<Expr>(kind, line); }

ExprPtr binary(BinaryOp op, ExprPtr left, ExprPtr right, int line) {
  auto e = make(ExprKind::kBinary, line);
  e->op = op;
  e->a = std::move(left);
  e->b = std::move(right);
  return e;
}

}  // namespace

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthScope depth(*this);
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
  int line = current().line;
  ExprPtr expr1 = parse_or();
  while (skip_name("if")) {
    auto cond = make(ExprKind::kCondExpr, line);
    cond->a = parse_or();
    if (skip_name("else")) cond->c = parse_condexpr();
    cond->b = std::move(expr1);
    expr1 = std::move(cond);
    line = current().line;
  }
  return expr1;
}

ExprPtr Parser::parse_or() {
  int line = current().line;
  ExprPtr left = parse_and();
  while (skip_name("or")) {
    auto e = make(ExprKind::kOr, line);
    e->a = std::move(left);
    e->b = parse_and();
    left = std::move(e);
    line = current().line;
  }
  return left;
}

ExprPtr Parser::parse_and() {
  int line = current().line;
  ExprPtr left = parse_not();
  while (skip_name("and")) {
    auto e = make(ExprKind::kAnd, line);
    e->a = std::move(left);
    e->b = parse_not();
    left = std::move(e);
    line = current().line;
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    DepthScope depth(*this);
    auto e = make(ExprKind::kNot, next().line);
    e->a = parse_not();
    return e;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  int line = current().line;
  ExprPtr expr = parse_math1();
  std::vector<std::pair<CompareOp, ExprPtr>> ops;
  static const std::pair<const char*, CompareOp> kOps[] = {{"==", CompareOp::kEq}, {"!=", CompareOp::kNe},
                                                          {"<", CompareOp::kLt},  {"<=", CompareOp::kLe},
                                                          {">", CompareOp::kGt},  {">=", CompareOp::kGe}};
  while (true) {
    bool matched = false;
    for (const auto& [text, op] : kOps) {
      if (is_op(text)) {
        next();
        ops.emplace_back(op, parse_math1());
        matched = true;
        break;
      }
    }
    if (matched) {
    } else if (skip_name("in")) {
      ops.emplace_back(CompareOp::kIn, parse_math1());
    } else if (is_name("not") && look().type == TokenType::kName && look().value == "in") {
      next();
      next();
      ops.emplace_back(CompareOp::kNotIn, parse_math1());
    } else {
      break;
    }
    line = current().line;
  }
  if (ops.empty()) return expr;
  auto e = make(ExprKind::kCompare, line);
  e->a = std::move(expr);
  e->comparisons = std::move(ops);
  return e;
}

ExprPtr Parser::parse_math1() {
  int line = current().line;
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    BinaryOp op = next().value == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
    left = binary(op, std::move(left), parse_concat(), line);
    line = current().line;
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  int line = current().line;
  ExprPtr first = parse_math2();
  if (!is_op("~")) return first;
  auto e = make(ExprKind::kConcat, line);
  e->items.push_back(std::move(first));
  while (skip_op("~")) e->items.push_back(parse_math2());
  return e;
}

ExprPtr Parser::parse_math2() {
  int line = current().line;
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const std::string op = next().value;
    BinaryOp kind = op == "*" ? BinaryOp::kMul : op == "/" ? BinaryOp::kDiv : op == "//" ? BinaryOp::kFloorDiv : BinaryOp::kMod;
    left = binary(kind, std::move(left), parse_pow(), line);
    line = current().line;
  }
  return left;
}

ExprPtr Parser::parse_pow() {
  int line = current().line;
  ExprPtr left = parse_unary();
  while (skip_op("**")) {
    left = binary(BinaryOp::kPow, std::move(left), parse_unary(), line);
    line = current().line;
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  DepthScope depth(*this);
  int line = current().line;
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    auto e = make(next().value == "-" ? ExprKind::kNeg : ExprKind::kPos, line);
    e->a = parse_unary(false);
    node = std::move(e);
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr Parser::parse_primary(bool with_namespace) {
  const Token& token = current();
  const int line = token.line;
  if (token.type == TokenType::kName) {
    std::string name = next().value;
    if (name == "true" || name == "True" || name == "false" || name == "False") {
      auto e = make(ExprKind::kConst, line);
      e->value = Value::boolean(name == "true" || name == "True");
      return e;
    }
    if (name == "none" || name == "None") {
      auto e = make(ExprKind::kConst, line);
      e->value = Value::none();
      return e;
    }
    if (with_namespace && is_op(".")) {
      next();
      auto e = make(ExprKind::kNsRef, line);
      e->value = Value::string(name);
      e->name = expect_name().value;
      return e;
    }
    auto e = make(ExprKind::kName, line);
    e->name = std::move(name);
    return e;
  }
  if (token.type == TokenType::kString) {
    std::string text;
    while (current().type == TokenType::kString) text += next().value;  // adjacent literals join
    auto e = make(ExprKind::kConst, line);
    e->value = Value::string(std::move(text));
    return e;
  }
  if (token.type == TokenType::kInteger || token.type == TokenType::kFloat) {
    auto e = make(ExprKind::kConst, line);
    e->value = token.type == TokenType::kInteger ? Value::integer(token.int_value) : Value::number(token.float_value);
    next();
    return e;
  }
  if (is_op("(")) {
    next();
    ExprPtr e = parse_tuple(false, true, {}, /*explicit_parens=*/true);
    expect_op(")");
    return e;
  }
  if (is_op("[")) return parse_list();
  if (is_op("{")) return parse_dict();
  fail("unexpected '" + describe_current() + "'", line);
}

bool Parser::is_tuple_end(const std::vector<std::string>& extra_end) const {
  const Token& t = current();
  if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd || (t.type == TokenType::kOperator && t.value == ")"))
    return true;
  if (t.type == TokenType::kEof) return true;
  for (const std::string& name : extra_end)
    if (t.type == TokenType::kName && t.value == name) return true;
  return false;
}

ExprPtr Parser::parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string>& extra_end,
                            bool explicit_parens, bool with_namespace) {
  DepthScope depth(*this);
  int line = current().line;
  std::vector<ExprPtr> args;
  bool is_tuple = false;
  while (true) {
    if (!args.empty()) expect_op(",");
    if (is_tuple_end(extra_end)) break;
    args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
    if (is_op(",")) is_tuple = true;
    else break;
    line = current().line;
  }
  if (!is_tuple) {
    if (!args.empty()) return std::move(args[0]);
    if (!explicit_parens) fail("Expected an expression, got '" + describe_current() + "'");
  }
  auto e = make(ExprKind::kTuple, line);
  e->items = std::move(args);
  return e;
}

ExprPtr Parser::parse_list() {
  auto e = make(ExprKind::kList, expect_op("[").line);
  while (!is_op("]")) {
    if (!e->items.empty()) expect_op(",");
    if (is_op("]")) break;
    e->items.push_back(parse_expression());
  }
  expect_op("]");
  return e;
}

ExprPtr Parser::parse_dict() {
  auto e = make(ExprKind::kDict, expect_op("{").line);
  while (!is_op("}")) {
    if (!e->items.empty()) expect_op(",");
    if (is_op("}")) break;
    e->items.push_back(parse_expression());
    expect_op(":");
    e->items.push_back(parse_expression());
  }
  expect_op("}");
  return e;
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
    else if (is_op("(")) node = parse_call(std::move(node));
    else return node;
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) node = parse_filter(std::move(node));
    else if (is_name("is")) node = parse_test(std::move(node));
    else if (is_op("(")) node = parse_call(std::move(node));
    else return node;
  }
}

}  // namespace tk::jinja::detail
