// generation_config.json -> GenerationConfig: the sampling defaults a checkpoint ships with
// (Llama 3 instruct, for example, ends turns on several eos ids listed only here).
#include "json_fields.h"
#include "model/model.h"

namespace tk {

namespace {

using json_fields::json;

Status read_float(const json& j, const char* key, const std::string& src, std::optional<float>* out) {
  if (json_fields::find(j, key) == nullptr) return Status::ok_status();
  double v = 0;
  TK_RETURN_IF_ERROR(json_fields::read_double(j, key, src, &v));
  *out = static_cast<float>(v);
  return Status::ok_status();
}

// A float field that must satisfy `ok` (the range the engine accepts, as `range` says): a bad
// default names the file and the field instead of failing every request later.
Status read_checked(const json& j, const char* key, const std::string& src, std::optional<float>* out, bool (*ok)(float),
                    const char* range) {
  TK_RETURN_IF_ERROR(read_float(j, key, src, out));
  if (*out && !ok(**out)) return json_fields::field_error(src, key, std::string("must be in ") + range, j.at(key));
  return Status::ok_status();
}

Status read_int_field(const json& j, const char* key, const std::string& src, std::optional<int>* out, int64_t min,
                      int64_t max) {
  if (json_fields::find(j, key) == nullptr) return Status::ok_status();
  int64_t v = 0;
  TK_RETURN_IF_ERROR(json_fields::read_int(j, key, src, &v, min, max));
  *out = static_cast<int>(v);
  return Status::ok_status();
}

Status read_fields(const json& j, const std::string& src, GenerationConfig& g) {
  TK_RETURN_IF_ERROR(json_fields::read_token_ids(j, "eos_token_id", src, &g.eos_token_ids));
  TK_RETURN_IF_ERROR(json_fields::read_token_id(j, "bos_token_id", src, &g.bos_token_id));
  // The ranges SamplingParams::validate accepts.
  TK_RETURN_IF_ERROR(read_checked(j, "temperature", src, &g.temperature, [](float v) { return v >= 0.f && v <= 100.f; },
                                  "[0, 100]"));
  TK_RETURN_IF_ERROR(read_checked(j, "top_p", src, &g.top_p, [](float v) { return v > 0.f && v <= 1.f; }, "(0, 1]"));
  TK_RETURN_IF_ERROR(read_checked(j, "min_p", src, &g.min_p, [](float v) { return v >= 0.f && v <= 1.f; }, "[0, 1]"));
  TK_RETURN_IF_ERROR(read_checked(j, "repetition_penalty", src, &g.repetition_penalty,
                                  [](float v) { return v > 0.f && v <= 10.f; }, "(0, 10]"));
  TK_RETURN_IF_ERROR(read_int_field(j, "top_k", src, &g.top_k, 0, std::numeric_limits<int32_t>::max()));
  TK_RETURN_IF_ERROR(read_int_field(j, "max_new_tokens", src, &g.max_new_tokens, 1, std::numeric_limits<int32_t>::max()));
  if (json_fields::find(j, "do_sample") != nullptr) {
    bool do_sample = false;
    TK_RETURN_IF_ERROR(json_fields::read_bool(j, "do_sample", src, &do_sample));
    g.do_sample = do_sample;
  }
  return Status::ok_status();
}

}  // namespace

Result<GenerationConfig> parse_generation_config(const std::string& json_text, const std::string& source) {
  TK_ASSIGN_OR_RETURN(json j, json_fields::parse_json(json_text, source));
  if (!j.is_object()) return corrupt(source + ": expected a JSON object, got " + j.type_name());
  try {  // NOTE: the boundary: no nlohmann exception escapes, whatever the file holds.
    GenerationConfig g;
    TK_RETURN_IF_ERROR(read_fields(j, source, g));
    return g;
  } catch (const std::exception& e) {
    return invalid_argument(source + ": " + e.what());
  }
}

Result<GenerationConfig> load_generation_config(const std::string& model_dir) {
  std::string path = join_path(model_dir, "generation_config.json");
  if (!file_exists(path)) return GenerationConfig();
  TK_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_generation_config(text, path);
}

}  // namespace tk
