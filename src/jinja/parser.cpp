// Statements (jinja2.parser): the block tags a chat template uses (if/for/set/macro/call/filter/
// with/block/print, break/continue from the loopcontrols extension, transformers' generation
// tag), the token-stream helpers with Jinja's error messages, and the compile-time check of
// filter and test names.
#include "parser_impl.h"

namespace tk::jinja::detail {

namespace {

StmtPtr make(StmtKind kind, int line) { return std::make_unique<Stmt>(kind, line); }

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::kName: case TokenType::kOperator: return t.value;
    case TokenType::kString: return "string";
    case TokenType::kInteger: return "integer";
    case TokenType::kFloat: return "float";
    case TokenType::kData: return "template data / text";
    case TokenType::kVariableBegin: return "begin of print statement";
    case TokenType::kVariableEnd: return "end of print statement";
    case TokenType::kBlockBegin: return "begin of statement block";
    case TokenType::kBlockEnd: return "end of statement block";
    case TokenType::kEof: return "end of template";
  }
  return "token";
}

}  // namespace

const Token& Parser::next() {
  const Token& t = tokens_[pos_];
  if (pos_ + 1 < tokens_.size()) ++pos_;
  return t;
}

bool Parser::skip_name(const char* value) {
  if (!is_name(value)) return false;
  next();
  return true;
}

bool Parser::skip_op(const char* value) {
  if (!is_op(value)) return false;
  next();
  return true;
}

std::string Parser::describe_current() const { return describe(current()); }

void Parser::fail(const std::string& message, int line) const {
  throw JinjaError(ErrorKind::kTemplateSyntaxError, message, line ? line : current().line);
}

const Token& Parser::expect_op(const char* value) {
  if (is_op(value)) return next();
  if (current().type == TokenType::kEof) fail(std::string("unexpected end of template, expected '") + value + "'.");
  fail(std::string("expected token '") + value + "', got '" + describe_current() + "'");
}

const Token& Parser::expect_name(const char* value) {
  if (current().type == TokenType::kName && (!value || current().value == value)) return next();
  const std::string wanted = value ? std::string(value) : "name";
  if (current().type == TokenType::kEof) fail("unexpected end of template, expected '" + wanted + "'.");
  fail("expected token '" + wanted + "', got '" + describe_current() + "'");
}

void Parser::expect_block_end() {
  if (current().type == TokenType::kBlockEnd) {
    next();
    return;
  }
  if (current().type == TokenType::kEof) fail("unexpected end of template, expected 'end of statement block'.");
  fail("expected token 'end of statement block', got '" + describe_current() + "'");
}

void Parser::enter() {
  if (++depth_ > kMaxParseDepth) {
    --depth_;
    fail("template nests too deeply (more than " + std::to_string(kMaxParseDepth) + " levels)");
  }
}

void Parser::fail_unknown_tag(const std::string& name, int line) const {
  std::string message = name.empty() ? "Unexpected end of template." : "Encountered unknown tag '" + name + "'.";
  if (!end_token_stack_.empty()) {
    const auto& looking = end_token_stack_.back();
    std::string wanted;
    for (size_t k = 0; k < looking.size(); ++k) wanted += (k ? " or '" : "'") + looking[k] + "'";
    bool expected = false;
    for (const auto& tags : end_token_stack_)
      for (const auto& tag : tags) expected = expected || tag == name;
    if (!name.empty() && expected) {
      message += " You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for " + wanted + ".";
    } else {
      message += " Jinja was looking for the following tags: " + wanted + ".";
    }
  }
  if (!tag_stack_.empty()) message += " The innermost block that needs to be closed is '" + tag_stack_.back() + "'.";
  fail(message, line);
}

void Parser::fail_eof(const std::vector<std::string>* end_tags) const {
  Parser* self = const_cast<Parser*>(this);
  if (end_tags) self->end_token_stack_.push_back(*end_tags);
  fail_unknown_tag("", current().line);
}

Body Parser::subparse(const std::vector<std::string>& end_tags) {
  Body body;
  if (!end_tags.empty()) end_token_stack_.push_back(end_tags);
  StmtPtr output;
  auto flush = [&] {
    if (output) body.push_back(std::move(output));
  };
  auto piece = [&](int line) -> Stmt::Piece& {
    if (!output) output = make(StmtKind::kOutput, line);
    output->pieces.emplace_back();
    return output->pieces.back();
  };
  while (current().type != TokenType::kEof) {
    const Token& token = current();
    if (token.type == TokenType::kData) {
      piece(token.line).text = token.value;
      next();
    } else if (token.type == TokenType::kVariableBegin) {
      next();
      piece(token.line).expr = parse_tuple();
      if (current().type != TokenType::kVariableEnd) {
        if (current().type == TokenType::kEof) fail("unexpected end of template, expected 'end of print statement'.");
        fail("expected token 'end of print statement', got '" + describe_current() + "'");
      }
      next();
    } else {  // block begin
      flush();
      next();
      if (current().type == TokenType::kName) {
        for (const std::string& tag : end_tags) {
          if (current().value == tag) {
            end_token_stack_.pop_back();
            return body;
          }
        }
      }
      body.push_back(parse_statement());
      expect_block_end();
    }
  }
  flush();
  if (!end_tags.empty()) end_token_stack_.pop_back();
  return body;
}

Body Parser::parse_statements(const std::vector<std::string>& end_tags, bool drop_needle) {
  skip_op(":");
  expect_block_end();
  Body body = subparse(end_tags);
  if (current().type == TokenType::kEof) fail_eof(&end_tags);
  if (drop_needle) next();
  return body;
}

}  // namespace tk::jinja::detail
