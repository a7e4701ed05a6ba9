// Checkpoint over one file and over shards listed by model.safetensors.index.json, including
// indexes that lie about their shards.
#include "test_files.h"

namespace tk {
namespace {

using testing::ScratchDir;

const char* kIndex = "model.safetensors.index.json";

std::string index_json(const std::map<std::string, std::string>& weight_map) {
  nlohmann::json j = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
  return j.dump();
}

// Two shards as transformers writes them: embeddings and layer 0 in the first, the rest in the second.
void write_two_shards(const ScratchDir& dir) {
  testing::write_file(dir.file("model-00001-of-00002.safetensors"),
                      testing::packed_safetensors({{"model.embed_tokens.weight", "BF16", {16, 8}},
                                                   {"model.layers.0.input_layernorm.weight", "BF16", {8}}}));
  testing::write_file(dir.file("model-00002-of-00002.safetensors"),
                      testing::packed_safetensors({{"model.norm.weight", "F32", {8}},
                                                   {"lm_head.weight", "F16", {16, 8}}}));
  testing::write_file(dir.file(kIndex),
                      index_json({{"model.embed_tokens.weight", "model-00001-of-00002.safetensors"},
                                  {"model.layers.0.input_layernorm.weight", "model-00001-of-00002.safetensors"},
                                  {"model.norm.weight", "model-00002-of-00002.safetensors"},
                                  {"lm_head.weight", "model-00002-of-00002.safetensors"}}));
}

void expect_error(const Result<std::unique_ptr<Checkpoint>>& r, StatusCode code, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

TEST(CheckpointTest, SingleFile) {
  ScratchDir dir;
  testing::write_file(dir.file("model.safetensors"),
                      testing::packed_safetensors({{"model.norm.weight", "BF16", {8}}, {"lm_head.weight", "BF16", {4, 8}}}));
  auto r = Checkpoint::open(dir.path());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Checkpoint& ckpt = **r;
  EXPECT_EQ(ckpt.files().size(), 1u);
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"lm_head.weight", "model.norm.weight"}));
  EXPECT_TRUE(ckpt.contains("lm_head.weight"));
  EXPECT_FALSE(ckpt.contains("model.embed_tokens.weight"));
  EXPECT_EQ(ckpt.total_bytes(), 16u + 64u);

  auto t = ckpt.get("lm_head.weight", Shape{4, 8});
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->nbytes, 64u);
  EXPECT_TRUE(ckpt.get("lm_head.weight").ok());  // no expected shape: any shape

  auto wrong = ckpt.get("lm_head.weight", Shape{8, 4});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(wrong.status().message().find("model.safetensors: tensor 'lm_head.weight' has shape [4, 8] but the "
                                          "config needs [8, 4]"),
            std::string::npos)
      << wrong.status().message();

  auto missing = ckpt.get("model.embed_tokens.weight");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("model.safetensors: tensor 'model.embed_tokens.weight' not found"),
            std::string::npos)
      << missing.status().message();
}

TEST(CheckpointTest, TwoShards) {
  ScratchDir dir;
  write_two_shards(dir);
  auto r = Checkpoint::open(dir.path());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Checkpoint& ckpt = **r;
  EXPECT_EQ(ckpt.files().size(), 2u);
  EXPECT_EQ(ckpt.names().size(), 4u);
  EXPECT_EQ(ckpt.total_bytes(), 256u + 16u + 32u + 256u);

  auto embed = ckpt.get("model.embed_tokens.weight", Shape{16, 8});
  ASSERT_TRUE(embed.ok()) << embed.status().to_string();
  EXPECT_EQ(embed->dtype, DType::kBF16);
  EXPECT_NE(embed->file.find("model-00001-of-00002.safetensors"), std::string::npos);

  auto head = ckpt.get("lm_head.weight", Shape{16, 8});
  ASSERT_TRUE(head.ok()) << head.status().to_string();
  EXPECT_EQ(head->dtype, DType::kF16);
  EXPECT_NE(head->file.find("model-00002-of-00002.safetensors"), std::string::npos);
  // lm_head follows model.norm.weight (32 bytes) in the second shard.
  EXPECT_EQ(static_cast<const uint8_t*>(head->data)[1], (33 * 7) & 0xff);

  auto missing = ckpt.get("model.layers.1.input_layernorm.weight");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(kIndex), std::string::npos) << missing.status().message();
  EXPECT_NE(missing.status().message().find("model.layers.1.input_layernorm.weight"), std::string::npos);
}

