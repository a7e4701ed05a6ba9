// Structured output in the sampling path: each sample row whose sequence has a grammar gets the
// bitmask of the tokens that may continue it. The masks are filled on the host after the forward
// was launched, so on a GPU they cost nothing while the forward takes longer than they do; then
// they go up in one copy and apply_token_bitmask sets the other tokens' logits to -inf before
// logit_bias, penalties and sampling.
#include "runner/runner.h"

namespace tk {

Status ModelRunner::fill_grammar_masks(const ScheduledStep& step, GrammarMasks& masks) {
  const int64_t vocab = model_.config().vocab_size;
  const int32_t words = static_cast<int32_t>((vocab + 31) / 32);
  int row = 0;
  for (const ScheduledSeq& s : step.seqs) {
    if (!s.sample) continue;
    masks.dead_end.push_back(false);
    grammar::Matcher* m = s.seq->matcher.get();
    if (m != nullptr) {
      // NOTE: EngineCore::validate checks the grammar's vocabulary against the model's.
      if (s.seq->params->grammar->vocabulary().mask_size() != vocab)
        return invalid_argument("the grammar was compiled for another vocabulary size");
      const size_t offset = masks.bitmask.size();
      masks.bitmask.resize(offset + words);
      const double start = now_seconds();
      const bool any = m->fill_next_token_bitmask(masks.bitmask.data() + offset);
      mask_stats_.seconds += now_seconds() - start;
      mask_stats_.masks += 1;
      if (any) {
        masks.rows.push_back(row);
      } else {
        // Left unmasked so the sampler has something to draw; the scheduler drops the token.
        masks.bitmask.resize(offset);
        masks.dead_end.back() = true;
      }
    }
    ++row;
  }
  return Status::ok_status();
}

Status ModelRunner::apply_grammar_masks(const GrammarMasks& masks, Tensor& logits) {
  if (masks.rows.empty()) return Status::ok_status();
  return model_.backend().apply_token_bitmask(logits, masks.rows, masks.bitmask);
}

}  // namespace tk
