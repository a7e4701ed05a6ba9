// Tensor parallelism on the CPU backend (issue 14): the golden checkpoints split over 2 and 4 ranks
// (threads of this process, an in-process all-reduce) against the same checkpoint unsharded —
// every logit row of a chunked prefill and of teacher-forced decode steps within 1e-5 relative L2
// and with the same argmax, and the engine's greedy tokens identical; KV heads replicated where
// the ranks outnumber them; the sizes that cannot split refused by name; the all-reduce itself.
#include <thread>

#include "backend_cpu/cpu_backend.h"
#include "golden_util.h"

namespace tk::test {
namespace {

constexpr double kTolerance = 1e-5;

// A model split over `size` ranks, driven like TeacherForcing: rank 0 is the runner's model,
// ranks 1.. run on the runner's rank threads.
struct ShardedTeacherForcing {
  ShardedTeacherForcing(const std::string& dir, int size, int page_size, int num_pages) : pool(num_pages) {
    comms = make_in_process_communicators(size);
    caches.resize(size);
    for (int r = 0; r < size; ++r) {
      backends.push_back(make_cpu_backend(1));
      auto m = Model::load(dir, *backends[r], nullptr, false, {r, size});
      EXPECT_TRUE(m.ok()) << m.status().to_string();
      if (!m.ok()) return;
      models.push_back(std::move(*m));
      models[r]->set_communicator(comms[r].get());
      const ModelConfig& c = models[r]->config();
      EXPECT_TRUE(backends[r]->configure(models[r]->attention_shape(), page_size).ok());
      auto kv = backends[r]->alloc_kv_cache(c.num_layers, num_pages + 1, page_size, models[r]->shard().num_kv_heads,
                                            c.head_dim);
      EXPECT_TRUE(kv.ok());
      caches[r] = std::move(*kv);
    }
    RunnerConfig rc;
    rc.max_num_seqs = 16, rc.max_num_batched_tokens = 512, rc.max_model_len = 512, rc.page_size = page_size;
    std::vector<RankShard> others;
    for (int r = 1; r < size; ++r) others.push_back({models[r].get(), &caches[r]});
    auto runner_or = ModelRunner::create(*models[0], caches[0], rc, std::move(others));
    EXPECT_TRUE(runner_or.ok()) << runner_or.status().to_string();
    if (runner_or.ok()) runner = std::move(*runner_or);
  }
  Sequence* add(const std::vector<int32_t>& tokens) {
    seqs.push_back(std::move(make_sequences(static_cast<int64_t>(seqs.size()), tokens, {}, 0, caches[0].page_size())[0]));
    EXPECT_TRUE(seqs.back()->pages.grow(pool, static_cast<int>(tokens.size())));
    return seqs.back().get();
  }
  std::vector<float> run(const ScheduledStep& step, std::vector<int32_t> rows) {
    StepBatch batch = ModelRunner::build_batch(step);
    batch.logit_rows = std::move(rows);
    EXPECT_TRUE(runner->forward(batch).ok());
    Tensor logits = models[0]->logits(batch.num_logits());
    std::vector<float> host(logits.numel());
    EXPECT_TRUE(backends[0]->download(logits, host.data()).ok());
    return host;
  }
  // Declared first, destroyed last: the models refer to them.
  std::vector<std::unique_ptr<Communicator>> comms;
  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<std::unique_ptr<Model>> models;
  std::vector<KvCacheTensors> caches;
  PagePool pool;
  std::unique_ptr<ModelRunner> runner;  // destroyed first: its rank threads stop
  std::vector<std::unique_ptr<Sequence>> seqs;
};

int argmax(const float* row, int64_t n) { return static_cast<int>(std::max_element(row, row + n) - row); }

struct Case {
  std::string model;
  int size;
};
std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.model + "_tp" + std::to_string(info.param.size);
}

class TensorParallelTest : public ::testing::TestWithParam<Case> {};

// Every golden prompt batched: a prefill in two chunks (the second on the cached first), then 8
// decode steps fed the golden greedy tokens; the same steps through both models.
TEST_P(TensorParallelTest, LogitsMatchTheUnshardedModel) {
  const std::string dir = golden_dir(GetParam().model);
  auto backend = make_cpu_backend(1);
  TeacherForcing whole(*backend, dir, /*page_size=*/8, 64);
  ShardedTeacherForcing sharded(dir, GetParam().size, 8, 64);
  ASSERT_TRUE(whole.model && sharded.runner);
  const int64_t vocab = whole.model->config().vocab_size;
  const auto golden = load_golden(GetParam().model);
  std::vector<Sequence*> a, b;
  for (const GoldenPrompt& g : golden) {
    std::vector<int32_t> all = g.prompt_ids;
    all.insert(all.end(), g.greedy_ids.begin(), g.greedy_ids.end());
    a.push_back(whole.add(all)), b.push_back(sharded.add(all));
  }
  auto compare = [&](const std::vector<float>& want, const std::vector<float>& got, size_t rows, const std::string& what) {
    ASSERT_EQ(want.size(), rows * vocab);
    ASSERT_EQ(got.size(), rows * vocab);
    for (size_t r = 0; r < rows; ++r) {
      EXPECT_LT(rel_l2(&got[r * vocab], &want[r * vocab], vocab), kTolerance) << what << " row " << r;
      EXPECT_EQ(argmax(&got[r * vocab], vocab), argmax(&want[r * vocab], vocab)) << what << " row " << r;
    }
  };
  std::vector<int> done(golden.size(), 0);
  for (int chunk = 0; chunk < 2; ++chunk) {
    ScheduledStep sa, sb;
    std::vector<int32_t> rows;
    for (size_t i = 0; i < golden.size(); ++i) {
      const int len = static_cast<int>(golden[i].prompt_ids.size());
      const int n = chunk == 0 ? (len + 1) / 2 : len - done[i];
      if (n == 0) continue;
      for (int t = 0; t < n; ++t) rows.push_back(sa.num_tokens() + t);
      sa.seqs.push_back({a[i], done[i], n, false});
      sb.seqs.push_back({b[i], done[i], n, false});
      done[i] += n;
    }
    compare(whole.run(sa, rows), sharded.run(sb, rows), rows.size(), "prefill chunk " + std::to_string(chunk));
  }
  for (int k = 1; k <= 8; ++k) {
    ScheduledStep sa, sb;
    std::vector<int32_t> rows;
    for (size_t i = 0; i < golden.size(); ++i) {
      rows.push_back(static_cast<int32_t>(i));
      sa.seqs.push_back({a[i], done[i], 1, true});
      sb.seqs.push_back({b[i], done[i]++, 1, true});
    }
    compare(whole.run(sa, rows), sharded.run(sb, rows), rows.size(), "decode step " + std::to_string(k));
  }
}

// The whole engine (scheduler, paged cache, sampler) at -tp N: greedy tokens identical to -tp 1.
TEST_P(TensorParallelTest, EngineGreedyTokensMatchTheUnshardedEngine) {
  auto golden = load_golden(GetParam().model);
  std::vector<std::vector<int32_t>> prompts;
  for (const GoldenPrompt& g : golden) prompts.push_back(g.prompt_ids);
  SamplingParams p;
  p.temperature = 0.f, p.max_tokens = 8, p.ignore_eos = true;
  std::vector<std::vector<int32_t>> got[2];
  for (int tp : {1, GetParam().size}) {
    EngineConfig config;
    config.model = golden_dir(GetParam().model);
    config.device = DeviceChoice::kCpu;
    config.page_size = 8;
    config.max_num_batched_tokens = 16;  // chunked prefill of the longer prompts
    config.tensor_parallel_size = tp;
    auto engine = Engine::create(config);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    got[tp == 1 ? 0 : 1] = generate_all(**engine, prompts, p);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(got[1][i], got[0][i]) << "prompt " << i;
    EXPECT_EQ(got[1][i].size(), 8u);
  }
}

// llama3_scaled has one KV head (replicated on every rank at 2 and 4), llama_gqa two (split at
// 2, replicated at 4), qwen2_bias q/k/v biases, qwen3_qknorm q/k norms.
INSTANTIATE_TEST_SUITE_P(Checkpoints, TensorParallelTest,
                         ::testing::Values(Case{"llama_gqa", 2}, Case{"llama_gqa", 4}, Case{"llama3_scaled", 2},
                                           Case{"llama3_scaled", 4}, Case{"qwen2_bias", 2}, Case{"qwen2_bias", 4},
                                           Case{"qwen3_qknorm", 2}, Case{"qwen3_qknorm", 4}),
                         case_name);

ModelConfig shape(int64_t heads, int64_t kv_heads, int64_t intermediate) {
  ModelConfig c;
  c.num_heads = heads, c.num_kv_heads = kv_heads, c.intermediate_size = intermediate;
  c.hidden_size = 64, c.head_dim = 16, c.num_layers = 1, c.vocab_size = 100;
  return c;
}

TEST(TensorParallelShards, KvHeadsSplitOrReplicate) {
  // 8 q heads, 2 KV heads over 4 ranks: each rank's 2 q heads read one KV head, ranks 0-1 the
  // first, 2-3 the second (the q heads' own group).
  const ModelConfig c = shape(8, 2, 64);
  ASSERT_TRUE(check_tensor_parallel(c, 4).ok());
  for (int r = 0; r < 4; ++r) {
    const ShardSizes s = shard_sizes(c, {r, 4});
    EXPECT_EQ(s.num_heads, 2);
    EXPECT_EQ(s.q_head_begin, 2 * r);
    EXPECT_EQ(s.num_kv_heads, 1);
    EXPECT_EQ(s.kv_head_begin, r / 2);
    EXPECT_EQ(s.kv_head_begin, s.q_head_begin / (c.num_heads / c.num_kv_heads));  // the group of its q heads
    EXPECT_EQ(s.intermediate_size, 16);
    EXPECT_EQ(s.intermediate_begin, 16 * r);
  }
  // Split: 2 ranks of 4 KV heads each hold 2.
  const ShardSizes s = shard_sizes(shape(8, 4, 64), {1, 2});
  EXPECT_EQ(s.num_kv_heads, 2);
  EXPECT_EQ(s.kv_head_begin, 2);
  // One rank: the whole model.
  const ShardSizes whole = shard_sizes(c, {0, 1});
  EXPECT_EQ(whole.num_heads, 8);
  EXPECT_EQ(whole.num_kv_heads, 2);
  EXPECT_EQ(whole.intermediate_size, 64);
}

TEST(TensorParallelShards, SizesThatDoNotSplitAreRefusedByName) {
  auto message = [](const ModelConfig& c, int n) { return check_tensor_parallel(c, n).message(); };
  EXPECT_NE(message(shape(6, 2, 64), 4).find("6 attention heads"), std::string::npos) << message(shape(6, 2, 64), 4);
  EXPECT_NE(message(shape(6, 2, 64), 4).find("--tensor-parallel-size 4"), std::string::npos);
  // 3 KV heads and 2 ranks: neither divides the other (q heads 6 do split).
  EXPECT_NE(message(shape(6, 3, 64), 2).find("3 KV heads"), std::string::npos) << message(shape(6, 3, 64), 2);
  EXPECT_NE(message(shape(8, 2, 90), 4).find("intermediate_size 90"), std::string::npos) << message(shape(8, 2, 90), 4);
  EXPECT_TRUE(check_tensor_parallel(shape(6, 3, 90), 1).ok());
  EXPECT_TRUE(check_tensor_parallel(shape(8, 1, 88), 8).ok());  // one KV head replicated on 8 ranks
}

TEST(TensorParallelShards, TheEngineRefusesACheckpointThatDoesNotSplit) {
  EngineConfig config;
  config.model = golden_dir("mistral_odd");  // 3 attention heads
  config.device = DeviceChoice::kCpu;
  config.tensor_parallel_size = 2;
  auto engine = Engine::create(config);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("3 attention heads"), std::string::npos) << engine.status().message();
  EXPECT_NE(engine.status().message().find("mistral_odd"), std::string::npos) << engine.status().message();
  config.tensor_parallel_size = 0;
  EXPECT_FALSE(Engine::create(config).ok());
}