TEST(CheckpointTest, SingleFileWinsOverIndex) {
  ScratchDir dir;
  write_two_shards(dir);
  testing::write_file(dir.file("model.safetensors"), testing::packed_safetensors({{"only.weight", "F32", {2}}}));
  auto r = Checkpoint::open(dir.path());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->names(), (std::vector<std::string>{"only.weight"}));
}

TEST(CheckpointTest, EmptyDirectory) {
  ScratchDir dir;
  expect_error(Checkpoint::open(dir.path()), StatusCode::kNotFound, "no model.safetensors");
}

TEST(CheckpointTest, IndexNamesMissingShard) {
  ScratchDir dir;
  write_two_shards(dir);
  std::filesystem::remove(dir.file("model-00002-of-00002.safetensors"));
  expect_error(Checkpoint::open(dir.path()), StatusCode::kNotFound, "shard 'model-00002-of-00002.safetensors'");
}

TEST(CheckpointTest, IndexedTensorAbsentFromItsShard) {
  ScratchDir dir;
  write_two_shards(dir);
  testing::write_file(dir.file(kIndex),
                      index_json({{"model.embed_tokens.weight", "model-00001-of-00002.safetensors"},
                                  {"model.norm.weight", "model-00001-of-00002.safetensors"}}));
  expect_error(Checkpoint::open(dir.path()), StatusCode::kNotFound,
               "model-00001-of-00002.safetensors: tensor 'model.norm.weight', listed in "
               "model.safetensors.index.json, is not in this shard");
}

TEST(CheckpointTest, BrokenShardNamesTheShard) {
  ScratchDir dir;
  write_two_shards(dir);
  testing::write_file(dir.file("model-00002-of-00002.safetensors"), "garbage");
  expect_error(Checkpoint::open(dir.path()), StatusCode::kCorrupt, "model-00002-of-00002.safetensors: file is 7 bytes");
}

TEST(CheckpointTest, MalformedIndex) {
  ScratchDir dir;
  write_two_shards(dir);
  testing::write_file(dir.file(kIndex), "{\"weight_map\": {");
  expect_error(Checkpoint::open(dir.path()), StatusCode::kCorrupt, "index.json: malformed JSON");
  testing::write_file(dir.file(kIndex), "{\"metadata\": {}}");
  expect_error(Checkpoint::open(dir.path()), StatusCode::kCorrupt, "weight_map missing or not an object");
  testing::write_file(dir.file(kIndex), "{\"weight_map\": []}");
  expect_error(Checkpoint::open(dir.path()), StatusCode::kCorrupt, "weight_map missing or not an object");
  testing::write_file(dir.file(kIndex), "{\"weight_map\": {}}");
  expect_error(Checkpoint::open(dir.path()), StatusCode::kCorrupt, "weight_map is empty");
  testing::write_file(dir.file(kIndex), "{\"weight_map\": {\"w\": 3}}");
  expect_error(Checkpoint::open(dir.path()), StatusCode::kCorrupt, "entry of 'w' is not a file name");
  testing::write_file(dir.file(kIndex), "[]");
  expect_error(Checkpoint::open(dir.path()), StatusCode::kCorrupt, "expected a JSON object");
}

TEST(CheckpointTest, ShardOutsideModelDirectory) {
  ScratchDir dir;
  write_two_shards(dir);
  testing::write_file(dir.file(kIndex), index_json({{"w", "../model-00001-of-00002.safetensors"}}));
  expect_error(Checkpoint::open(dir.path()), StatusCode::kCorrupt, "outside the model directory");
  testing::write_file(dir.file(kIndex), index_json({{"w", "/etc/passwd"}}));
  expect_error(Checkpoint::open(dir.path()), StatusCode::kCorrupt, "outside the model directory");
}

}  // namespace
}  // namespace tk
