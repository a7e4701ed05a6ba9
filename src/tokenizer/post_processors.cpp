// Post-processors: the special tokens a tokenizer.json wraps around an encoded sequence when
// add_special_tokens is set (TemplateProcessing, Roberta/Bert, ByteLevel, Sequence).
#include <map>

#include "pipeline.h"

namespace tk::tokenizer_detail {
namespace {

// The template for a single sequence: literal special-token ids, with -1 standing for "$A".
class TemplateProcessor final : public PostProcessor {
 public:
  explicit TemplateProcessor(std::vector<std::vector<int32_t>> pieces) : pieces_(std::move(pieces)) {}
  void process(std::vector<int32_t>& ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 8);
    for (const auto& piece : pieces_) {
      if (piece.empty()) out.insert(out.end(), ids.begin(), ids.end());
      else out.insert(out.end(), piece.begin(), piece.end());
    }
    ids.swap(out);
  }

 private:
  std::vector<std::vector<int32_t>> pieces_;  // empty vector = the sequence itself
};

// ByteLevel only trims offsets; ids are untouched.
class NoopProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&) const override {}
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : parts_) p->process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

Result<std::vector<int32_t>> special_token_ids(const Json& specials, const std::string& name) {
  if (!specials.is_object() || !specials.contains(name)) {
    return corrupt("TemplateProcessing: special token '" + name + "' is not in special_tokens");
  }
  const Json& entry = specials[name];
  if (!entry.contains("ids") || !entry["ids"].is_array()) return corrupt("TemplateProcessing: '" + name + "' has no ids");
  std::vector<int32_t> ids;
  for (const Json& id : entry["ids"]) {
    if (!id.is_number_integer()) return corrupt("TemplateProcessing: non-integer id for '" + name + "'");
    ids.push_back(id.get<int32_t>());
  }
  if (ids.empty()) return corrupt("TemplateProcessing: '" + name + "' has no ids");
  return ids;
}

Result<std::unique_ptr<PostProcessor>> make_template(const Json& j) {
  if (!j.contains("single") || !j["single"].is_array()) return corrupt("TemplateProcessing without a 'single' template");
  const Json specials = j.contains("special_tokens") ? j["special_tokens"] : Json::object();
  std::vector<std::vector<int32_t>> pieces;
  for (const Json& piece : j["single"]) {
    if (piece.contains("Sequence")) {
      pieces.emplace_back();
    } else if (piece.contains("SpecialToken") && piece["SpecialToken"].contains("id")) {
      TK_ASSIGN_OR_RETURN(auto ids, special_token_ids(specials, json_string(piece["SpecialToken"], "id", "")));
      pieces.push_back(std::move(ids));
    } else {
      return corrupt("TemplateProcessing: a piece is neither Sequence nor SpecialToken");
    }
  }
  return std::unique_ptr<PostProcessor>(new TemplateProcessor(std::move(pieces)));
}

// Roberta/Bert: {"cls": [token, id], "sep": [token, id]} -> cls $A sep.
Result<std::unique_ptr<PostProcessor>> make_cls_sep(const Json& j) {
  auto id_of = [&](const char* key) -> Result<int32_t> {
    if (!j.contains(key) || !j[key].is_array() || j[key].size() != 2 || !j[key][1].is_number_integer()) {
      return corrupt(std::string("post-processor: '") + key + "' must be [token, id]");
    }
    return j[key][1].get<int32_t>();
  };
  TK_ASSIGN_OR_RETURN(int32_t cls, id_of("cls"));
  TK_ASSIGN_OR_RETURN(int32_t sep, id_of("sep"));
  return std::unique_ptr<PostProcessor>(new TemplateProcessor({{cls}, {}, {sep}}));
}

}  // namespace

Result<std::unique_ptr<PostProcessor>> make_post_processor(const Json& j) {
  const std::string type = json_type(j);
  if (type == "TemplateProcessing") return make_template(j);
  if (type == "ByteLevel") return std::unique_ptr<PostProcessor>(new NoopProcessor());
  if (type == "RobertaProcessing" || type == "BertProcessing") return make_cls_sep(j);
  if (type == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array()) return corrupt("Sequence post-processor without 'processors'");
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const Json& part : j["processors"]) {
      TK_ASSIGN_OR_RETURN(auto p, make_post_processor(part));
      parts.push_back(std::move(p));
    }
    return std::unique_ptr<PostProcessor>(new SequenceProcessor(std::move(parts)));
  }
  return unsupported("post-processor type '" + type + "' is not supported");
}

}  // namespace tk::tokenizer_detail
