// Test helpers: reads parity.jsonl.gz through zlib and caches loaded tokenizers.
#include "test_util.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

namespace tk::testing {

std::string shared_dir() {
  const char* env = std::getenv("TOKAMAK_SHARED_DIR");  // tests only: CI checks the skip with a missing one
  return env && *env ? env : TOKAMAK_SHARED_DIR;
}

std::string tokenizers_dir() { return shared_dir() + "/data/tokenizers"; }

bool shared_data_present() { return std::filesystem::is_directory(tokenizers_dir()); }

const std::vector<std::string>& tokenizer_names() {
  static const std::vector<std::string> names = {"llama3",           "mistral-v1-legacy", "mistral-v1-metaspace",
                                                 "mistral-v3-legacy", "qwen2-style",       "gpt2-style"};
  return names;
}

namespace {

std::string gunzip_file(const std::string& path) {
  std::string out;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return out;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(f, buffer, sizeof(buffer))) > 0) out.append(buffer, n);
  gzclose(f);
  return out;
}

std::vector<ParityRecord> load_records() {
  std::vector<ParityRecord> records;
  const std::string text = gunzip_file(tokenizers_dir() + "/parity.jsonl.gz");
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) {
      const auto j = nlohmann::json::parse(text.substr(pos, end - pos));
      ParityRecord r;
      r.tokenizer = j.at("tokenizer").get<std::string>();
      r.text = j.at("text").get<std::string>();
      r.ids = j.at("ids").get<std::vector<int32_t>>();
      r.decoded = j.at("decoded").get<std::string>();
      if (j.contains("ids_with_special")) {
        r.has_ids_with_special = true;
        r.ids_with_special = j.at("ids_with_special").get<std::vector<int32_t>>();
      }
      records.push_back(std::move(r));
    }
    pos = end + 1;
  }
  return records;
}

}  // namespace

const std::vector<ParityRecord>& parity_records() {
  static const std::vector<ParityRecord> records = load_records();
  EXPECT_FALSE(records.empty()) << "no records read from " << tokenizers_dir() << "/parity.jsonl.gz";
  return records;
}

const Tokenizer* shared_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  auto tok = Tokenizer::load(tokenizers_dir() + "/" + name);
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  if (!tok.ok()) return nullptr;
  return (cache[name] = std::move(tok).value()).get();
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (int k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace tk::testing
