// FP8 checkpoints that lie: every field of quantization_config tokamak does not run, and scales
// of the wrong shape, dtype or value, missing scales, weights that are not FP8. Each is an error
// that names the field or the tensor, never a crash or a silently wrong model.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>

#include "../model/test_files.h"
#include "backend_cpu/cpu_backend.h"
#include "model/model.h"

namespace tk::testing {
namespace {

using nlohmann::json;

std::string fp8_dir(const std::string& name) { return std::string(TOKAMAK_TEST_DATA) + "/fp8/" + name; }

struct RawTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
using RawTensors = std::map<std::string, RawTensor>;

const char* st_name(DType d) {
  switch (d) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kF8E4M3: return "F8_E4M3";
    case DType::kI32: return "I32";
    default: return "U8";
  }
}

RawTensors read_tensors(const std::string& path) {
  RawTensors out;
  auto f = SafetensorsFile::open(path);
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  if (!f.ok()) return out;
  for (const auto& [name, t] : (*f)->tensors()) {
    RawTensor r{st_name(t.dtype), {}, std::string(static_cast<const char*>(t.data), t.nbytes)};
    for (int i = 0; i < t.shape.rank; ++i) r.shape.push_back(t.shape[i]);
    out[name] = std::move(r);
  }
  return out;
}

std::string write_tensors(const RawTensors& tensors) {
  std::vector<TensorSpec> specs;
  std::string data;
  for (const auto& [name, t] : tensors) {
    specs.push_back({name, t.dtype, t.shape, data.size(), data.size() + t.bytes.size()});
    data += t.bytes;
  }
  return safetensors_bytes(header_json(specs), data);
}

std::string f32_bytes(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

// Copies case `name` into a scratch directory with its config and tensors edited, and loads it.
Status load_edited(const std::string& name, const std::function<void(json&)>& edit_config,
                   const std::function<void(RawTensors&)>& edit_tensors) {
  ScratchDir dir;
  json config = json::parse(std::ifstream(fp8_dir(name) + "/config.json"));
  edit_config(config);
  write_file(dir.file("config.json"), config.dump());
  RawTensors tensors = read_tensors(fp8_dir(name) + "/model.safetensors");
  edit_tensors(tensors);
  write_file(dir.file("model.safetensors"), write_tensors(tensors));
  auto backend = make_cpu_backend(1);
  auto model = Model::load(dir.path(), *backend);
  return model.ok() ? Status::ok_status() : model.status();
}

void expect_error(const Status& s, StatusCode code, const std::string& text) {
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), code) << s.to_string();
  EXPECT_NE(s.message().find(text), std::string::npos) << "message: " << s.message() << "\nwanted: " << text;
}

// Case `name` with its tensors edited, loaded: every layer's (k_scale, v_scale) as read, or the error.
Result<std::vector<std::pair<float, float>>> kv_scales_of(const std::string& name,
                                                            const std::function<void(RawTensors&)>& edit_tensors) {
  ScratchDir dir;
  std::filesystem::copy_file(fp8_dir(name) + "/config.json", dir.file("config.json"));
  RawTensors tensors = read_tensors(fp8_dir(name) + "/model.safetensors");
  edit_tensors(tensors);
  write_file(dir.file("model.safetensors"), write_tensors(tensors));
  auto backend = make_cpu_backend(1);
  auto model = Model::load(dir.path(), *backend);
  if (!model.ok()) return model.status();
  std::vector<std::pair<float, float>> out;
  for (const LayerWeights& l : (*model)->weights().layers) out.emplace_back(l.k_scale, l.v_scale);
  return out;
}

void no_config_edit(json&) {}
void no_tensor_edit(RawTensors&) {}

const std::string kQ0 = "model.layers.0.self_attn.q_proj.";

TEST(Fp8Hostile, UnmodifiedCasesLoad) {
  for (const char* c : {"ct_tensor_static", "ct_channel_token", "ct_block_group", "fp8_block", "fbgemm_channel"})
    EXPECT_TRUE(load_edited(c, no_config_edit, no_tensor_edit).ok()) << c;
}

