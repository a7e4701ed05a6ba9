// Datasets of the serving benchmarks (vLLM's benchmarks/datasets.py, read to learn).
#include "bench_dataset.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

namespace tk::cli {
namespace {

int spread(int len, double ratio, std::mt19937_64& rng) {
  const int lo = std::max(1, static_cast<int>(len * (1.0 - ratio))), hi = std::max(lo, static_cast<int>(len * (1.0 + ratio)));
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

Result<std::vector<BenchPrompt>> random_dataset(const DatasetFlags& f, const Tokenizer* tok, int64_t vocab) {
  std::mt19937_64 rng(f.seed);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> prefix(f.prefix_len);
  for (int32_t& t : prefix) t = token(rng);
  std::vector<BenchPrompt> out;
  for (int i = 0; i < f.num_prompts; ++i) {
    BenchPrompt p;
    p.ids = prefix;
    const int n = spread(f.input_len, f.range_ratio, rng);
    for (int k = 0; k < n; ++k) p.ids.push_back(token(rng));
    p.output_len = spread(f.output_len, f.range_ratio, rng);
    if (tok) p.text = tok->decode(p.ids, /*skip_special_tokens=*/false);
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<BenchPrompt>> sharegpt_dataset(const DatasetFlags& f, const Tokenizer* tok) {
  if (!tok) return invalid_argument("--dataset-name sharegpt needs a tokenizer (--tokenizer DIR)");
  if (f.path.empty()) return invalid_argument("--dataset-name sharegpt needs --dataset-path FILE");
  TK_ASSIGN_OR_RETURN(std::string text, read_text_file(f.path));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return corrupt(f.path + ": not a JSON list of conversations");
  std::vector<size_t> order(j.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(f.seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<BenchPrompt> out;
  for (size_t i : order) {
    if (static_cast<int>(out.size()) >= f.num_prompts) break;
    const auto& conv = j[i].is_object() ? j[i].value("conversations", nlohmann::json()) : nlohmann::json();
    if (!conv.is_array() || conv.size() < 2 || !conv[0].contains("value") || !conv[1].contains("value")) continue;
    if (!conv[0]["value"].is_string() || !conv[1]["value"].is_string()) continue;
    BenchPrompt p;
    p.text = conv[0]["value"].get<std::string>();
    auto ids = tok->encode(p.text, true);
    auto reply = tok->encode(conv[1]["value"].get<std::string>(), false);
    if (!ids.ok() || !reply.ok()) continue;
    p.ids = std::move(*ids);
    p.output_len = static_cast<int>(reply->size());
    // vLLM's filter: drop very short ones and those past 1024 prompt / 2048 total tokens.
    if (p.ids.size() < 4 || p.output_len < 4 || p.ids.size() > 1024 || p.ids.size() + p.output_len > 2048) continue;
    out.push_back(std::move(p));
  }
  if (out.empty()) return invalid_argument(f.path + ": no usable conversations");
  return out;
}

}  // namespace

Result<std::vector<BenchPrompt>> make_dataset(const DatasetFlags& f, const Tokenizer* tok, int64_t vocab) {
  if (f.num_prompts < 1) return invalid_argument("--num-prompts must be at least 1");
  if (f.input_len < 1 || f.output_len < 1) return invalid_argument("--input-len and --output-len must be at least 1");
  if (!(f.range_ratio >= 0 && f.range_ratio < 1)) return invalid_argument("--range-ratio must be in [0, 1)");
  if (f.prefix_len < 0) return invalid_argument("--prefix-len must be >= 0");
  if (f.name == "random") return random_dataset(f, tok, vocab);
  if (f.name == "sharegpt") return sharegpt_dataset(f, tok);
  return invalid_argument("--dataset-name must be random or sharegpt, got '" + f.name + "'");
}

}  // namespace tk::cli
