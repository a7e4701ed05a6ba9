// Scheduler and page bookkeeping with a fake runner: no model, no device. The fake "model"
// predicts token (sum of the sequence so far) mod 97, so any scheduling bug — a chunk computed
// twice, a skipped token, pages leaked or shared, a cached page of another prefix — changes the
// outputs or the page counts. Prompt log-probs come back as -(scored token id), so each can be
// checked against the position it claims.
#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <random>

#include "runner/runner.h"
#include "scheduler/scheduler.h"

namespace tk {
namespace {

int32_t fake_next(const Sequence& s) {
  int64_t sum = 0;
  for (int i = 0; i < s.num_tokens(); ++i) sum += s.token_at(i);
  return static_cast<int32_t>(sum % 97);
}

// Checks what a real runner relies on, then answers like the fake model.
class FakeRunner : public StepRunner {
 public:
  FakeRunner(PagePool& pool, int page_size) : pool_(pool), page_size_(page_size) {}
  Result<StepResult> run(const ScheduledStep& step) override {
    StepBatch b = ModelRunner::build_batch(step);
    TK_RETURN_IF_ERROR(b.validate(page_size_, pool_.num_pages()));
    for (int32_t slot : b.slot_mapping) {
      const int page = slot / page_size_;
      EXPECT_EQ(pool_.ref_count(page), 1) << "a step writes a shared page";
      EXPECT_FALSE(pool_.is_cached(page)) << "a step writes a cached page";
    }
    StepResult r;
    for (const ScheduledSeq& s : step.seqs) {
      EXPECT_EQ(s.start, s.seq->num_computed) << "chunks must continue where the cache ends";
      if (s.sample) r.sampled.push_back({fake_next(*s.seq), 0.f});
    }
    for (const ScheduledSeq& s : step.seqs)
      for (int p = s.logprob_begin; p < s.logprob_end; ++p) r.prompt_logprobs.push_back(-static_cast<float>(s.seq->token_at(p + 1)));
    tokens_run += step.num_tokens();
    ++steps;
    return r;
  }
  int64_t tokens_run = 0;
  int steps = 0;

