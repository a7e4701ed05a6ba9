// SafetensorsFile on well-formed files and on every way a file can be broken or hostile: each
// must give one error Status naming the file (and tensor), never a crash or an out-of-bounds read.
#include <limits>
#include <random>

#include "test_files.h"

namespace tk {
namespace {

using testing::ScratchDir;
using testing::TensorSpec;

class SafetensorsTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<SafetensorsFile>> open_bytes(const std::string& bytes) {
    path_ = dir_.file("model.safetensors");
    testing::write_file(path_, bytes);
    return SafetensorsFile::open(path_);
  }
  // Opening must fail with `code`, and the message must name the file and contain `needle`.
  void expect_error(const std::string& bytes, StatusCode code, const std::string& needle) {
    auto r = open_bytes(bytes);
    ASSERT_FALSE(r.ok()) << "opened a broken file; expected: " << needle;
    EXPECT_EQ(r.status().code(), code) << r.status().to_string();
    EXPECT_NE(r.status().message().find(path_), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << "one line: " << r.status().message();
  }
  std::string with_data(const std::vector<TensorSpec>& specs, size_t data_bytes) {
    return testing::safetensors_bytes(testing::header_json(specs), std::string(data_bytes, '\x5a'));
  }

  ScratchDir dir_;
  std::string path_;
};

TEST_F(SafetensorsTest, ReadsEveryTensorWithItsBytes) {
  auto r = open_bytes(testing::packed_safetensors({{"a.weight", "BF16", {3, 4}},
                                                    {"b.bias", "F16", {5}},
                                                    {"c.norm", "F32", {2, 1, 3}},
                                                    {"d.ids", "I64", {2}},
                                                    {"e.scalar", "F32", {}},
                                                    {"f.empty", "F32", {0, 8}}}));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const SafetensorsFile& f = **r;
  ASSERT_EQ(f.tensors().size(), 6u);
  const TensorInfo& a = f.tensors().at("a.weight");
  EXPECT_EQ(a.dtype, DType::kBF16);
  EXPECT_EQ(a.shape, (Shape{3, 4}));
  EXPECT_EQ(a.nbytes, 24u);
  EXPECT_EQ(a.file, path_);
  EXPECT_EQ(a.name, "a.weight");
  const TensorInfo& c = f.tensors().at("c.norm");
  EXPECT_EQ(c.dtype, DType::kF32);
  EXPECT_EQ(c.shape, (Shape{2, 1, 3}));
  // c starts after a (24 bytes) and b (10 bytes): byte 34 of the buffer, holding 34*7 & 0xff.
  EXPECT_EQ(static_cast<const uint8_t*>(c.data)[0], (34 * 7) & 0xff);
  EXPECT_EQ(static_cast<const uint8_t*>(a.data) + 34, static_cast<const uint8_t*>(c.data));
  EXPECT_EQ(f.tensors().at("d.ids").dtype, DType::kI64);
  EXPECT_EQ(f.tensors().at("e.scalar").shape.rank, 0);
  EXPECT_EQ(f.tensors().at("e.scalar").nbytes, 4u);
  EXPECT_EQ(f.tensors().at("f.empty").nbytes, 0u);
  EXPECT_EQ(f.size(), testing::packed_safetensors({{"a.weight", "BF16", {3, 4}},
                                                   {"b.bias", "F16", {5}},
                                                   {"c.norm", "F32", {2, 1, 3}},
                                                   {"d.ids", "I64", {2}},
                                                   {"e.scalar", "F32", {}},
                                                   {"f.empty", "F32", {0, 8}}})
                          .size());
}

TEST_F(SafetensorsTest, AcceptsMetadataAndPaddedHeader) {
  std::string header = R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  header += std::string(8 - header.size() % 8, ' ');  // writers pad the header with spaces
  auto r = open_bytes(testing::safetensors_bytes(header, std::string(8, '\0')));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->tensors().size(), 1u);
}

TEST_F(SafetensorsTest, EmptyCheckpointHasNoTensors) {
  auto r = open_bytes(testing::safetensors_bytes("{}", ""));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE((*r)->tensors().empty());
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  auto r = SafetensorsFile::open(dir_.file("absent.safetensors"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("absent.safetensors"), std::string::npos);
}

TEST_F(SafetensorsTest, EmptyFile) { expect_error("", StatusCode::kCorrupt, "too short"); }
TEST_F(SafetensorsTest, ShorterThanLengthPrefix) { expect_error("\x10\0\0", StatusCode::kCorrupt, "too short"); }

TEST_F(SafetensorsTest, HeaderLengthPastEndOfFile) {
  expect_error(testing::le64(1000) + "{}", StatusCode::kCorrupt, "header length 1000 runs past the end");
}

TEST_F(SafetensorsTest, AbsurdHeaderLength) {
  expect_error(testing::le64(uint64_t{1} << 63) + "{}", StatusCode::kCorrupt, "header length 9223372036854775808");
  expect_error(testing::le64(std::numeric_limits<uint64_t>::max()) + "{}", StatusCode::kCorrupt, "runs past the end");
}

TEST_F(SafetensorsTest, MalformedJson) {
  expect_error(testing::safetensors_bytes(R"({"w": {"dtype": "F32", )", ""), StatusCode::kCorrupt, "malformed JSON");
  expect_error(testing::safetensors_bytes("\xff\xfe{}", ""), StatusCode::kCorrupt, "malformed JSON");
}

TEST_F(SafetensorsTest, HeaderNotAnObject) {
  expect_error(testing::safetensors_bytes("[1, 2]", ""), StatusCode::kCorrupt, "not an object");
}

TEST_F(SafetensorsTest, DataShorterThanOffsets) {
  // The header promises 128 bytes; the file was cut after 100.
  expect_error(with_data({{"model.embed_tokens.weight", "BF16", {8, 8}, 0, 128}}, 100), StatusCode::kCorrupt,
               "tensor 'model.embed_tokens.weight': data_offsets [0, 128) run past the end of the 100-byte data buffer");
}

TEST_F(SafetensorsTest, ByteSizeMismatch) {
  expect_error(with_data({{"model.layers.0.self_attn.q_proj.weight", "BF16", {8, 8}, 0, 100}}, 100),
               StatusCode::kCorrupt,
               ": tensor 'model.layers.0.self_attn.q_proj.weight': data_offsets [0, 100) hold 100 bytes but "
               "BF16 [8, 8] needs 128");
}

TEST_F(SafetensorsTest, BeginAfterEnd) {
  expect_error(with_data({{"w", "U8", {0}, 10, 5}}, 10), StatusCode::kCorrupt,
               "tensor 'w': data_offsets [10, 5) have begin > end");
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  expect_error(with_data({{"a", "F32", {2}, 0, 8}, {"b", "F32", {2}, 4, 12}}, 12), StatusCode::kCorrupt,
               "tensor 'b' data_offsets [4, 12) overlap tensor 'a' [0, 8)");
  // Two names for the same bytes are an overlap too.
  expect_error(with_data({{"a", "F32", {2}, 0, 8}, {"b", "F32", {2}, 0, 8}}, 8), StatusCode::kCorrupt, "overlap");
}

TEST_F(SafetensorsTest, GapBetweenTensors) {
  expect_error(with_data({{"a", "F32", {2}, 0, 8}, {"b", "F32", {2}, 12, 20}}, 20), StatusCode::kCorrupt,
               "gap: data bytes [8, 12) before tensor 'b' belong to no tensor");
}

TEST_F(SafetensorsTest, OffsetsNotStartingAtZero) {
  expect_error(with_data({{"a", "F32", {2}, 4, 12}}, 12), StatusCode::kCorrupt, "gap: data bytes [0, 4)");
}

TEST_F(SafetensorsTest, TrailingBytesAfterLastTensor) {
  expect_error(with_data({{"a", "F32", {2}, 0, 8}}, 12), StatusCode::kCorrupt, "4 trailing bytes");
}

TEST_F(SafetensorsTest, NegativeDimension) {
  expect_error(with_data({{"w", "F32", {-1, 4}, 0, 0}}, 0), StatusCode::kCorrupt, "tensor 'w': shape [-1,4]");
}

TEST_F(SafetensorsTest, ShapeOverflowsInt64) {
  int64_t big = int64_t{1} << 40;
  expect_error(with_data({{"w", "F32", {big, big}, 0, 0}}, 0), StatusCode::kCorrupt, "overflows int64");
}

TEST_F(SafetensorsTest, ByteCountOverflows) {
  // 2^62 elements fit in int64, 2^62 * 4 bytes do not fit in 64 bits.
  expect_error(with_data({{"w", "F32", {int64_t{1} << 62}, 0, 0}}, 0), StatusCode::kCorrupt,
               "overflows the byte count");
}

TEST_F(SafetensorsTest, UnknownDtype) {
  expect_error(with_data({{"w", "Q4_K", {2}, 0, 2}}, 2), StatusCode::kCorrupt, "tensor 'w': unknown dtype");
}

TEST_F(SafetensorsTest, KnownButUnsupportedDtype) {
  expect_error(with_data({{"w", "F8_E5M2", {2}, 0, 2}}, 2), StatusCode::kUnsupported, "dtype F8_E5M2 is not supported");
}

TEST_F(SafetensorsTest, RankAboveFour) {
  expect_error(with_data({{"w", "U8", {1, 1, 1, 1, 1}, 0, 1}}, 1), StatusCode::kUnsupported, "rank 5");
}

TEST_F(SafetensorsTest, WrongJsonTypes) {
  auto raw = [](const std::string& entry) { return testing::safetensors_bytes(R"({"w":)" + entry + "}", ""); };
  expect_error(raw(R"({"dtype":"F32","shape":5,"data_offsets":[0,0]})"), StatusCode::kCorrupt, "shape missing or not a list");
  expect_error(raw(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,0]})"), StatusCode::kCorrupt, "not a list of sizes");
  expect_error(raw(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,0]})"), StatusCode::kCorrupt, "not a list of sizes");
  expect_error(raw(R"({"dtype":7,"shape":[0],"data_offsets":[0,0]})"), StatusCode::kCorrupt, "dtype missing");
  expect_error(raw(R"({"shape":[0],"data_offsets":[0,0]})"), StatusCode::kCorrupt, "dtype missing");
  expect_error(raw(R"({"dtype":"F32","shape":[0],"data_offsets":[0]})"), StatusCode::kCorrupt, "data_offsets missing");
  expect_error(raw(R"({"dtype":"F32","shape":[0],"data_offsets":[0,0,0]})"), StatusCode::kCorrupt, "data_offsets missing");
  expect_error(raw(R"({"dtype":"F32","shape":[0],"data_offsets":["0",0]})"), StatusCode::kCorrupt, "are not byte offsets");
  expect_error(raw(R"({"dtype":"F32","shape":[0],"data_offsets":[-8,0]})"), StatusCode::kCorrupt, "are not byte offsets");
  expect_error(raw(R"({"dtype":"F32","shape":[0],"data_offsets":[0,18446744073709551615]})"), StatusCode::kCorrupt,
               "are not byte offsets");
  expect_error(raw("[1]"), StatusCode::kCorrupt, "tensor 'w': expected an object, got array");
  expect_error(testing::safetensors_bytes(R"({"__metadata__":{"a":1}})", ""), StatusCode::kCorrupt, "__metadata__");
  expect_error(testing::safetensors_bytes(R"({"__metadata__":[]})", ""), StatusCode::kCorrupt, "__metadata__");
}

