// The matcher's masks against brute force over a small vocabulary (token t is allowed iff
// feeding its bytes keeps the grammar alive), at every state of random walks; end of grammar,
// eos, special tokens, rollback.
#include "test_util.h"

namespace tk::grammar::testing {
namespace {

const char* const kGrammars[] = {
    R"(root ::= "yes" | "no" | "maybe")",
    R"(root ::= [a-z]+)",
    R"(root ::= "{" ws "\"name\"" ws ":" ws str ws "}"
str ::= "\"" ([^"\\] | "\\" ["\\nt])* "\""
ws ::= [ \n]{0,4})",
    R"(root ::= "[" (v ("," v)*)? "]"
v ::= [0-9]+ | root | "true" | "null")",
    R"(root ::= "\"" [a-z]{0,30} "\"")",
    R"(root ::= "\"" ([^"\\] | "\\u" [0-9a-f]{4}){2,12} "\"" ",")",
    R"(root ::= ("a" | "ab" | "abc")* "d"?)",
    R"(root ::= x x x
x ::= "" | "a" | "tr" "ue"?)",
    R"(root ::= (item ","){1,20}
item ::= [a-z]* | "\"" [^"]* "\"")",
    R"(root ::= "日本"* . [é]?)",
    R"(root ::= ("12" | [0-9]{1,3}){0,9} "e")",
    R"(root ::= ([ ]{0,20} "x"){1,30})",
    R"(root ::= "{" (kv (",\n  " kv)*)? "}"
kv ::= "\"" ("name" | "id" | "type") "\": " val
val ::= "null" | "true" | [0-9]{1,3} | root)",
    R"(root ::= (("a"?){0,100} "b"){0,3})",
    // Counted (not unrolled) repetitions: bounds past the unrolling limit.
    R"(root ::= "\"" [a-z]{0,70} "\"" [ ]{2,90} "x")",
    R"(root ::= ("ab" | "a" | [0-9]{1,3}){3,80} ",")",
    // A right-linear chain of rules (what a regex with lengths becomes): embedded into one DFA.
    R"(root ::= "\"" c0
c0 ::= [a-z] c1 | "\""
c1 ::= [a-z] c2 | "-" c3 | "\""
c2 ::= [0-9] c3 | "\""
c3 ::= [a-z] c4 | "\""
c4 ::= "\"")",
};

TEST(Matcher, MasksMatchBruteForce) {
  for (const char* text : kGrammars) {
    Grammar g = gbnf_or_die(text);
    auto c = compile_or_die(g, small_vocab());
    WalkStats stats;
    check_masks_on_walks(c, 17, 12, 40, &stats);
    EXPECT_GT(stats.states, 12) << text;
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "grammar: " << text;
      return;
    }
  }
}

TEST(Matcher, PrecomputedAndLazyTablesAgree) {
  for (const char* text : kGrammars) {
    Grammar g = gbnf_or_die(text);
    CompileOptions opt;
    opt.precompute = true;
    auto c = CompiledGrammar::compile(g, small_vocab(), opt);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    EXPECT_GT(c.value()->stats().tables, 0);
    check_masks_on_walks(c.value(), 5, 4, 30);
  }
}

TEST(Matcher, ParallelPrecomputeAgrees) {
  Grammar g = gbnf_or_die(kGrammars[2]);
  CompileOptions opt;
  opt.precompute = true;
  opt.precompute_threads = 3;
  auto c = CompiledGrammar::compile(g, small_vocab(), opt);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_GT(c.value()->stats().tables, 10);
  check_masks_on_walks(c.value(), 8, 4, 30);
}

// The tables see through a chain of tail-called rules: no token is left to the run-time check.
TEST(Matcher, TailChainsHaveNoUncertainTokens) {
  Grammar g = gbnf_or_die(kGrammars[std::size(kGrammars) - 1]);
  CompileOptions opt;
  opt.precompute = true;
  auto c = CompiledGrammar::compile(g, small_vocab(), opt);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_GT(c.value()->stats().tables, 3);
  EXPECT_EQ(c.value()->stats().uncertain_tokens, 0);
  EXPECT_TRUE(matches(c.value(), "\"ab1x\""));
  EXPECT_TRUE(matches(c.value(), "\"a-x\""));
  EXPECT_TRUE(matches(c.value(), "\"\""));
  EXPECT_FALSE(matches(c.value(), "\"a1\""));
  EXPECT_FALSE(matches(c.value(), "\"ab1xy\""));
}

