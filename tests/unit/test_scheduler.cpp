// Scheduler and page bookkeeping with a fake runner: no model, no device. The fake "model"
// predicts token (sum of the sequence so far) mod 97, so any scheduling bug — a chunk computed
// twice, a skipped token, pages leaked or shared — changes the outputs or the page counts.
#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <random>

#include "engine/engine.h"

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
  explicit FakeRunner(int page_size, int num_pages) : page_size_(page_size), num_pages_(num_pages) {}
  Result<std::vector<SampledToken>> run(const ScheduledStep& step) override {
    StepBatch b = ModelRunner::build_batch(step);
    TK_RETURN_IF_ERROR(b.validate(page_size_, num_pages_));
    std::vector<SampledToken> out;
    for (const ScheduledSeq& s : step.seqs) {
      EXPECT_EQ(s.start, s.seq->num_computed) << "chunks must continue where the cache ends";
      if (s.sample) out.push_back({fake_next(*s.seq), 0.f});
    }
    tokens_run += step.num_tokens();
    ++steps;
    return out;
  }
  int64_t tokens_run = 0;
  int steps = 0;

 private:
  int page_size_, num_pages_;
};

// Drives the scheduler like Engine::step does, without text.
std::vector<std::vector<int32_t>> drive(Scheduler& sched, FakeRunner& runner, std::vector<std::unique_ptr<Sequence>>& seqs,
                                        int max_tokens) {
  std::map<int64_t, std::vector<int32_t>> outputs;
  while (sched.has_work()) {
    ScheduledStep step = sched.schedule();
    EXPECT_FALSE(step.empty());
    if (step.empty()) break;
    EXPECT_LE(step.num_tokens(), sched.config().max_num_batched_tokens);
    EXPECT_LE(static_cast<int>(step.seqs.size()), sched.config().max_num_seqs);
    auto sampled = runner.run(step);
    EXPECT_TRUE(sampled.ok()) << sampled.status().to_string();
    size_t k = 0;
    for (const ScheduledSeq& s : step.seqs) {
      s.seq->num_computed += s.num_new;
      if (!s.sample) continue;
      s.seq->output.push_back((*sampled)[k++].token);
      if (static_cast<int>(s.seq->output.size()) == max_tokens) sched.finish(s.seq);
    }
  }
  std::vector<std::vector<int32_t>> result;
  for (auto& s : seqs) result.push_back(s->output);
  return result;
}

// What the fake model generates for a prompt when nothing else interferes.
std::vector<int32_t> expected(std::vector<int32_t> prompt, int max_tokens) {
  Sequence s(0, std::move(prompt), {}, 16);
  for (int i = 0; i < max_tokens; ++i) s.output.push_back(fake_next(s));
  return s.output;
}

struct Case {
  int page_size, num_pages, max_seqs, budget, num_requests, max_tokens;
};

class SchedulerTest : public ::testing::TestWithParam<Case> {};

TEST_P(SchedulerTest, OutputsAreThoseOfSequentialDecoding) {
  const Case c = GetParam();
  PagePool pool(c.num_pages);
  Scheduler sched({c.max_seqs, c.budget, 4096}, pool);
  FakeRunner runner(c.page_size, c.num_pages);
  std::mt19937 rng(c.num_requests);
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<std::vector<int32_t>> want;
  for (int r = 0; r < c.num_requests; ++r) {
    std::vector<int32_t> prompt(1 + rng() % 90);
    for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % 1000);
    want.push_back(expected(prompt, c.max_tokens));
    seqs.push_back(std::make_unique<Sequence>(r, prompt, SamplingParams{}, c.page_size));
    sched.add(seqs.back().get());
  }
  EXPECT_EQ(drive(sched, runner, seqs, c.max_tokens), want);
  EXPECT_EQ(pool.num_free(), c.num_pages) << "pages leaked";
}

INSTANTIATE_TEST_SUITE_P(Shapes, SchedulerTest,
                         ::testing::Values(Case{16, 256, 8, 256, 20, 9},    // plenty of pages
                                           Case{16, 16, 8, 64, 12, 17},     // chunked prefill, preemption
                                           Case{1, 140, 4, 33, 9, 30},      // token-granular pages
                                           Case{8, 20, 64, 2048, 30, 25})); // many sequences, few pages

TEST(Scheduler, ChunkedPrefillRespectsBudget) {
  PagePool pool(64);
  Scheduler sched({4, 32, 4096}, pool);
  Sequence s(1, std::vector<int32_t>(100, 5), {}, 16);
  sched.add(&s);
  ScheduledStep step = sched.schedule();
  ASSERT_EQ(step.seqs.size(), 1u);
  EXPECT_EQ(step.seqs[0].num_new, 32);
  EXPECT_FALSE(step.seqs[0].sample);
  EXPECT_EQ(s.pages.pages().size(), 2u);
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

TEST(StopStrings, HeldBackUntilDecided) {
  std::string pending = "Hello wor";
  bool stopped = false;
  EXPECT_EQ(release_text(pending, {"world!"}, false, &stopped), "Hello ");
  EXPECT_EQ(pending, "wor");
  pending += "ld!!";
  EXPECT_EQ(release_text(pending, {"world!"}, false, &stopped), "");
  EXPECT_TRUE(stopped);
  pending = "abc";
  EXPECT_EQ(release_text(pending, {"x", "bcd"}, false, &stopped), "a");
  EXPECT_EQ(release_text(pending, {"x", "bcd"}, true, &stopped), "bc");
  EXPECT_FALSE(stopped);
}

TEST(StepBatch, ValidateCatchesInconsistentMetadata) {
  StepBatch b;
  b.num_seqs = 1, b.num_tokens = 2;
  b.token_ids = {1, 2}, b.positions = {3, 4}, b.slot_mapping = {3, 4};
  b.query_start = {0, 2}, b.context_lens = {5}, b.page_table = {0, 1}, b.max_pages_per_seq = 2;
  b.max_query_len = 2, b.max_context_len = 5;
  b.logit_rows = {1};
  EXPECT_TRUE(b.validate(4, 2).ok()) << b.validate(4, 2).to_string();
  b.slot_mapping[1] = 7;
  EXPECT_FALSE(b.validate(4, 2).ok());
  b.slot_mapping[1] = 4, b.page_table[1] = 9;
  EXPECT_FALSE(b.validate(4, 2).ok());
}

}  // namespace
}  // namespace tk