TEST(TensorParallelShards, TheCudaBackendSaysNotBuiltYet) {
  const ModelConfig c = shape(8, 2, 64);
  const Status gpu = tensor_parallel_supported(c, 2, Device::kCuda);
  EXPECT_EQ(gpu.code(), StatusCode::kUnsupported);
  EXPECT_NE(gpu.message().find("not built yet"), std::string::npos) << gpu.message();
  EXPECT_TRUE(tensor_parallel_supported(c, 1, Device::kCuda).ok());
  EXPECT_TRUE(tensor_parallel_supported(c, 2, Device::kCpu).ok());
  EXPECT_FALSE(tensor_parallel_supported(shape(6, 2, 64), 4, Device::kCpu).ok());
}

// Ranks on threads sum into every rank's tensor, in rank order whatever the timing (the exact
// float sum x0 + x1 + x2 + ...), call after call; mismatched tensors fail on every rank.
TEST(InProcessCommunicator, SumsInRankOrderOnEveryRank) {
  for (int size : {1, 2, 3, 4}) {
    auto comms = make_in_process_communicators(size);
    constexpr int64_t kRows = 7, kCols = 19;  // odd sizes: slices of unequal length
    std::vector<Tensor> x(size);
    std::vector<Status> status(size);
    auto value = [](int rank, int64_t i, int call) { return 1.f / (1.f + rank + 0.37f * i + call); };
    std::vector<std::thread> threads;
    for (int r = 0; r < size; ++r)
      threads.emplace_back([&, r] {
        x[r] = Tensor::empty_cpu(DType::kF32, {kRows, kCols});
        for (int call = 0; call < 3; ++call) {
          for (int64_t i = 0; i < x[r].numel(); ++i) x[r].data_as<float>()[i] = value(r, i, call);
          if (r % 2 == 1) std::this_thread::yield();
          Status s = comms[r]->all_reduce_sum(x[r]);
          if (!s.ok()) status[r] = s;
          for (int64_t i = 0; i < x[r].numel(); ++i) {
            float want = value(0, i, call);
            for (int k = 1; k < size; ++k) want += value(k, i, call);
            if (x[r].data_as<float>()[i] != want) status[r] = internal_error("wrong sum");
          }
        }
      });
    for (std::thread& t : threads) t.join();
    for (int r = 0; r < size; ++r) EXPECT_TRUE(status[r].ok()) << "size " << size << " rank " << r << ": " << status[r].to_string();
    for (int r = 0; r < size; ++r) EXPECT_EQ(comms[r]->rank(), r);
  }
  auto comms = make_in_process_communicators(2);
  Status s[2];
  std::thread other([&] {
    Tensor t = Tensor::empty_cpu(DType::kF32, {3});
    s[1] = comms[1]->all_reduce_sum(t);
  });
  Tensor t = Tensor::empty_cpu(DType::kF32, {4});
  s[0] = comms[0]->all_reduce_sum(t);
  other.join();
  EXPECT_FALSE(s[0].ok());
  EXPECT_FALSE(s[1].ok());
}

}  // namespace
}  // namespace tk::test