TEST(Matcher, EndOfGrammarAndEos) {
  auto c = compile_or_die(gbnf_or_die(R"(root ::= "ab" "c"?)"), small_vocab());
  Matcher m(c);
  const int32_t eos = small_vocab_eos();
  std::vector<uint32_t> mask(small_vocab()->mask_words());
  EXPECT_FALSE(m.can_end());
  EXPECT_FALSE(m.accept_token(eos));
  EXPECT_TRUE(m.accept_token('a'));
  EXPECT_TRUE(m.accept_token('b'));
  EXPECT_TRUE(m.can_end());
  EXPECT_FALSE(m.must_end());
  ASSERT_TRUE(m.fill_next_token_bitmask(mask.data()));
  EXPECT_TRUE((mask[eos >> 5] >> (eos & 31)) & 1);
  EXPECT_TRUE(m.accept_token('c'));
  EXPECT_TRUE(m.must_end());
  ASSERT_TRUE(m.fill_next_token_bitmask(mask.data()));
  int bits = 0;
  for (uint32_t w : mask) bits += __builtin_popcount(w);
  EXPECT_EQ(bits, 1);  // only eos
  EXPECT_FALSE(m.accept_token('c'));
  EXPECT_TRUE(m.accept_token(eos));
  EXPECT_TRUE(m.is_terminated());
  EXPECT_FALSE(m.accept_token('a'));
  EXPECT_TRUE(m.rollback(2));
  EXPECT_FALSE(m.is_terminated());
  EXPECT_TRUE(m.accept_token('c'));
  EXPECT_FALSE(m.rollback(100));
  m.reset();
  EXPECT_EQ(m.num_accepted(), 0);
  EXPECT_FALSE(m.can_end());
}

TEST(Matcher, SpecialTokensAndIdsPastTheVocabularyAreNeverAllowed) {
  auto c = compile_or_die(gbnf_or_die(R"(root ::= [^x]*)"), small_vocab());
  Matcher m(c);
  const Vocabulary& v = *small_vocab();
  std::vector<uint32_t> mask(v.mask_words());
  ASSERT_TRUE(m.fill_next_token_bitmask(mask.data()));
  for (int32_t t = 0; t < v.mask_size(); ++t) {
    bool on = (mask[t >> 5] >> (t & 31)) & 1;
    if (t >= v.size() && t != small_vocab_eos()) EXPECT_FALSE(on) << t;
    if (t < v.size() && v.is_special(t) && t != small_vocab_eos()) EXPECT_FALSE(on) << t;
    if (t < v.size() && v.is_special(t)) EXPECT_FALSE(m.accept_token(t) && t != small_vocab_eos()) << t;
  }
  EXPECT_FALSE(m.accept_token(-1));
  EXPECT_FALSE(m.accept_token(v.mask_size()));
}

TEST(Matcher, RollbackRestoresMasks) {
  auto c = compile_or_die(gbnf_or_die("root ::= \"{\" (\"\\\"a\\\"\" \":\" [0-9]{1,3} \",\"?)* \"}\""), small_vocab());
  Matcher m(c);
  const Vocabulary& v = *small_vocab();
  std::vector<uint32_t> before(v.mask_words()), after(v.mask_words());
  ASSERT_TRUE(m.accept_bytes("{\"a\":1"));
  m.fill_next_token_bitmask(before.data());
  ASSERT_TRUE(m.accept_bytes("2"));
  ASSERT_TRUE(m.accept_bytes(","));
  ASSERT_TRUE(m.rollback(2));
  m.fill_next_token_bitmask(after.data());
  EXPECT_EQ(before, after);
  EXPECT_FALSE(m.accept_bytes("x"));
  EXPECT_EQ(m.num_accepted(), 1);
}

}  // namespace
}  // namespace tk::grammar::testing
