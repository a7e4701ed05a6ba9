// The stages of the Hugging Face tokenizer pipeline as small interfaces, so that tokenizer.cpp can
// wire whatever a tokenizer.json names (normalizer, pre-tokenizer, model, decoder, post-processor)
// and each stage lives in its own file. Internal to src/tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/core.h"

namespace tk::tokenizer_detail {

using Json = nlohmann::json;

// One piece of the input on its way to the model (HF's Split of a PreTokenizedString, without
// offsets). Its text lives in the owning SplitList's buffer.
struct SplitRef {
  uint32_t begin = 0;
  uint32_t size = 0;
  // >= 0 when an added token already decided the id; such splits skip the later stages.
  int32_t token_id = -1;
  // Starts at byte 0 of the original input: Metaspace's prepend_scheme "first" needs it.
  bool at_origin = false;
};

// All splits of one input, their texts packed in one buffer so that cutting text into thousands
// of words costs no allocation per word.
struct SplitList {
  std::string buffer;
  std::vector<SplitRef> refs;

  std::string_view text(const SplitRef& r) const { return std::string_view(buffer).substr(r.begin, r.size); }
  void add(std::string_view text, bool at_origin, int32_t token_id = -1) {
    refs.push_back({static_cast<uint32_t>(buffer.size()), static_cast<uint32_t>(text.size()), token_id, at_origin});
    buffer.append(text);
  }
  void clear() {
    buffer.clear();
    refs.clear();
  }
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual Status normalize(std::string& text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits `text` (a split without token id) further, appending the non-empty pieces to `out`.
  virtual Status split(std::string_view text, bool at_origin, SplitList& out) const = 0;
  // Applies split() to every split that has no token id yet, keeping order.
  virtual Status pre_tokenize(SplitList& splits) const;
};

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-token.
  virtual void tokenize(std::string_view word, std::vector<int32_t>& out) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual const std::string* id_to_token(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;  // max id + 1
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // HF's decode_chain: token strings in, token strings out; the caller joins them.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds special tokens around one sequence (called only when add_special_tokens is set).
  virtual void process(std::vector<int32_t>& ids) const = 0;
};

class Regex;
// {"String": s} (matched literally) or {"Regex": r}, as HF writes patterns.
Result<std::shared_ptr<const Regex>> compile_pattern(const Json& pattern);

// Factories: each reads its JSON object and names what it cannot handle in the Status.
Result<std::unique_ptr<Normalizer>> make_normalizer(const Json& j);
Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const Json& j);
Result<std::unique_ptr<Model>> make_bpe_model(const Json& j);
Result<std::unique_ptr<Decoder>> make_decoder(const Json& j);
Result<std::unique_ptr<PostProcessor>> make_post_processor(const Json& j);

// Small JSON accessors that return a default when a key is missing or null.
bool json_bool(const Json& j, const char* key, bool fallback);
std::string json_string(const Json& j, const char* key, const std::string& fallback);
std::string json_type(const Json& j);

}  // namespace tk::tokenizer_detail
