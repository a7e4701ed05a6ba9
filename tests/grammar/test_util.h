// Helpers shared by the grammar tests: small vocabularies, whole-string matching and the
// brute-force mask check (a token is allowed iff feeding its bytes keeps the grammar alive).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "grammar/grammar.h"

namespace tk::grammar::testing {

// The 256 single bytes, then eos (id 256).
std::shared_ptr<const Vocabulary> byte_vocab();
// Single bytes, JSON-ish and word tokens of several lengths (some multi-byte UTF-8, some partial
// UTF-8), two special tokens, eos; mask size padded past the tokens.
std::shared_ptr<const Vocabulary> small_vocab();
constexpr int32_t kByteVocabEos = 256;
int32_t small_vocab_eos();

std::shared_ptr<const CompiledGrammar> compile_or_die(const Grammar& g, std::shared_ptr<const Vocabulary> vocab = nullptr);
Grammar gbnf_or_die(const std::string& text);

// The whole text is a sentence of the grammar.
bool matches(const std::shared_ptr<const CompiledGrammar>& g, std::string_view text);
bool gbnf_matches(const std::string& grammar, std::string_view text);

struct WalkStats {
  int states = 0;
  int finished = 0;
};
// Random walks: at every state reached, the mask must equal the brute-force answer. Returns
// the texts of the finished walks.
std::vector<std::string> check_masks_on_walks(const std::shared_ptr<const CompiledGrammar>& g, uint32_t seed,
                                              int walks, int max_steps, WalkStats* stats = nullptr);

// A random sentence (token by token from the masks; biased to finish); empty optional if it did not.
std::optional<std::string> random_sentence(const std::shared_ptr<const CompiledGrammar>& g, std::mt19937& rng,
                                           int max_steps);

std::string shared_dir();
std::string test_data_dir();

}  // namespace tk::grammar::testing
