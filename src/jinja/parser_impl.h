// The parser's state, shared by the statement half (parser.cpp) and the expression half
// (parser_expr.cpp). Internal to the parser.
#pragma once

#include <string>
#include <vector>

#include "lexer.h"
#include "parser.h"

namespace tk::jinja::detail {

// Deeper templates or expressions than this are refused: the parser and the interpreter
// recurse once per level.
constexpr int kMaxParseDepth = 200;

class Parser {
 public:
  Parser(std::vector<Token> tokens, const ParseOptions& options) : tokens_(std::move(tokens)), options_(options) {}

  Body subparse(const std::vector<std::string>& end_tags);

  // Expressions (parser_expr.cpp).
  ExprPtr parse_tuple(bool simplified = false, bool with_condexpr = true,
                      const std::vector<std::string>& extra_end = {}, bool explicit_parens = false,
                      bool with_namespace = false);
  ExprPtr parse_expression(bool with_condexpr = true);
  ExprPtr parse_filter(ExprPtr node, bool start_inline = false);
  ExprPtr parse_primary(bool with_namespace = false);
  ExprPtr parse_assign_target(bool with_tuple = true, bool name_only = false,
                              const std::vector<std::string>& extra_end = {}, bool with_namespace = false);

 private:
  friend struct DepthScope;
  // Token stream.
  const Token& current() const { return tokens_[pos_]; }
  const Token& look() const { return tokens_[pos_ + 1 < tokens_.size() ? pos_ + 1 : pos_]; }
  const Token& next();
  bool is_name(const char* value) const { return current().type == TokenType::kName && current().value == value; }
  bool is_op(const char* value) const { return current().type == TokenType::kOperator && current().value == value; }
  bool skip_name(const char* value);
  bool skip_op(const char* value);
  const Token& expect_op(const char* value);
  const Token& expect_name(const char* value = nullptr);
  void expect_block_end();
  [[noreturn]] void fail(const std::string& message, int line = 0) const;
  [[noreturn]] void fail_unknown_tag(const std::string& name, int line) const;
  [[noreturn]] void fail_eof(const std::vector<std::string>* end_tags) const;
  std::string describe_current() const;
  void enter();
  void leave() { --depth_; }

  // Statements (parser.cpp).
  StmtPtr parse_statement();
  Body parse_statements(const std::vector<std::string>& end_tags, bool drop_needle);
  StmtPtr parse_for();
  StmtPtr parse_if();
  StmtPtr parse_set();
  StmtPtr parse_macro();
  StmtPtr parse_call_block();
  StmtPtr parse_filter_block();
  StmtPtr parse_with();
  StmtPtr parse_scoped_block(const char* end_tag);
  StmtPtr parse_print();
  void parse_signature(MacroSignature& signature);

  // Expressions (parser_expr.cpp).
  ExprPtr parse_condexpr();
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter = true);
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_subscribed();
  void parse_call_args(ArgList& out);
  ExprPtr parse_call(ExprPtr node);
  ExprPtr parse_test(ExprPtr node);
  bool is_tuple_end(const std::vector<std::string>& extra_end) const;

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  const ParseOptions& options_;
  std::vector<std::string> tag_stack_;
  std::vector<std::vector<std::string>> end_token_stack_;
  int depth_ = 0;
};

struct DepthScope {
  explicit DepthScope(Parser& p) : parser(p) { parser.enter(); }
  ~DepthScope() { parser.leave(); }
  Parser& parser;
};

}  // namespace tk::jinja::detail
