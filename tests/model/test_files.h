// Helpers that write checkpoint files (safetensors, JSON) into a fresh temporary directory.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace tk::testing {

// A directory under gtest's TempDir(), removed with everything in it at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = ::testing::TempDir() + "tokamak_model_XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    char* made = mkdtemp(buf.data());
    EXPECT_NE(made, nullptr) << "mkdtemp failed for " << pattern;
    path_ = made != nullptr ? made : ::testing::TempDir();
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// The 8-byte little-endian length prefix.
inline std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A safetensors file from raw header text and raw data.
inline std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

struct TensorSpec {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

inline std::string header_json(const std::vector<TensorSpec>& specs) {
  nlohmann::json h = nlohmann::json::object();
  for (const TensorSpec& s : specs)
    h[s.name] = {{"dtype", s.dtype}, {"shape", s.shape}, {"data_offsets", {s.begin, s.end}}};
  return h.dump();
}

inline size_t spec_element_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  if (dtype == "I64") return 8;
  return 1;
}

// Laid out back to back as a writer would; byte i of the data buffer holds (i * 7) & 0xff so a
// view of the wrong range shows.
inline std::string packed_safetensors(std::vector<TensorSpec> specs) {
  uint64_t offset = 0;
  for (TensorSpec& s : specs) {
    uint64_t n = spec_element_size(s.dtype);
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    s.begin = offset;
    s.end = offset + n;
    offset = s.end;
  }
  std::string data(offset, '\0');
  for (uint64_t i = 0; i < offset; ++i) data[i] = static_cast<char>((i * 7) & 0xff);
  return safetensors_bytes(header_json(specs), data);
}

}  // namespace tk::testing
