// GBNF grammars accepted and rejected as whole strings, and parse errors with line:column.
#include "test_util.h"

namespace tk::grammar::testing {
namespace {

struct Case {
  const char* grammar;
  std::vector<const char*> accept, reject;
};

TEST(Gbnf, AcceptsAndRejects) {
  const std::vector<Case> cases = {
      {R"(root ::= "a")", {"a"}, {"", "b", "aa"}},
      {R"(root ::= "ab" | "cd")", {"ab", "cd"}, {"a", "abcd", "ac"}},
      {R"(root ::= [a-c]+)", {"a", "abcabc"}, {"", "d", "abd"}},
      {R"(root ::= [^a-c]*)", {"", "xyz", "日本"}, {"a", "xa"}},
      {R"(root ::= "x"? "y"*)", {"", "x", "yy", "xyyy"}, {"xx", "yx"}},
      {R"(root ::= ("ab")+ "c")", {"abc", "ababc"}, {"c", "abac"}},
      {R"(root ::= [0-9]{3})", {"123"}, {"12", "1234"}},
      {R"(root ::= [0-9]{2,4})", {"12", "123", "1234"}, {"1", "12345"}},
      {R"(root ::= [0-9]{2,})", {"12", "123456789"}, {"1"}},
      {R"(root ::= "a"{0,20} "b")", {"b", "ab", "aaaaaaaaaaaaaaaaaaaab"}, {"aaaaaaaaaaaaaaaaaaaaab", "a"}},
      {R"(root ::= ("x" [0-9]){3,100})", {"x1x2x3", "x1x2x3x4x5"}, {"x1x2", "x1x2x"}},
      {R"(root ::= [a-z]{10,12} "!")", {"abcdefghij!", "abcdefghijkl!"}, {"abcdefghi!", "abcdefghijklm!"}},
      {"root ::= \"\\n\\t\\\\\\\"\\x41\\u00e9\\U0001F600\"", {"\n\t\\\"Aé😀"}, {"\n"}},
      {R"(root ::= [\]\-\\] [\x41-\x43])", {"]A", "-B", "\\C"}, {"aA", "]D"}},
      {R"(root ::= . .)", {"ab", "é日", "😀x"}, {"a", "abc"}},
      {"root ::= item (\",\" item)*\nitem ::= [a-z]+ # a word\n", {"a", "ab,c,def"}, {"", "a,", ",a"}},
      {"root ::= list\nlist ::= \"[\" (list (\",\" list)*)? \"]\"", {"[]", "[[],[[]]]"}, {"[", "[],[]", "[,]"}},
      {"root ::= a\na ::= \"x\" a | \"y\"", {"y", "xxxy"}, {"x", "yy"}},
      {"root ::= e\ne ::= t (\"+\" t)*\nt ::= f (\"*\" f)*\nf ::= [0-9] | \"(\" e \")\"",
       {"1", "1+2*3", "(1+2)*3", "((4))"}, {"1+", "(1", "1)"}},
      {"root ::= ws \"a\" ws\nws ::= [ ]*", {"a", "  a  "}, {" b"}},
      {"root ::= x x\nx ::= \"a\"?", {"", "a", "aa"}, {"aaa"}},
      {"root ::= (\"a\" | \"\") (\"b\" | \"\")", {"", "a", "b", "ab"}, {"ba"}},
      {"root ::= (\"a\"?){20,30} \"b\"", {"b", "aab", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"}, {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"}},
      {"root ::= (x){0,50}\nx ::= \"ab\" | \"a\"", {"", "a", "ab", "aab", "abab"}, {"b", "abb"}},
      {"root ::= ([a-z]* \",\"){2,40}", {",,", "a,b,", "abc,,"}, {",", "a,b"}},
      {"root ::= \"日本\" [語-語]", {"日本語"}, {"日本"}},
      {"root   ::=   \"a\"\n\n\n  | \"b\"\n", {"a", "b"}, {"ab"}},
      {"root ::= (\n  \"a\"\n  \"b\"\n)", {"ab"}, {"a"}},
  };
  for (const Case& c : cases) {
    Grammar g = gbnf_or_die(c.grammar);
    auto compiled = compile_or_die(g);
    if (!compiled) continue;
    for (const char* s : c.accept) EXPECT_TRUE(matches(compiled, s)) << c.grammar << " should accept '" << s << "'";
    for (const char* s : c.reject) EXPECT_FALSE(matches(compiled, s)) << c.grammar << " should reject '" << s << "'";
  }
}

std::string error_of(const std::string& text) {
  auto g = parse_gbnf(text);
  if (!g.ok()) return g.status().message();
  auto c = CompiledGrammar::compile(g.value(), byte_vocab());
  return c.ok() ? "" : c.status().message();
}

TEST(Gbnf, ErrorsNameLineAndColumn) {
  EXPECT_EQ(error_of(""), "grammar: empty grammar (no rules)");
  EXPECT_EQ(error_of("root ::= \"a"), "grammar:1:10: unclosed string literal");
  EXPECT_EQ(error_of("root ::= a\n"), "grammar:1:10: undefined rule 'a'");
  EXPECT_EQ(error_of("root ::= \"a\"\nroot ::= \"b\""), "grammar:2:1: rule 'root' is defined twice");
  EXPECT_EQ(error_of("root ::= (\"a\""), "grammar:1:10: unclosed '('");
  EXPECT_EQ(error_of("root ::= \"a\")"), "grammar:1:13: unmatched ')'");
  EXPECT_EQ(error_of("root ::= [a-"), "grammar:1:10: unclosed character class");
  EXPECT_EQ(error_of("root ::= [z-a]"), "grammar:1:11: character range out of order");
  EXPECT_EQ(error_of("root ::= \"\\q\""), "grammar:1:11: unknown escape '\\q'");
  EXPECT_EQ(error_of("root ::= \"\\x4\""), "grammar:1:11: expected 2 hex digits after \\x");
  EXPECT_EQ(error_of("root ::= \"\\uD800\""), "grammar:1:11: escape is not a Unicode character");
  EXPECT_EQ(error_of("root ::= \"a\"{3,2}"), "grammar:1:13: repetition {m,n} with n < m");
  EXPECT_EQ(error_of("root ::= \"a\"{3"), "grammar:1:13: unclosed '{' (expected {m}, {m,} or {m,n})");
  EXPECT_EQ(error_of("root ::= \"a\"{99999999999}"), "grammar:1:14: repetition count over the limit of 1073741824");
  EXPECT_EQ(error_of("root = \"a\""), "grammar:1:6: expected '::=' after rule name 'root'");
  EXPECT_EQ(error_of("x ::= \"a\""), "grammar: no rule named 'root' (the start rule)");
  EXPECT_EQ(error_of("root ::= \"a\" @"), "grammar:1:14: unexpected '@'");
  EXPECT_EQ(error_of("root ::= \"\xff\""), "grammar:1:11: invalid UTF-8");
  EXPECT_EQ(error_of("root ::= \"a\"\n  x ::= \"\nb\""), "grammar:2:9: unclosed string literal");
  EXPECT_EQ(error_of("root ::= root \"a\" | \"b\""), "left recursion in the grammar: root -> root");
  EXPECT_EQ(error_of("root ::= a\na ::= b? \"x\" | \"y\"\nb ::= \"\" | a"), "left recursion in the grammar: a -> b -> a");
  EXPECT_EQ(error_of("root ::= [^\\x00-\\U0010FFFF]"), "the grammar matches nothing (rule 'root' cannot complete)");
  EXPECT_EQ(error_of("root ::= a\na ::= \"x\" a"), "the grammar matches nothing (rule 'root' cannot complete)");
  EXPECT_EQ(error_of("root ::= \"é\" # ü\n"), "");
}

TEST(Gbnf, PrintedGrammarParsesToTheSameLanguage) {
  const char* text =
      "root ::= obj | \"x\"{3,40} | [^\"\\\\\\x00-\\x1F]* | (\"a\" | \"b\")? \"\\n\" [\\]\\-^]+\n"
      "obj ::= \"{\" ( [a-z]+ \":\" obj )* \"}\"\n";
  Grammar g = gbnf_or_die(text);
  std::string printed = g.to_gbnf();
  Grammar again = gbnf_or_die(printed);
  ASSERT_FALSE(again.empty()) << printed;
  EXPECT_EQ(again.to_gbnf(), printed);
  auto a = compile_or_die(g), b = compile_or_die(again);
  for (const char* s : {"{}", "{a:{}b:{}}", "xxx", "abc", "a\n]", "\n-^", "xx", "\"", "{a}"}) {
    EXPECT_EQ(matches(a, s), matches(b, s)) << s << "\n" << printed;
  }
}

}  // namespace
}  // namespace tk::grammar::testing
