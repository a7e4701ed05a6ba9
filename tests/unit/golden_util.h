// Shared helpers for tests that replay the transformers goldens of tests/data/golden.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/engine.h"

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

}  // namespace tk::test
