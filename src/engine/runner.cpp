// The model runner: the only place host state meets the device. One StepBatch per step, uploaded
// once by begin_step(); only sampled ids (and asked-for logprobs) come back.
#include <algorithm>

#include "engine/engine.h"

namespace tk {

StepBatch ModelRunner::build_batch(const ScheduledStep& step) {
  StepBatch b;
  b.num_seqs = static_cast<int>(step.seqs.size());
  b.query_start.push_back(0);
  for (const ScheduledSeq& s : step.seqs) {
    b.max_pages_per_seq = std::max(b.max_pages_per_seq, static_cast<int>(s.seq->pages.pages().size()));
  }
  b.page_table.assign(static_cast<size_t>(b.num_seqs) * b.max_pages_per_seq, -1);
  for (int i = 0; i < b.num_seqs; ++i) {
    const ScheduledSeq& s = step.seqs[i];
    for (int t = s.start; t < s.start + s.num_new; ++t) {
      b.token_ids.push_back(s.seq->token_at(t));
      b.positions.push_back(t);
      b.slot_mapping.push_back(s.seq->pages.slot(t));
    }
    b.query_start.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.context_lens.push_back(s.start + s.num_new);
    const std::vector<int32_t>& pages = s.seq->pages.pages();
    std::copy(pages.begin(), pages.end(), b.page_table.begin() + static_cast<size_t>(i) * b.max_pages_per_seq);
    if (s.sample) b.logit_rows.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
    b.max_query_len = std::max(b.max_query_len, s.num_new);
    b.max_context_len = std::max(b.max_context_len, s.start + s.num_new);
  }
  b.num_tokens = static_cast<int>(b.token_ids.size());
  return b;
}

static SamplingSpec make_spec(const Sequence& seq) {
  const SamplingParams& p = seq.params;
  SamplingSpec s;
  s.temperature = p.temperature, s.top_k = p.top_k, s.top_p = p.top_p, s.min_p = p.min_p;
  s.repetition_penalty = p.repetition_penalty;
  s.presence_penalty = p.presence_penalty, s.frequency_penalty = p.frequency_penalty;
  s.seed = seq.seed;
  s.step = seq.output.size();
  s.prompt_tokens = seq.prompt.data(), s.num_prompt_tokens = static_cast<int>(seq.prompt.size());
  s.output_tokens = seq.output.data(), s.num_output_tokens = static_cast<int>(seq.output.size());
  s.want_logprob = p.logprobs;
  return s;
}

Result<std::vector<SampledToken>> ModelRunner::run(const ScheduledStep& step) {
  batch_ = build_batch(step);
  TK_RETURN_IF_ERROR(batch_.validate(cache_.page_size, cache_.num_pages));
  Backend& backend = model_.backend();
  TK_RETURN_IF_ERROR(backend.begin_step(batch_));
  // Pure decode steps repeat their shapes: the backend may replay them from a captured graph.
  const bool decode_only = batch_.num_tokens == batch_.num_seqs && batch_.num_logits() == batch_.num_seqs;
  // A replayed graph runs no host code, so the logits are read from the model's buffer.
  TK_RETURN_IF_ERROR(backend.run_step([&] { return model_.forward(batch_, cache_).status(); }, decode_only));
  const Tensor logits = model_.logits(batch_.num_logits());
  specs_.clear();
  for (const ScheduledSeq& s : step.seqs)
    if (s.sample) specs_.push_back(make_spec(*s.seq));
  std::vector<SampledToken> out;
  if (specs_.empty()) return out;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  TK_RETURN_IF_ERROR(backend.sample(logits, specs_, tokens, logprobs));
  for (size_t i = 0; i < tokens.size(); ++i) out.push_back({tokens[i], logprobs[i]});
  return out;
}

}  // namespace tk
