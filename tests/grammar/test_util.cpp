// Test helpers (see test_util.h).
#include "test_util.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>

namespace tk::grammar::testing {

std::shared_ptr<const Vocabulary> byte_vocab() {
  static std::shared_ptr<const Vocabulary> v = [] {
    std::vector<Vocabulary::Token> toks;
    for (int b = 0; b < 256; ++b) toks.push_back({std::string(1, static_cast<char>(b)), false});
    toks.push_back({"</s>", true});
    return Vocabulary::create(std::move(toks), {kByteVocabEos}).value();
  }();
  return v;
}

namespace {
const char* const kWords[] = {
    "{", "}", "[", "]", "{\"", "\":", "\": ", "\",", "\", \"", "\"}", "\"]", "},", "}]", "],", ",\n", ",\n  ",
    "\n", "\n  ", "\n    ", "  ", "    ", " ", " \"", "\"", "\"\"", "\\", "\\n", "\\\"", "\\u", "00", "e9", "true",
    "false", "null", "nul", "tr", "0", "1", "12", "123", "-", "-1", ".", ".5", "e", "E+", "1e", "name", "id",
    "type", "value", "items", " the", "the", "ab", "abc", "a", "b", "x", "xyz", "user", "email", "@", "com", ".com",
    "2024", "-01", "-02-", "T", "Z", ":", "::", "=", " ::=", "é", "\xC3", "\xA9", "日本", "\xE6\x97", "😀", "\xF0\x9F",
    "yes", "no", "maybe", "cat", "dog", "catdog", "aaaa", "\t", "\r\n", "1234", "9", "56", "+", "_", "ID", "Name",
};
}  // namespace

int32_t small_vocab_eos() { return 256 + static_cast<int32_t>(std::size(kWords)) + 2; }

std::shared_ptr<const Vocabulary> small_vocab() {
  static std::shared_ptr<const Vocabulary> v = [] {
    std::vector<Vocabulary::Token> toks;
    for (int b = 0; b < 256; ++b) toks.push_back({std::string(1, static_cast<char>(b)), false});
    for (const char* w : kWords) toks.push_back({w, false});
    toks.push_back({"<|special|>", true});
    toks.push_back({"{", true});  // a special token whose text looks like grammar text
    toks.push_back({"<|eot|>", true});
    return Vocabulary::create(std::move(toks), {small_vocab_eos()}, small_vocab_eos() + 40).value();
  }();
  return v;
}

std::shared_ptr<const CompiledGrammar> compile_or_die(const Grammar& g, std::shared_ptr<const Vocabulary> vocab) {
  auto c = CompiledGrammar::compile(g, vocab ? vocab : byte_vocab());
  if (!c.ok()) ADD_FAILURE() << c.status().to_string();
  return c.ok() ? c.value() : nullptr;
}

Grammar gbnf_or_die(const std::string& text) {
  auto g = parse_gbnf(text);
  if (!g.ok()) {
    ADD_FAILURE() << g.status().to_string() << "\n" << text;
    return Grammar();
  }
  return g.value();
}

bool matches(const std::shared_ptr<const CompiledGrammar>& g, std::string_view text) {
  if (!g) return false;
  Matcher m(g);
  return m.accept_bytes(text) && m.can_end();
}

bool gbnf_matches(const std::string& grammar, std::string_view text) {
  Grammar g = gbnf_or_die(grammar);
  if (g.empty()) return false;
  return matches(compile_or_die(g), text);
}

namespace {

// The brute-force mask: token t is allowed iff accepting it succeeds (then undone).
std::vector<uint32_t> brute_mask(Matcher& m, const Vocabulary& v) {
  std::vector<uint32_t> mask(v.mask_words(), 0);
  for (int32_t t = 0; t < v.mask_size(); ++t) {
    if (m.accept_token(t)) {
      mask[t >> 5] |= 1u << (t & 31);
      EXPECT_TRUE(m.rollback(1));
    }
  }
  return mask;
}

std::vector<int32_t> allowed(const std::vector<uint32_t>& mask, int32_t n) {
  std::vector<int32_t> out;
  for (int32_t t = 0; t < n; ++t) {
    if ((mask[t >> 5] >> (t & 31)) & 1) out.push_back(t);
  }
  return out;
}

std::string describe(const Vocabulary& v, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + (id < v.size() ? "'" + v.token_bytes(id) + "' " : " ");
  return s;
}

}  // namespace

std::vector<std::string> check_masks_on_walks(const std::shared_ptr<const CompiledGrammar>& g, uint32_t seed,
                                              int walks, int max_steps, WalkStats* stats) {
  std::vector<std::string> out;
  if (!g) return out;
  const Vocabulary& v = g->vocabulary();
  std::mt19937 rng(seed);
  for (int w = 0; w < walks; ++w) {
    Matcher m(g);
    std::string text;
    for (int step = 0; step < max_steps; ++step) {
      std::vector<uint32_t> mask(v.mask_words(), 0);
      m.fill_next_token_bitmask(mask.data());
      std::vector<uint32_t> brute = brute_mask(m, v);
      if (stats) ++stats->states;
      if (mask != brute) {
        std::vector<int32_t> a = allowed(mask, v.mask_size()), b = allowed(brute, v.mask_size());
        std::vector<int32_t> extra, missing;
        std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(extra));
        std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(missing));
        ADD_FAILURE() << "mask differs after '" << text << "': extra " << describe(v, extra) << " missing "
                      << describe(v, missing);
        return out;
      }
      std::vector<int32_t> ok = allowed(mask, v.mask_size());
      if (ok.empty()) break;
      int32_t t = ok[std::uniform_int_distribution<size_t>(0, ok.size() - 1)(rng)];
      EXPECT_TRUE(m.accept_token(t));
      if (m.is_terminated()) {
        out.push_back(text);
        if (stats) ++stats->finished;
        break;
      }
      text += v.token_bytes(t);
    }
  }
  return out;
}

std::optional<std::string> random_sentence(const std::shared_ptr<const CompiledGrammar>& g, std::mt19937& rng,
                                           int max_steps) {
  const Vocabulary& v = g->vocabulary();
  Matcher m(g);
  std::string text;
  std::vector<uint32_t> mask(v.mask_words());
  for (int step = 0; step < max_steps; ++step) {
    if (!m.fill_next_token_bitmask(mask.data())) return std::nullopt;
    std::vector<int32_t> ok = allowed(mask, v.mask_size());
    // Past a third of the budget, prefer what closes: eos, quotes, brackets.
    std::vector<int32_t> closing;
    if (step > max_steps / 3 && std::uniform_int_distribution<int>(0, 9)(rng) < 8) {
      for (int32_t t : ok) {
        if (t >= v.size() || v.token_bytes(t) == "\"" || v.token_bytes(t) == "}" || v.token_bytes(t) == "]") {
          closing.push_back(t);
        }
      }
    }
    const std::vector<int32_t>& pick = closing.empty() ? ok : closing;
    int32_t t = pick[std::uniform_int_distribution<size_t>(0, pick.size() - 1)(rng)];
    if (!m.accept_token(t)) {
      ADD_FAILURE() << "a token of the mask was refused after '" << text << "'";
      return std::nullopt;
    }
    if (m.is_terminated()) return text;
    text += v.token_bytes(t);
  }
  return std::nullopt;
}

std::string shared_dir() {
  const char* env = std::getenv("TOKAMAK_SHARED_DIR");
  return env ? env : TOKAMAK_SHARED_DIR;
}
std::string test_data_dir() { return std::string(TOKAMAK_SOURCE_DIR) + "/tests/grammar/data"; }

}  // namespace tk::grammar::testing
