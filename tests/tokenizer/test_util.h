// Shared helpers for the tokenizer tests: where the parity data lives, the parity records, and
// tokenizers loaded once per process (the Llama 3 one is 17 MB of JSON).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tk::testing {

struct ParityRecord {
  std::string tokenizer;
  std::string text;
  std::vector<int32_t> ids;
  bool has_ids_with_special = false;
  std::vector<int32_t> ids_with_special;
  std::string decoded;
};

std::string shared_dir();      // ../shared beside the repository, or $TOKAMAK_SHARED_DIR
std::string tokenizers_dir();  // <shared>/data/tokenizers
bool shared_data_present();

// Skips the calling test when ../shared (the parity data a lone clone lacks) is absent, naming it.
#define TK_SKIP_WITHOUT_SHARED()                                                                        \
  do {                                                                                                 \
    if (!::tk::testing::shared_data_present())                                                         \
      GTEST_SKIP() << "needs the shared test data " << ::tk::testing::tokenizers_dir()                  \
                   << " (../shared beside the repository), which is absent";                            \
  } while (0)
const std::vector<std::string>& tokenizer_names();
// Every record of parity.jsonl.gz; fails the calling test when the file cannot be read.
const std::vector<ParityRecord>& parity_records();
// Loaded once; null (with a test failure) when loading fails.
const Tokenizer* shared_tokenizer(const std::string& name);
bool valid_utf8(const std::string& s);

}  // namespace tk::testing
