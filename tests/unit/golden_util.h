// Shared helpers for tests that replay the transformers goldens of tests/data/golden.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "runner/runner.h"

namespace tk::test {

inline const std::vector<std::string>& golden_cases() {
  static const std::vector<std::string> cases = {"llama_gqa", "llama3_scaled", "mistral_odd", "qwen2_bias",
                                                 "qwen3_qknorm"};
  return cases;
}

inline std::string golden_dir(const std::string& name) { return std::string(TOKAMAK_TEST_DATA) + "/golden/" + name; }

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

struct GoldenPrompt {
  std::vector<int32_t> prompt_ids, greedy_ids;
  std::vector<float> margins;
  std::vector<float> prefill;  // [prompt_len, vocab]
  std::vector<float> steps;    // [9, vocab]
};

inline std::vector<float> read_f32(const Checkpoint& ckpt, const std::string& name) {
  auto info = ckpt.get(name);
  EXPECT_TRUE(info.ok()) << info.status().to_string();
  if (!info.ok()) return {};
  std::vector<float> v(info->shape.numel());
  convert_to_f32(info->data, info->dtype, v.data(), v.size());
  return v;
}

inline std::vector<GoldenPrompt> load_golden(const std::string& name) {
  nlohmann::json g = read_json(golden_dir(name) + "/golden.json");
  auto file = SafetensorsFile::open(golden_dir(name) + "/logits.safetensors");
  EXPECT_TRUE(file.ok());
  std::vector<GoldenPrompt> out;
  for (size_t i = 0; i < g["prompts"].size(); ++i) {
    const auto& p = g["prompts"][i];
    GoldenPrompt gp;
    gp.prompt_ids = p["prompt_ids"].get<std::vector<int32_t>>();
    gp.greedy_ids = p["greedy_ids"].get<std::vector<int32_t>>();
    gp.margins = p["margins"].get<std::vector<float>>();
    for (auto [suffix, dst] : {std::pair{".prefill", &gp.prefill}, std::pair{".steps", &gp.steps}}) {
      const TensorInfo& t = (*file)->tensors().at("prompt" + std::to_string(i) + suffix);
      dst->resize(t.shape.numel());
      std::memcpy(dst->data(), t.data, t.nbytes);
    }
    out.push_back(std::move(gp));
  }
  return out;
}

// ||a - b|| / ||b||
inline double rel_l2(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Greedy (or any) generation of several prompts through the engine loop, all submitted at once.
inline std::vector<std::vector<int32_t>> generate_all(Engine& engine, const std::vector<std::vector<int32_t>>& prompts,
                                                      const SamplingParams& params) {
  std::vector<EngineLoop::NewRequest> requests;
  for (const auto& p : prompts) requests.push_back({p, params});
  auto streams = engine.loop().add_all(std::move(requests));
  EXPECT_TRUE(streams.ok()) << streams.status().to_string();
  std::vector<std::vector<int32_t>> out(prompts.size());
  if (!streams.ok()) return out;
  for (size_t i = 0; i < prompts.size(); ++i)
    for (std::vector<RequestOutput> outs; !(outs = (*streams)[i]->next()).empty();)
      for (const RequestOutput& o : outs) {
        EXPECT_NE(o.finish, FinishReason::kError) << o.error;
        out[i].insert(out[i].end(), o.token_ids.begin(), o.token_ids.end());
      }
  return out;
}

// log p(window[i + 1] | window[0, i]) for i in [first, n - 1): a prompt-log-prob request.
inline std::vector<float> score_window(Engine& engine, const std::vector<int32_t>& window, int first) {
  SamplingParams p;
  p.temperature = 0.f, p.max_tokens = 1, p.ignore_eos = true, p.prompt_logprobs_from = first + 1;
  auto stream = engine.loop().add(window, p);
  EXPECT_TRUE(stream.ok()) << stream.status().to_string();
  std::vector<float> lp;
  if (!stream.ok()) return lp;
  for (std::vector<RequestOutput> outs; !(outs = (*stream)->next()).empty();)
    for (const RequestOutput& o : outs) lp.insert(lp.end(), o.prompt_logprobs.begin(), o.prompt_logprobs.end());
  return lp;
}

// A new sequence of `tokens` in `seqs`, its pages all taken from `pool`.
inline Sequence* add_forced_sequence(std::vector<std::unique_ptr<Sequence>>& seqs, PagePool& pool, int page_size,
                                     const std::vector<int32_t>& tokens) {
  seqs.push_back(std::move(make_sequences(static_cast<int64_t>(seqs.size()), tokens, {}, 0, page_size)[0]));
  EXPECT_TRUE(seqs.back()->pages.grow(pool, static_cast<int>(tokens.size())));
  return seqs.back().get();
}

// Runs `step` through `runner` and returns `model`'s logits of the token rows `rows`: [rows, vocab]
// on the host.
inline std::vector<float> run_forced_step(ModelRunner& runner, Model& model, const ScheduledStep& step,
                                          std::vector<int32_t> rows) {
  StepBatch batch = ModelRunner::build_batch(step);
  batch.logit_rows = std::move(rows);
  EXPECT_TRUE(runner.forward(batch).ok());
  Tensor logits = model.logits(batch.num_logits());
  std::vector<float> host(logits.numel());
  EXPECT_TRUE(model.backend().download(logits, host.data()).ok());
  return host;
}

// A model, its KV cache and a runner, driven step by step with chosen chunks and logit rows
// (teacher forcing against the goldens).
struct TeacherForcing {
  // kv_fp8: an FP8 KV cache (every scale 1.0).
  TeacherForcing(Backend& backend, const std::string& dir, int page_size, int num_pages, bool quantize_fp8 = false,
                 bool kv_fp8 = false)
      : pool(num_pages) {
    auto m = Model::load(dir, backend, nullptr, quantize_fp8);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    model = std::move(*m);
    const ModelConfig& c = model->config();
    EXPECT_TRUE(backend.configure(model->attention_shape(), page_size).ok());
    auto kv = backend.alloc_kv_cache(c.num_layers, num_pages + 1, page_size, c.num_kv_heads, c.head_dim, kv_fp8);
    EXPECT_TRUE(kv.ok());
    cache = std::move(*kv);
    RunnerConfig rc;
    rc.max_num_seqs = 16, rc.max_num_batched_tokens = 512, rc.max_model_len = 512, rc.page_size = page_size;
    rc.max_prompt_logprob_rows = 512;
    auto r = ModelRunner::create(*model, cache, rc);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    runner = std::move(*r);
  }
  // A sequence holding `tokens`, its pages all taken.
  Sequence* add(const std::vector<int32_t>& tokens) {
    return add_forced_sequence(seqs, pool, cache.page_size(), tokens);
  }
  // Runs the chunks and returns the logits of the token rows `rows`: [rows, vocab] on the host.
  std::vector<float> run(const ScheduledStep& step, std::vector<int32_t> rows) {
    return run_forced_step(*runner, *model, step, std::move(rows));
  }
  std::vector<float> prefill_then_decode(const std::vector<int32_t>& tokens);
  PagePool pool;
  std::unique_ptr<Model> model;
  KvCacheTensors cache;
  std::unique_ptr<ModelRunner> runner;
  std::vector<std::unique_ptr<Sequence>> seqs;
};

// A new sequence of `tokens` in `f` (a TeacherForcing, or any type with its add and run): its first
// half in one prefill, then one decode step per token (graphs where the backend has them); every
// row's logits, [tokens, vocab] on the host.
template <typename Forcing>
std::vector<float> prefill_then_decode(Forcing& f, const std::vector<int32_t>& tokens) {
  Sequence* seq = f.add(tokens);
  const int n = static_cast<int>(tokens.size()), half = n / 2;
  ScheduledStep prefill;
  prefill.seqs.push_back({seq, 0, half, false});
  std::vector<int32_t> rows;
  for (int t = 0; t < half; ++t) rows.push_back(t);
  std::vector<float> all = f.run(prefill, rows);
  for (int t = half; t < n; ++t) {
    ScheduledStep decode;
    decode.seqs.push_back({seq, t, 1, true});
    const std::vector<float> row = f.run(decode, {0});
    all.insert(all.end(), row.begin(), row.end());
  }
  return all;
}
inline std::vector<float> TeacherForcing::prefill_then_decode(const std::vector<int32_t>& tokens) {
  return test::prefill_then_decode(*this, tokens);
}

// llama.cpp-method perplexity of `text_file` through a teacher-forced runner: windows of `ctx`
// tokens, BOS first, the second half scored. Each window is one prefill of the whole window, so
// ctx may be the model's whole context (an engine request also leaves room for a generated token).
struct Perplexity {
  double ppl = 0;
  int64_t count = 0;
};
inline Perplexity teacher_forced_perplexity(Backend& backend, const std::string& dir, const std::string& text_file, int ctx,
                                            bool quantize_fp8 = false, bool kv_fp8 = false) {
  Perplexity out;
  const int page = 16, first = ctx / 2;
  TeacherForcing tf(backend, dir, page, (ctx + page - 1) / page, quantize_fp8, kv_fp8);
  auto tok = Tokenizer::load(dir);
  auto text = read_text_file(text_file);
  EXPECT_TRUE(tok.ok() && text.ok() && tf.model);
  if (!tok.ok() || !text.ok() || !tf.model) return out;
  auto tokens = (*tok)->encode(*text, true);
  auto bos = (*tok)->encode("", true);
  EXPECT_TRUE(tokens.ok() && bos.ok());
  if (!tokens.ok() || !bos.ok()) return out;
  const int64_t vocab = tf.model->config().vocab_size;
  double nll = 0;
  for (size_t c = 0; c + ctx <= tokens->size(); c += ctx) {
    std::vector<int32_t> window(tokens->begin() + c, tokens->begin() + c + ctx);
    if (!bos->empty()) window[0] = (*bos)[0];
    Sequence* seq = tf.add(window);
    ScheduledStep step;
    step.seqs.push_back({seq, 0, ctx, false});
    std::vector<int32_t> rows;  // positions first..ctx-2 predict tokens first+1..ctx-1
    for (int p = first; p + 1 < ctx; ++p) rows.push_back(p);
    const std::vector<float> logits = tf.run(step, rows);
    EXPECT_EQ(logits.size(), rows.size() * vocab);
    if (logits.size() != rows.size() * vocab) return out;
    for (size_t r = 0; r < rows.size(); ++r) {
      const float* row = logits.data() + r * vocab;
      const double top = *std::max_element(row, row + vocab);
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - top);
      nll -= row[window[rows[r] + 1]] - top - std::log(sum);
      ++out.count;
    }
    seq->pages.release_all(tf.pool);
  }
  out.ppl = std::exp(nll / static_cast<double>(std::max<int64_t>(out.count, 1)));
  return out;
}

}  // namespace tk::test
