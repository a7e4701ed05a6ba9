// The Jinja lexer: template text -> tokens, with Jinja's whitespace control as transformers
// configures it (trim_blocks, lstrip_blocks, `-`/`+` markers, raw blocks, one trailing newline
// dropped, newlines normalised to \n).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tk::jinja::detail {

enum class TokenType { kData, kVariableBegin, kVariableEnd, kBlockBegin, kBlockEnd, kName, kString, kInteger, kFloat, kOperator, kEof };

struct Token {
  TokenType type = TokenType::kEof;
  std::string value;  // data text, name, decoded string, operator text
  int line = 1;
  int64_t int_value = 0;
  double float_value = 0;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// The value of a string literal's body (escape.cpp); TemplateSyntaxError on a bad escape.
std::string unescape_string(std::string_view body, int line);

// Throws JinjaError (TemplateSyntaxError) with the line of the offending text.
std::vector<Token> tokenize(std::string_view source, const LexOptions& options = {});

}  // namespace tk::jinja::detail