TEST(Fp8Hostile, ConfigFieldsNotSupportedAreNamed) {
  struct Case {
    std::string name;
    std::function<void(json&)> edit;
    std::string text;
  };
  auto group = [](json& c) -> json& { return c["quantization_config"]["config_groups"]["group_0"]; };
  const std::vector<Case> cases = {
      {"ct_tensor_static", [](json& c) { c["quantization_config"]["quant_method"] = "awq"; },
       "quantization_config.quant_method 'awq' is not supported"},
      {"ct_tensor_static", [](json& c) { c["quantization_config"]["format"] = "pack-quantized"; },
       "quantization_config.format 'pack-quantized' is not supported"},
      {"ct_tensor_static", [&](json& c) { group(c)["weights"]["strategy"] = "group"; },
       "config_groups.group_0.weights.strategy 'group' is not supported"},
      {"ct_tensor_static", [&](json& c) { group(c)["weights"]["num_bits"] = 4; }, "only 8-bit float"},
      {"ct_tensor_static", [&](json& c) { group(c)["weights"]["type"] = "int"; }, "only 8-bit float"},
      {"ct_tensor_static", [&](json& c) { group(c)["weights"]["symmetric"] = false; }, "weights.symmetric"},
      {"ct_tensor_static", [&](json& c) { group(c)["input_activations"]["dynamic"] = true; },
       "input_activations: strategy 'tensor' with dynamic true is not supported"},
      {"ct_tensor_static", [&](json& c) { group(c)["input_activations"]["dynamic"] = "local"; },
       "input_activations.dynamic \"local\" is not supported"},
      {"ct_tensor_static", [&](json& c) { group(c)["targets"] = {"re:.*q_proj"}; }, "group_0.targets"},
      {"ct_tensor_static", [&](json& c) { group(c)["output_activations"] = group(c)["weights"]; },
       "output_activations"},
      {"ct_tensor_static", [](json& c) { c["quantization_config"]["config_groups"]["group_1"] = json::object(); },
       "exactly one config group"},
      {"ct_tensor_static", [](json& c) { c["quantization_config"]["ignore"] = {"re:(unclosed"}; },
       "quantization_config.ignore: 're:(unclosed' is not a regular expression"},
      {"ct_tensor_static", [](json& c) { c["quantization_config"]["ignore"] = "lm_head"; }, "ignore must be a list"},
      {"ct_block_group", [&](json& c) { group(c)["weights"]["block_structure"] = {64, 64}; },
       "only [128, 128] blocks"},
      {"ct_block_group", [&](json& c) { group(c)["input_activations"]["group_size"] = 64; }, "only groups of 128"},
      {"fp8_block", [](json& c) { c["quantization_config"]["weight_block_size"] = {64, 128}; },
       "quantization_config.weight_block_size [64,128]: only [128, 128] is supported"},
      {"fp8_block", [](json& c) { c["quantization_config"]["activation_scheme"] = "static"; },
       "'static' with weight_block_size"},
      {"fp8_block", [](json& c) { c["quantization_config"]["activation_scheme"] = "per-token"; },
       "activation_scheme 'per-token' is not supported"},
      {"fbgemm_channel", [](json& c) { c["quantization_config"]["activation_scale_ub"] = "big"; },
       "activation_scale_ub must be a number"},
      {"fbgemm_channel", [](json& c) { c["quantization_config"]["activation_scale_ub"] = -1; },
       "activation_scale_ub must be positive"},
      {"ct_tensor_static", [](json& c) { c["quantization_config"] = "fp8"; }, "quantization_config must be an object"},
  };
  for (const Case& c : cases) {
    Status s = load_edited(c.name, c.edit, no_tensor_edit);
    EXPECT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.message().find(c.text), std::string::npos) << "message: " << s.message() << "\nwanted: " << c.text;
    EXPECT_NE(s.message().find("config.json"), std::string::npos) << s.message();
  }
}

TEST(Fp8Hostile, OlderCompressionConfigKeyIsRead) {
  // ct_channel_token's config uses compression_config; moved to an unknown method it must fail there.
  expect_error(load_edited("ct_channel_token", [](json& c) { c["compression_config"]["quant_method"] = "gptq"; },
                           no_tensor_edit),
               StatusCode::kUnsupported, "compression_config.quant_method 'gptq'");
}

