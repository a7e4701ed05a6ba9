// Lexing and parsing: whitespace control as Jinja does it with trim_blocks and lstrip_blocks,
// raw blocks, literals, operator precedence, and syntax errors that name the template line.
#include "test_util.h"

namespace tk::jinja::testing {
namespace {

TEST(JinjaLexer, TrimBlocksAndLstripBlocks) {
  EXPECT_EQ(render("a\n  {% if true %}\n  b\n  {% endif %}\n  c"), "a\n  b\n  c");
  EXPECT_EQ(render("{% for i in [1, 2] %}\n{{ i }}\n{% endfor %}"), "1\n2\n");
  EXPECT_EQ(render("  {{ 'v' }}  \n"), "  v  ");  // variables are not lstripped; one final newline dropped
  EXPECT_EQ(render("  {# note #}\nx"), "x");     // comments are
}

TEST(JinjaLexer, MinusAndPlusMarkers) {
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("x {{- ' y ' -}} z"), "x y z");
  EXPECT_EQ(render("a\n    {%+ if true %}b{% endif %}"), "a\n    b");
  EXPECT_EQ(render("{% if true +%}\nb{% endif %}"), "\nb");
  EXPECT_EQ(render("a\n\n   {%- if true %}b{% endif %}"), "ab");
}

TEST(JinjaLexer, RawBlocksNewlinesAndTrailingNewline) {
  EXPECT_EQ(render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
  EXPECT_EQ(render("a\r\nb\rc\n\n"), "a\nb\nc\n");
  EXPECT_EQ(render("{{ 'a' 'b' }}{{ '\\u00e9\\t\\x41' }}"), "ab\xC3\xA9\tA");
  EXPECT_EQ(render("{{ {'a': {'b': 1}} }}"), "{'a': {'b': 1}}");  // }} inside braces is not the end
}

TEST(JinjaParser, LiteralsAndPrecedence) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 10 // 4 }} {{ 10 / 4 }} {{ -7 % 3 }}"), "7 64 4 2 2.5 2");
  EXPECT_EQ(render("{{ 0x10 }} {{ 0b11 }} {{ 0o7 }} {{ 1_000 }} {{ 1e3 }} {{ 5 if false else 2.5 }}"), "16 3 7 1000 1000.0 2.5");
  EXPECT_EQ(render("{{ not 1 == 2 }} {{ 1 < 2 < 3 }} {{ 'a' ~ 1 * 2 }} {{ -3|abs }}"), "True True a2 3");
  EXPECT_EQ(render("{{ 1 if false }}|{{ 'x' if none else 'y' }}|{{ (1, 2) }}|{{ 1, 2 }}"), "|y|(1, 2)|(1, 2)");
}

TEST(JinjaParser, SyntaxErrorsNameTheLine) {
  EXPECT_EQ(render("ok\n{% if true %}\nunclosed"),
            "ERROR TemplateSyntaxError: Unexpected end of template. Jinja was looking for the following tags: 'elif' or "
            "'else' or 'endif'. The innermost block that needs to be closed is 'if'. @3");
  EXPECT_EQ(render("a\nb\n{{ 1 + }}"), "ERROR TemplateSyntaxError: unexpected 'end of print statement' @3");
  EXPECT_EQ(render("{% frobnicate %}"), "ERROR TemplateSyntaxError: Encountered unknown tag 'frobnicate'. @1");
  EXPECT_EQ(render("{% for x in y %}\n{% endif %}"),
            "ERROR TemplateSyntaxError: Encountered unknown tag 'endif'. Jinja was looking for the following tags: "
            "'endfor' or 'else'. The innermost block that needs to be closed is 'for'. @2");
  EXPECT_EQ(render("\n\n{# open"), "ERROR TemplateSyntaxError: Missing end of comment tag @3");
  EXPECT_EQ(render("{{ (1, 2 }}"), "ERROR TemplateSyntaxError: unexpected '}', expected ')' @1");
  EXPECT_EQ(render("{% set 1 = 2 %}"), "ERROR TemplateSyntaxError: can't assign to 'const' @1");
  EXPECT_EQ(render("{% macro m(a=1, b) %}{% endmacro %}"), "ERROR TemplateSyntaxError: non-default argument follows default argument @1");
  EXPECT_EQ(error_type("{% break %}"), "TemplateSyntaxError");
  EXPECT_EQ(error_type("{% include 'x.html' %}"), "TemplateSyntaxError");
  EXPECT_EQ(error_type("{{ 99999999999999999999 }}"), "TemplateSyntaxError");  // integers are 64-bit
}

TEST(JinjaParser, UnknownFiltersFailAtCompileTimeOutsideIf) {
  EXPECT_EQ(render("\n{{ x|nofilter }}"), "ERROR TemplateAssertionError: No filter named 'nofilter'. @2");
  EXPECT_EQ(render("{{ x is nottest }}"), "ERROR TemplateAssertionError: No test named 'nottest'. @1");
  EXPECT_EQ(render("{% if false %}{{ x|nofilter }}{% endif %}ok"), "ok");
  EXPECT_EQ(render("{% if true %}{{ x|from_json }}{% endif %}"), "ERROR TemplateRuntimeError: No filter named 'from_json' found. @1");
}

TEST(JinjaParser, DeepNestingIsAnError) {
  std::string deep(500, '(');
  deep = "{{ " + deep + "1" + std::string(500, ')') + " }}";
  EXPECT_EQ(error_type(deep), "TemplateSyntaxError");
  std::string ifs;
  for (int k = 0; k < 300; ++k) ifs += "{% if true %}";
  EXPECT_EQ(error_type(ifs), "TemplateSyntaxError");
}

}  // namespace
}  // namespace tk::jinja::testing
