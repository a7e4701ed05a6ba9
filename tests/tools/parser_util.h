// Feeding parsers whole and in pieces, for the tool and reasoning parser tests.
#pragma once

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tools/tools.h"

namespace tk::tools::test {

using Factory = std::function<std::unique_ptr<TextParser>()>;

struct Parsed {
  Accumulated result;
  std::vector<OutputDelta> deltas;
  bool malformed = false;
};

// Feeds `text` cut at `cuts` (sorted offsets), then finishes.
inline Parsed run_pieces(const Factory& make, const std::string& text, const std::vector<size_t>& cuts) {
  auto p = make();
  Parsed out;
  size_t at = 0;
  auto take = [&](OutputDelta& d) {
    if (!d.empty()) out.result.add(d), out.deltas.push_back(d);
    d = {};
  };
  OutputDelta d;
  for (size_t cut : cuts) {
    p->feed(std::string_view(text).substr(at, cut - at), d);
    take(d);
    at = cut;
  }
  p->feed(std::string_view(text).substr(at), d);
  take(d);
  p->finish(d);
  take(d);
  out.malformed = p->malformed();
  return out;
}

inline Parsed run_whole(const Factory& make, const std::string& text) { return run_pieces(make, text, {}); }

inline Parsed run_chars(const Factory& make, const std::string& text) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < text.size(); ++i) cuts.push_back(i);
  return run_pieces(make, text, cuts);
}

inline std::vector<size_t> random_cuts(std::mt19937& rng, size_t size) {
  std::vector<size_t> cuts;
  if (size < 2) return cuts;
  std::uniform_int_distribution<size_t> len(1, 12);
  for (size_t at = len(rng); at < size; at += len(rng)) cuts.push_back(at);
  return cuts;
}

}  // namespace tk::tools::test
