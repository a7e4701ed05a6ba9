// GrammarCache: hits and misses, keys that differ by options, errors (not cached), the bound,
// concurrent requests for one key (compiled once), and the background table worker.
#include <chrono>
#include <thread>

#include "test_util.h"

namespace tk::grammar::testing {
namespace {

GrammarSpec schema(const std::string& text, bool compact = false) {
  GrammarSpec s;
  s.kind = GrammarSpec::Kind::kJsonSchema;
  s.text = text;
  s.json.compact = compact;
  return s;
}

const char* const kSchema = R"({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]})";

TEST(GrammarCache, HitsMissesAndKeys) {
  GrammarCache cache(small_vocab());
  auto a = cache.get(schema(kSchema));
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto b = cache.get(schema(kSchema));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a.value().get(), b.value().get());
  auto c = cache.get(schema(kSchema, /*compact=*/true));
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a.value().get(), c.value().get());
  EXPECT_TRUE(matches(c.value(), R"({"id":12})"));
  EXPECT_FALSE(matches(c.value(), R"({"id": 12})"));
  EXPECT_TRUE(matches(a.value(), R"({"id": 12})"));
  GrammarSpec regex;
  regex.kind = GrammarSpec::Kind::kRegex;
  regex.text = kSchema;  // same text, other kind: another grammar (and not a valid regex match)
  auto r = cache.get(regex);
  GrammarSpec choice;
  choice.kind = GrammarSpec::Kind::kChoice;
  choice.choices = {"yes", "no"};
  auto ch = cache.get(choice);
  ASSERT_TRUE(ch.ok()) << ch.status().to_string();
  EXPECT_TRUE(matches(ch.value(), "no"));
  GrammarCache::Stats st = cache.stats();
  EXPECT_EQ(st.hits, 1);
  EXPECT_EQ(st.misses, 4);
}

TEST(GrammarCache, ErrorsAreReturnedAndNotKept) {
  GrammarCache cache(small_vocab());
  auto bad = cache.get(schema(R"({"type": "string", "pattern": "(a"})"));
  EXPECT_FALSE(bad.ok());
  auto again = cache.get(schema(R"({"type": "string", "pattern": "(a"})"));
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(bad.status().to_string(), again.status().to_string());
  EXPECT_EQ(cache.stats().misses, 2);
  EXPECT_EQ(cache.stats().entries, 0);
}

TEST(GrammarCache, BoundedLeastRecentlyUsedFirst) {
  GrammarCache::Options opt;
  opt.max_entries = 3;
  opt.background_tables = false;
  GrammarCache cache(small_vocab(), opt);
  auto spec = [](int i) {
    GrammarSpec s;
    s.kind = GrammarSpec::Kind::kGbnf;
    s.text = "root ::= \"" + std::to_string(i) + "\"";
    return s;
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cache.get(spec(i)).ok());
  ASSERT_TRUE(cache.get(spec(0)).ok());  // 0 is now the most recent; 1 the least
  ASSERT_TRUE(cache.get(spec(3)).ok());  // evicts 1
  GrammarCache::Stats st = cache.stats();
  EXPECT_EQ(st.entries, 3);
  EXPECT_EQ(st.evictions, 1);
  ASSERT_TRUE(cache.get(spec(0)).ok());
  EXPECT_EQ(cache.stats().hits, 2);
  ASSERT_TRUE(cache.get(spec(1)).ok());
  EXPECT_EQ(cache.stats().hits, 2);  // 1 was gone: compiled again
}

TEST(GrammarCache, BoundedByTableMemory) {
  GrammarCache::Options opt;
  opt.background_tables = false;
  opt.compile.precompute = true;  // tables at once: their size is known at the next get()
  opt.max_table_bytes = 1;        // any table is too much: only the newest entry stays
  GrammarCache cache(small_vocab(), opt);
  ASSERT_TRUE(cache.get(schema(kSchema)).ok());
  EXPECT_GT(cache.stats().table_bytes, 1);
  ASSERT_TRUE(cache.get(schema(kSchema, true)).ok());
  EXPECT_EQ(cache.stats().entries, 1);
  EXPECT_EQ(cache.stats().evictions, 1);
}

TEST(GrammarCache, ConcurrentRequestsCompileOnce) {
  GrammarCache cache(small_vocab());
  std::vector<std::thread> threads;
  std::vector<const CompiledGrammar*> got(6, nullptr);
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto g = cache.get(schema(kSchema));
      if (g.ok()) got[t] = g.value().get();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < 6; ++t) EXPECT_EQ(got[t], got[0]);
  EXPECT_NE(got[0], nullptr);
  EXPECT_EQ(cache.stats().misses, 1);
  EXPECT_EQ(cache.stats().hits, 5);
}

// The worker fills the tables; matchers used meanwhile (on this thread) stay exact.
TEST(GrammarCache, BackgroundTablesFillWhileMatching) {
  GrammarCache cache(small_vocab());
  auto g = cache.get(schema(R"({"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4})"));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  check_masks_on_walks(g.value(), 3, 3, 30);
  CompileOptions all;
  all.precompute = true;
  int64_t want = 0;
  {
    auto full = CompiledGrammar::compile(make_grammar(schema(R"({"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4})")).value(), small_vocab(), all);
    ASSERT_TRUE(full.ok());
    want = full.value()->stats().tables;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (g.value()->stats().tables < want && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(g.value()->stats().tables, want);
}

}  // namespace
}  // namespace tk::grammar::testing
