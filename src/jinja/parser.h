// Template text -> syntax tree (jinja2.parser): statements, expressions with Jinja's operator
// precedence, and the checks Jinja does at compile time (unknown tags, unknown filters and
// tests outside `if` blocks).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ast.h"

namespace tk::jinja::detail {

struct ParseOptions {
  std::function<bool(const std::string&)> has_filter;
  std::function<bool(const std::string&)> has_test;
};

// Throws JinjaError (TemplateSyntaxError / TemplateAssertionError) with the template line.
std::unique_ptr<Program> parse_template(std::string_view source, const ParseOptions& options);

}  // namespace tk::jinja::detail
