// The structured-output vocabulary of a model: each token id's bytes, read from its tokenizer
// once per model. Byte-level BPE (GPT-2, Llama 3, Qwen) writes bytes as printable characters
// ("Ġthe"); SentencePiece (Llama 2, Mistral) writes "▁" for a space and "<0x0A>" for a raw byte.
// Special and control tokens are never allowed by a grammar; the model's eos ids end one.
#include "engine_core/engine_core.h"

namespace tk {
namespace {

bool is_byte_fallback_piece(const std::string& p) {
  return p.size() == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>';
}

// SentencePiece when a noticeable share of the pieces carry its space mark or byte pieces.
bool looks_like_sentencepiece(const Tokenizer& tok, int32_t n) {
  int32_t marked = 0;
  for (int32_t id = 0; id < n; ++id) {
    std::optional<std::string> piece = tok.id_to_token(id);
    if (piece && (piece->find("\xE2\x96\x81") != std::string::npos || is_byte_fallback_piece(*piece))) ++marked;
  }
  return marked * 100 >= n;  // >= 1%: byte-level vocabularies have none
}

}  // namespace

Result<std::shared_ptr<const grammar::Vocabulary>> grammar_vocabulary(const Tokenizer& tok,
                                                                      const std::vector<int32_t>& eos_token_ids,
                                                                      int64_t model_vocab_size) {
  // Ids past the model's logits can never be sampled; ids past the tokenizer's have no bytes.
  const auto n = static_cast<int32_t>(std::min<int64_t>(tok.vocab_size(), model_vocab_size));
  const bool sentencepiece = looks_like_sentencepiece(tok, n);
  std::vector<grammar::Vocabulary::Token> tokens(n);
  for (int32_t id = 0; id < n; ++id) {
    std::optional<std::string> piece = tok.id_to_token(id);
    grammar::Vocabulary::Token& t = tokens[id];
    if (!piece || tok.is_special(id)) {
      t.special = true;
      continue;
    }
    if (sentencepiece) {
      // Control pieces (<s>, <unk>) are not bytes of text.
      const bool control = piece->size() > 2 && piece->front() == '<' && piece->back() == '>' && !is_byte_fallback_piece(*piece);
      t.special = control;
      t.bytes = grammar::sentencepiece_piece_bytes(*piece);
    } else if (std::optional<std::string> bytes = grammar::byte_level_piece_bytes(*piece)) {
      t.bytes = std::move(*bytes);
    } else {
      t.bytes = *piece;  // a non-special added token, written as plain text
    }
    if (t.bytes.empty()) t.special = true;
  }
  std::vector<int32_t> eos;
  for (int32_t id : eos_token_ids)
    if (id >= 0 && id < model_vocab_size) eos.push_back(id);
  if (eos.empty()) return invalid_argument("structured output needs the model's eos token id, and it has none");
  return grammar::Vocabulary::create(std::move(tokens), std::move(eos), static_cast<int32_t>(model_vocab_size));
}

}  // namespace tk