TEST_F(SafetensorsTest, DuplicateTensorNames) {
  std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  expect_error(testing::safetensors_bytes(header, std::string(8, '\0')), StatusCode::kCorrupt,
               "tensor 'w' is listed twice");
}

TEST_F(SafetensorsTest, NestedKeysAreNotDuplicates) {
  // The same field names inside different tensors must not trip the duplicate check.
  auto r = open_bytes(testing::packed_safetensors({{"a", "F32", {1}}, {"b", "F32", {1}}}));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
}

TEST_F(SafetensorsTest, DeeplyNestedHeaderIsAnErrorNotAStackOverflow) {
  const size_t depth = 200000;
  expect_error(testing::safetensors_bytes(std::string(depth, '[') + std::string(depth, ']'), ""), StatusCode::kCorrupt,
               "not an object");
  expect_error(testing::safetensors_bytes(std::string(depth, '['), ""), StatusCode::kCorrupt, "malformed JSON");
}

// Random corruptions of a valid file (flipped bytes, changed lengths, truncation) must each be
// opened or refused; under the sanitizers this also proves no read leaves the mapping.
TEST_F(SafetensorsTest, RandomCorruptionsNeverCrash) {
  const std::string good = testing::packed_safetensors(
      {{"model.embed_tokens.weight", "BF16", {16, 8}}, {"model.norm.weight", "F32", {8}}, {"x", "I64", {3}}});
  std::mt19937_64 rng(20240601);
  int refused = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::string bytes = good;
    switch (iter % 3) {
      case 0:  // flip a few bytes anywhere (header length, JSON, data)
        for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
        break;
      case 1:  // truncate
        bytes.resize(rng() % bytes.size());
        break;
      case 2:  // replace a digit of the JSON header with another digit
        for (size_t pos = 8 + rng() % (bytes.size() - 8); pos < bytes.size(); ++pos)
          if (bytes[pos] >= '0' && bytes[pos] <= '9') {
            bytes[pos] = static_cast<char>('0' + rng() % 10);
            break;
          }
        break;
    }
    auto r = open_bytes(bytes);
    if (!r.ok()) {
      ++refused;
      EXPECT_NE(r.status().message().find(path_), std::string::npos) << r.status().message();
    }
  }
  EXPECT_GT(refused, 500);
}

}  // namespace
}  // namespace tk