 private:
  PagePool& pool_;
  int page_size_;
};

struct Outputs {
  std::map<std::pair<int64_t, int>, std::vector<int32_t>> tokens;  // (request, index) -> tokens
  std::map<int64_t, std::vector<float>> prompt_logprobs;           // of sequence 0
};

void step_once(Scheduler& sched, FakeRunner& runner, Outputs& out) {
  ScheduledStep step = sched.schedule();
  ASSERT_FALSE(step.empty());
  EXPECT_LE(step.num_tokens(), sched.config().max_num_batched_tokens);
  EXPECT_LE(static_cast<int>(step.seqs.size()), sched.config().max_num_seqs);
  auto result = runner.run(step);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  for (const SeqUpdate& u : sched.update(step, *result)) {
    if (u.token) out.tokens[{u.seq->request_id, u.seq->index}].push_back(u.token->token);
    auto& lp = out.prompt_logprobs[u.seq->request_id];
    if (u.seq->index == 0) lp.insert(lp.end(), u.prompt_logprobs.begin(), u.prompt_logprobs.end());
  }
}

void drive(Scheduler& sched, FakeRunner& runner, Outputs& out) {
  for (int guard = 0; sched.has_work() && guard < 100000; ++guard) {
    step_once(sched, runner, out);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// What the fake model generates for a prompt when nothing else interferes.
std::vector<int32_t> expected(const std::vector<int32_t>& prompt, int max_tokens) {
  auto seqs = make_sequences(0, prompt, {}, 0, 16);
  for (int i = 0; i < max_tokens; ++i) seqs[0]->output.push_back(fake_next(*seqs[0]));
  return seqs[0]->output;
}

SamplingParams fake_params(int max_tokens) {
  SamplingParams p;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

struct Fixture {
  Fixture(int num_pages, int page_size, SchedulerConfig config)
      : page_size(page_size), pool(num_pages), sched(config, pool), runner(pool, page_size) {}
  Sequence* add(int64_t id, std::vector<int32_t> prompt, SamplingParams params) {
    auto seqs = make_sequences(id, std::move(prompt), std::move(params), 1000 + id, page_size);
    std::vector<Sequence*> group;
    for (auto& s : seqs) group.push_back(s.get());
    sched.add(group);
    Sequence* first = group[0];
    for (auto& s : seqs) owned.push_back(std::move(s));
    return first;
  }
  int page_size;
  PagePool pool;
  Scheduler sched;
  FakeRunner runner;
  Outputs out;
  std::vector<std::unique_ptr<Sequence>> owned;
};

SchedulerConfig config(int max_seqs, int budget, bool caching = true) {
  SchedulerConfig c;
  c.max_num_seqs = max_seqs, c.max_num_batched_tokens = budget, c.max_model_len = 4096;
  c.enable_prefix_caching = caching;
  return c;
}

struct Case {
  int page_size, num_pages, max_seqs, budget, num_requests, max_tokens;
  bool caching;
};

class SchedulerTest : public ::testing::TestWithParam<Case> {};

TEST_P(SchedulerTest, OutputsAreThoseOfSequentialDecoding) {
  const Case c = GetParam();
  Fixture f(c.num_pages, c.page_size, config(c.max_seqs, c.budget, c.caching));
  std::mt19937 rng(c.num_requests);
  std::map<int64_t, std::vector<int32_t>> want;
  std::vector<int32_t> shared(40);
  for (int32_t& t : shared) t = static_cast<int32_t>(rng() % 1000);
  for (int r = 0; r < c.num_requests; ++r) {
    // Half the prompts share a 40-token prefix, so the cache (when on) is hit mid-run.
    std::vector<int32_t> prompt = r % 2 ? shared : std::vector<int32_t>();
    const int extra = 1 + static_cast<int>(rng() % 60);
    for (int i = 0; i < extra; ++i) prompt.push_back(static_cast<int32_t>(rng() % 1000));
    want[r] = expected(prompt, c.max_tokens);
    f.add(r, prompt, fake_params(c.max_tokens));
  }
  drive(f.sched, f.runner, f.out);
  for (auto& [r, tokens] : want) EXPECT_EQ((f.out.tokens[{r, 0}]), tokens) << "request " << r;
  EXPECT_EQ(f.pool.num_free(), c.num_pages) << "pages leaked";
}

INSTANTIATE_TEST_SUITE_P(Shapes, SchedulerTest,
                         ::testing::Values(Case{16, 256, 8, 256, 20, 9, true},    // plenty of pages
                                           Case{16, 256, 8, 256, 20, 9, false},
                                           Case{16, 16, 8, 64, 12, 17, true},     // chunked prefill, preemption
                                           Case{16, 16, 8, 64, 12, 17, false},
                                           Case{1, 140, 4, 33, 9, 30, true},      // token-granular pages
                                           Case{8, 24, 64, 2048, 30, 25, true},   // many sequences, few pages
                                           Case{8, 24, 64, 2048, 30, 25, false}));

TEST(Scheduler, ChunkedPrefillRespectsBudget) {
  Fixture f(64, 16, config(4, 32));
  Sequence* s = f.add(1, std::vector<int32_t>(100, 5), fake_params(4));
  ScheduledStep step = f.sched.schedule();
  ASSERT_EQ(step.seqs.size(), 1u);
  EXPECT_EQ(step.seqs[0].num_new, 32);
  EXPECT_FALSE(step.seqs[0].sample);
  EXPECT_EQ(s->pages.pages().size(), 2u);
}

TEST(Scheduler, EosAndStopTokensFinishUnlessIgnored) {
  SchedulerConfig c = config(4, 64);
  // The fake model's first token for prompt {10, 20} is 30.
  c.eos_token_ids = {30};
  Fixture f(32, 4, c);
  SamplingParams p;
  p.max_tokens = 5;
  Sequence* eos = f.add(1, {10, 20}, p);
  p.stop_token_ids = {60};  // 30 is ignored as eos; then 60 follows (sum 60 -> 60)
  p.ignore_eos = true;
  Sequence* stop = f.add(2, {10, 20}, p);
  drive(f.sched, f.runner, f.out);
  EXPECT_EQ(eos->finish, FinishReason::kStop);
  EXPECT_EQ(eos->stop_token, 30);
  EXPECT_EQ((f.out.tokens[{1, 0}]), std::vector<int32_t>({30}));
  EXPECT_EQ(stop->finish, FinishReason::kStop);
  EXPECT_EQ((f.out.tokens[{2, 0}]), std::vector<int32_t>({30, 60}));
  EXPECT_EQ(f.pool.num_free(), 32);
}

TEST(Scheduler, EndFreesPagesAndForgets) {
  Fixture f(32, 4, config(4, 8));
  Sequence* a = f.add(1, std::vector<int32_t>(20, 3), fake_params(50));
  Sequence* b = f.add(2, std::vector<int32_t>(6, 4), fake_params(50));
  step_once(f.sched, f.runner, f.out);
  f.sched.end(a, FinishReason::kAbort);
  EXPECT_EQ(a->finish, FinishReason::kAbort);
  for (int i = 0; i < 5; ++i) step_once(f.sched, f.runner, f.out);
  f.sched.end(b, FinishReason::kAbort);
  EXPECT_FALSE(f.sched.has_work());
  EXPECT_EQ(f.pool.num_free(), 32);
}

// ---- prefix caching

std::vector<int32_t> random_tokens(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % 1000);
  return t;
}

TEST(PrefixCache, SharedPrefixIsComputedOnceAndChangesNothing) {
  const std::vector<int32_t> first = random_tokens(200, 1);
  std::vector<int32_t> second(first.begin(), first.begin() + 180);  // 90% shared
  const std::vector<int32_t> tail = random_tokens(20, 2);
  second.insert(second.end(), tail.begin(), tail.end());
  std::map<bool, std::vector<int32_t>> outputs;
  for (bool caching : {false, true}) {
    Fixture f(64, 16, config(4, 512, caching));
    f.add(1, first, fake_params(6));
    drive(f.sched, f.runner, f.out);
    const int64_t before = f.runner.tokens_run;
    f.add(2, second, fake_params(6));
    drive(f.sched, f.runner, f.out);
    const int64_t ran = f.runner.tokens_run - before;
    // 180 shared tokens = 11 full pages of 16 (176 tokens): the rest is computed.
    EXPECT_EQ(ran, caching ? 200 - 176 + 5 : 200 + 5) << "caching " << caching;
    EXPECT_EQ(f.sched.prefix_cache_stats().hits, caching ? 176 : 0);
    EXPECT_EQ(f.sched.prefix_cache_stats().queries, 400);
    outputs[caching] = f.out.tokens[{2, 0}];
    EXPECT_EQ(f.pool.num_free(), 64);
  }
  EXPECT_EQ(outputs[true], outputs[false]);
  EXPECT_EQ(outputs[true], expected(second, 6));
}

TEST(PrefixCache, AlwaysLeavesOneTokenToCompute) {
  const std::vector<int32_t> prompt = random_tokens(64, 3);  // exactly 4 pages
  Fixture f(32, 16, config(4, 512));
  f.add(1, prompt, fake_params(1));
  drive(f.sched, f.runner, f.out);
  f.add(2, prompt, fake_params(1));
  ScheduledStep step = f.sched.schedule();
  ASSERT_EQ(step.seqs.size(), 1u);
  EXPECT_EQ(step.seqs[0].start, 48);  // 3 pages adopted, the last page recomputed
  EXPECT_EQ(step.seqs[0].num_new, 16);
}

TEST(PrefixCache, RunningSequencesShareWithoutWritingSharedPages) {
  // B arrives while A decodes; both hold A's prompt pages. FakeRunner fails on any write to a
  // shared or cached page.
  const std::vector<int32_t> prompt = random_tokens(70, 4);
  Fixture f(64, 8, config(4, 512));
  Sequence* a = f.add(1, prompt, fake_params(30));
  for (int i = 0; i < 3; ++i) step_once(f.sched, f.runner, f.out);
  Sequence* b = f.add(2, prompt, fake_params(30));
  step_once(f.sched, f.runner, f.out);
  int shared = 0;
  for (int32_t p : b->pages.pages())
    if (std::find(a->pages.pages().begin(), a->pages.pages().end(), p) != a->pages.pages().end()) {
      ++shared;
      EXPECT_EQ(f.pool.ref_count(p), 2);
    }
  EXPECT_EQ(shared, 8);  // 64 of 70 prompt tokens in full pages
  drive(f.sched, f.runner, f.out);
  EXPECT_EQ((f.out.tokens[{1, 0}]), expected(prompt, 30));
  EXPECT_EQ((f.out.tokens[{2, 0}]), expected(prompt, 30));
}

TEST(PrefixCache, SaltSeparatesTenants) {
  const std::vector<int32_t> prompt = random_tokens(100, 5);
  Fixture f(64, 16, config(4, 512));
  f.add(1, prompt, fake_params(2));
  drive(f.sched, f.runner, f.out);
  SamplingParams salted = fake_params(2);
  salted.cache_salt = "tenant-a";
  f.add(2, prompt, salted);
  drive(f.sched, f.runner, f.out);
  EXPECT_EQ(f.sched.prefix_cache_stats().hits, 0) << "a salted request hit an unsalted prefix";
  f.add(3, prompt, salted);
  drive(f.sched, f.runner, f.out);
  EXPECT_EQ(f.sched.prefix_cache_stats().hits, 96) << "the same salt shares";
  EXPECT_EQ((f.out.tokens[{3, 0}]), expected(prompt, 2));
}

TEST(PagePool, CachedPagesAreEvictedLeastRecentlyReleasedFirst) {
  const int ps = 4;
  PagePool pool(6);
  std::vector<PageTable> tables;
  std::vector<std::vector<int32_t>> prompts;
  for (int s = 0; s < 3; ++s) {  // three sequences of two committed pages each
    prompts.push_back(random_tokens(2 * ps, 10 + s));
    tables.emplace_back(ps);
    ASSERT_TRUE(tables.back().grow(pool, 2 * ps));
    pool.commit(tables.back(), prompts.back().data(), "");
    pool.commit(tables.back(), prompts.back().data() + ps, "");
  }
  EXPECT_EQ(pool.num_free(), 0);
  const std::vector<int32_t> a = tables[0].pages(), b = tables[1].pages();
  for (int s : {1, 0, 2}) tables[s].release_all(pool);  // release order: B, A, C
  EXPECT_EQ(pool.num_free(), 6);
  EXPECT_EQ(pool.num_cached(), 6);
  // B's pages go first (its deepest page first), then A's; C stays cached.
  EXPECT_EQ(pool.allocate(), b[1]);
  EXPECT_EQ(pool.allocate(), b[0]);
  EXPECT_EQ(pool.allocate(), a[1]);
  PageTable again(ps);
  EXPECT_EQ(pool.match(again, prompts[2].data(), 2 * ps, ""), 2 * ps);
  PageTable gone(ps);
  EXPECT_EQ(pool.match(gone, prompts[1].data(), 2 * ps, ""), 0) << "an evicted prefix matched";
  PageTable half(ps);
  EXPECT_EQ(pool.match(half, prompts[0].data(), 2 * ps, ""), ps) << "A's root page is still cached";
}

TEST(PagePool, ChildOfAReusedParentNeverMatches) {
  // A chain's second page must not match once its parent page held other tokens in between.
  const int ps = 2;
  PagePool pool(3);
  const std::vector<int32_t> x = {1, 2, 3, 4}, y = {9, 9, 3, 4};
  PageTable t(ps);
  ASSERT_TRUE(t.grow(pool, 4));
  pool.commit(t, x.data(), "");
  pool.commit(t, x.data() + ps, "");
  const int32_t parent = t.pages()[0], child = t.pages()[1];
  pool.retain(child);  // keep the child cached and held while the parent is evicted and reused
  t.release_all(pool);
  const int reused = pool.allocate();  // the free page first, then the parent (LRU)
  const int evicted = reused == parent ? reused : pool.allocate();
  EXPECT_EQ(evicted, parent);
  PageTable u(ps);
  EXPECT_EQ(pool.match(u, y.data(), 4, ""), 0);
  EXPECT_EQ(pool.match(u, x.data(), 4, ""), 0) << "the parent's contents are gone";
  pool.release(child);
}

TEST(PagePool, RefCountsAndAllOrNothingGrowth) {
  PagePool pool(3);
  PageTable t(4);
  EXPECT_TRUE(t.grow(pool, 9));  // 3 pages
  EXPECT_EQ(pool.num_free(), 0);
  PageTable u(4);
  EXPECT_FALSE(u.grow(pool, 1));
  pool.retain(t.pages()[0]);
  const int kept = t.pages()[0];
  t.release_all(pool);
  EXPECT_EQ(pool.num_free(), 2);  // the retained page stays out of the free list
  EXPECT_EQ(pool.ref_count(kept), 1);
  pool.release(kept);
  EXPECT_EQ(pool.num_free(), 3);
}

// ---- n > 1 and prompt log-probs

TEST(Fork, NSequencesShareOnePrefill) {
  const std::vector<int32_t> prompt = random_tokens(100, 6);
  for (bool caching : {true, false}) {
    Fixture f(64, 16, config(8, 512, caching));
    SamplingParams p = fake_params(5);
    p.n = 3;
    f.add(1, prompt, p);
    drive(f.sched, f.runner, f.out);
    // The leader computes 100 prompt tokens; each fork the last partial page (4 tokens) only.
    EXPECT_EQ(f.runner.tokens_run, 100 + 2 * 4 + 3 * 4) << "caching " << caching;
    for (int i = 0; i < 3; ++i) EXPECT_EQ((f.out.tokens[{1, i}]), expected(prompt, 5)) << i;
    EXPECT_EQ(f.pool.num_free(), 64);
  }
}

TEST(Fork, AbortingTheLeaderEndsUnstartedForks) {
  Fixture f(64, 16, config(8, 16));
  SamplingParams p = fake_params(5);
  p.n = 2;
  Sequence* leader = f.add(1, random_tokens(60, 7), p);
  step_once(f.sched, f.runner, f.out);
  Sequence* fork = f.owned.back().get();
  f.sched.end(leader, FinishReason::kAbort);
  EXPECT_EQ(fork->finish, FinishReason::kAbort);
  EXPECT_FALSE(f.sched.has_work());
  EXPECT_EQ(f.pool.num_free(), 64);
}

TEST(PromptLogprobs, EveryScoredTokenOnceAcrossChunksAndPreemption) {
  const std::vector<int32_t> prompt = random_tokens(90, 8);
  SchedulerConfig c = config(4, 20);
  c.max_prompt_logprob_rows = 7;
  Fixture f(12, 8, c);  // 96 tokens of pages: the second request preempts
  SamplingParams p = fake_params(3);
  p.prompt_logprobs_from = 40;
  f.add(1, prompt, p);
  f.add(2, random_tokens(30, 9), fake_params(20));
  drive(f.sched, f.runner, f.out);
  std::vector<float> want;
  for (int i = 40; i < 90; ++i) want.push_back(-static_cast<float>(prompt[i]));
  EXPECT_EQ(f.out.prompt_logprobs[1], want);
  EXPECT_EQ((f.out.tokens[{1, 0}]), expected(prompt, 3));
}

TEST(Runner, GraphBatchSizesCoverTheBatchUpToTheCap) {
  EXPECT_EQ(graph_batch_sizes(1), std::vector<int>({1}));
  EXPECT_EQ(graph_batch_sizes(5), std::vector<int>({1, 2, 4, 8}));
  EXPECT_EQ(graph_batch_sizes(16), std::vector<int>({1, 2, 4, 8, 16}));
  const std::vector<int> big = graph_batch_sizes(100000);
  EXPECT_EQ(big.back(), kMaxGraphBatch) << "--max-num-seqs 100000 must not capture thousands of graphs";
  EXPECT_EQ(big.size(), 3u + kMaxGraphBatch / 8);
}

TEST(StepBatch, ValidateCatchesInconsistentMetadata) {
  StepBatch b;
  b.token_ids = {1, 2}, b.positions = {3, 4}, b.slot_mapping = {3, 4};
  b.query_start = {0, 2}, b.context_lens = {5}, b.page_table = {0, 1}, b.max_pages_per_seq = 2;
  b.logit_rows = {1};
  EXPECT_TRUE(b.validate(4, 2).ok()) << b.validate(4, 2).to_string();
  EXPECT_EQ(b.max_query_len(), 2);
  EXPECT_EQ(b.max_context_len(), 5);
  b.slot_mapping[1] = 7;
  EXPECT_FALSE(b.validate(4, 2).ok());
  b.slot_mapping[1] = 4, b.page_table[1] = 9;
  EXPECT_FALSE(b.validate(4, 2).ok());
}

}  // namespace
}  // namespace tk