TEST(Fp8Hostile, WeightScaleOfTheWrongShape) {
  expect_error(load_edited("ct_channel_token", no_config_edit,
                           [](RawTensors& t) {
                             RawTensor& s = t[kQ0 + "weight_scale"];
                             s.shape = {s.shape[0] / 2, 2};
                           }),
               StatusCode::kCorrupt, "tensor '" + kQ0 + "weight_scale' has shape [128, 2] but compression_config (compressed-tensors) per-channel");
  expect_error(load_edited("fp8_block", no_config_edit,
                           [](RawTensors& t) {
                             RawTensor& s = t[kQ0 + "weight_scale_inv"];
                             s.shape = {1, 2};
                             s.bytes = f32_bytes({1.f, 1.f});
                           }),
               StatusCode::kCorrupt, "128x128 block scales of a [256, 64] weight need [2, 1]");
  expect_error(load_edited("ct_tensor_static", no_config_edit,
                           [](RawTensors& t) {
                             RawTensor& s = t[kQ0 + "weight_scale"];
                             s.shape = {2};
                             s.bytes = f32_bytes({1.f, 1.f});
                           }),
               StatusCode::kCorrupt, "per-tensor scales of a [256, 64] weight need one element");
}

TEST(Fp8Hostile, WeightScaleOfTheWrongDtypeOrValue) {
  expect_error(load_edited("ct_channel_token", no_config_edit, [](RawTensors& t) { t[kQ0 + "weight_scale"].dtype = "I32"; }),
               StatusCode::kUnsupported, "FP8 scales must be float32, float16 or bfloat16");
  expect_error(load_edited("ct_tensor_static", no_config_edit,
                           [](RawTensors& t) { t[kQ0 + "weight_scale"].bytes = f32_bytes({-0.5f}); }),
               StatusCode::kCorrupt, "scales must be finite and non-negative");
  expect_error(load_edited("ct_tensor_static", no_config_edit,
                           [](RawTensors& t) { t[kQ0 + "weight_scale"].bytes = f32_bytes({std::nanf("")}); }),
               StatusCode::kCorrupt, "scales must be finite");
  expect_error(load_edited("ct_tensor_static", no_config_edit,
                           [](RawTensors& t) { t[kQ0 + "input_scale"].bytes = f32_bytes({0.f}); }),
               StatusCode::kCorrupt, "scales must be finite and positive");
  expect_error(load_edited("ct_tensor_static", no_config_edit,
                           [](RawTensors& t) {
                             t[kQ0 + "input_scale"].shape = {2};
                             t[kQ0 + "input_scale"].bytes = f32_bytes({1.f, 1.f});
                           }),
               StatusCode::kCorrupt, "a static per-tensor input scale is one element");
}

TEST(Fp8Hostile, MissingScales) {
  expect_error(load_edited("ct_channel_token", no_config_edit, [](RawTensors& t) { t.erase(kQ0 + "weight_scale"); }),
               StatusCode::kNotFound, "tensor '" + kQ0 + "weight_scale' not found");
  expect_error(load_edited("ct_tensor_static", no_config_edit, [](RawTensors& t) { t.erase(kQ0 + "input_scale"); }),
               StatusCode::kNotFound, "tensor '" + kQ0 + "input_scale' not found");
  // fp8 block checkpoints name theirs weight_scale_inv.
  expect_error(load_edited("fp8_block", no_config_edit,
                           [](RawTensors& t) {
                             t[kQ0 + "weight_scale"] = t[kQ0 + "weight_scale_inv"];
                             t.erase(kQ0 + "weight_scale_inv");
                           }),
               StatusCode::kNotFound, "weight_scale_inv' not found");
}

TEST(Fp8Hostile, WeightsThatAreNotFp8) {
  // A quantized module stored in bf16 (its bytes reinterpreted: twice as many, half the rows).
  expect_error(load_edited("ct_channel_token", no_config_edit,
                           [](RawTensors& t) {
                             RawTensor& w = t[kQ0 + "weight"];
                             w.dtype = "BF16";
                             w.shape[1] /= 2;
                           }),
               StatusCode::kCorrupt, "has shape [256, 32] but the config needs [256, 64]");
  expect_error(load_edited("ct_channel_token", no_config_edit,
                           [](RawTensors& t) {
                             RawTensor& w = t[kQ0 + "weight"];
                             w.dtype = "U8";
                           }),
               StatusCode::kUnsupported, "has dtype uint8; compression_config (compressed-tensors) makes it FP8 (F8_E4M3)");
  // An ignored (float) module holding FP8.
  expect_error(load_edited("ct_tensor_static", [](json& c) { c["quantization_config"]["ignore"].push_back(
                               "model.layers.0.mlp.down_proj"); },
                           no_tensor_edit),
               StatusCode::kUnsupported, "'model.layers.0.mlp.down_proj.weight' has dtype float8_e4m3fn");
  // Fused parts must agree.
  expect_error(load_edited("ct_tensor_static", [](json& c) { c["quantization_config"]["ignore"].push_back(
                               "model.layers.0.self_attn.k_proj"); },
                           no_tensor_edit),
               StatusCode::kUnsupported, "'model.layers.0.self_attn.q_proj' is quantized but 'model.layers.0.self_attn.k_proj', fused with it, is ignored");
  // FP8 tensors without any quantization_config.
  expect_error(load_edited("ct_tensor_static", [](json& c) { c.erase("quantization_config"); }, no_tensor_edit),
               StatusCode::kUnsupported, "has dtype float8_e4m3fn; weights must be float32, float16 or bfloat16");
}

// FP8 KV cache scales (--kv-cache-dtype fp8) under every name the quantizers write.
const std::string kAttn0 = "model.layers.0.self_attn.";

RawTensor f32_tensor(std::vector<int64_t> shape, const std::vector<float>& v) { return {"F32", std::move(shape), f32_bytes(v)}; }

TEST(Fp8KvScales, ReadUnderEveryNameTheQuantizersWrite) {
  using Scales = std::vector<std::pair<float, float>>;
  auto first_layer = [](const Result<Scales>& r) {
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() && !r->empty() ? r->front() : std::pair<float, float>{-1.f, -1.f};
  };
  auto none = kv_scales_of("ct_channel_token", no_tensor_edit);
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  for (const auto& kv : *none) EXPECT_EQ(kv, std::make_pair(0.f, 0.f));  // none held: the engine's 1.0
  // compressed-tensors' kv_cache_scheme (a scalar tensor)
  EXPECT_EQ(first_layer(kv_scales_of("ct_channel_token",
                                     [](RawTensors& t) {
                                       t[kAttn0 + "k_scale"] = f32_tensor({}, {0.5f});
                                       t[kAttn0 + "v_scale"] = f32_tensor({1}, {2.f});
                                     })),
            std::make_pair(0.5f, 2.f));
  // older compressed-tensors: the projections' output scales
  EXPECT_EQ(first_layer(kv_scales_of("ct_channel_token",
                                     [](RawTensors& t) {
                                       t[kAttn0 + "k_proj.output_scale"] = f32_tensor({1}, {0.25f});
                                       t[kAttn0 + "v_proj.output_scale"] = f32_tensor({1}, {4.f});
                                     })),
            std::make_pair(0.25f, 4.f));
  // AutoFP8: one scale for both
  EXPECT_EQ(first_layer(kv_scales_of("ct_channel_token", [](RawTensors& t) { t[kAttn0 + "kv_scale"] = f32_tensor({}, {3.f}); })),
            std::make_pair(3.f, 3.f));
  // per-head scales: the largest, so no head saturates
  EXPECT_EQ(first_layer(kv_scales_of("ct_channel_token",
                                     [](RawTensors& t) {
                                       t[kAttn0 + "k_scale"] = f32_tensor({2}, {0.5f, 0.75f});
                                       t[kAttn0 + "v_scale"] = f32_tensor({2, 1}, {1.5f, 1.25f});
                                     })),
            std::make_pair(0.75f, 1.5f));
}

TEST(Fp8KvScales, BadScalesAreNamed) {
  auto bad = [](RawTensor t) { return kv_scales_of("ct_channel_token", [&](RawTensors& ts) { ts[kAttn0 + "k_scale"] = t; }).status(); };
  expect_error(bad(f32_tensor({}, {-1.f})), StatusCode::kCorrupt, "'" + kAttn0 + "k_scale' holds the scale -1");
  expect_error(bad(f32_tensor({}, {0.f})), StatusCode::kCorrupt, "must be finite and positive");
  expect_error(bad(f32_tensor({}, {NAN})), StatusCode::kCorrupt, "must be finite and positive");
  expect_error(bad(f32_tensor({0}, {})), StatusCode::kCorrupt, "is empty");
  expect_error(bad({"I32", {1}, std::string(4, '\1')}), StatusCode::kUnsupported, "must be float32, float16 or bfloat16");
}

}  // namespace
}  // namespace tk::testing
