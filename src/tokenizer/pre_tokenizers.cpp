// Pre-tokenizers: cut each normalized piece into the words the model sees (Split by regex with
// HF's five delimiter behaviours, ByteLevel, Metaspace, Sequence).
#include <algorithm>
#include <cstring>

#include "pipeline.h"
#include "pcre2_regex.h"
#include "unicode.h"

namespace tk::tokenizer_detail {
namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Piece {
  Span span;
  bool is_match;
};

// HF's Pattern::find_matches: the whole text covered by alternating non-match / match pieces.
std::vector<Piece> cover_with_matches(size_t size, const std::vector<Span>& matches, bool invert) {
  std::vector<Piece> pieces;
  if (size == 0) return {{{0, 0}, invert}};
  size_t prev = 0;
  for (const Span& m : matches) {
    if (prev != m.begin) pieces.push_back({{prev, m.begin}, invert});
    pieces.push_back({m, !invert});
    prev = m.end;
  }
  if (prev != size) pieces.push_back({{prev, size}, invert});
  return pieces;
}

// Merges a match into its neighbour (the one before, or after when `backwards`), or, for
// Contiguous, runs of pieces with the same flag. Mirrors SplitDelimiterBehavior in HF.
std::vector<Span> merge_pieces(std::vector<Piece> pieces, Behavior behavior) {
  std::vector<Span> acc;
  const bool backwards = behavior == Behavior::kMergedWithNext;
  if (backwards) std::reverse(pieces.begin(), pieces.end());
  bool previous_match = false;
  for (const Piece& p : pieces) {
    const bool merge = behavior == Behavior::kContiguous ? p.is_match == previous_match
                                                         : p.is_match && !previous_match;
    if (merge && !acc.empty()) {
      if (backwards) acc.back().begin = p.span.begin; else acc.back().end = p.span.end;
    } else {
      acc.push_back(p.span);
    }
    previous_match = p.is_match;
  }
  if (backwards) std::reverse(acc.begin(), acc.end());
  return acc;
}

// The spans HF's NormalizedString::split keeps for `text` (empty ones included).
Status split_spans(const Regex& regex, Behavior behavior, bool invert, std::string_view text, std::vector<Span>& spans) {
  thread_local std::vector<Span> matches;
  matches.clear();
  spans.clear();
  TK_RETURN_IF_ERROR(regex.find_all(text, matches));
  if (behavior == Behavior::kIsolated && !invert) {  // the hot path: no piece list needed
    size_t prev = 0;
    for (const Span& m : matches) {
      if (prev != m.begin) spans.push_back({prev, m.begin});
      spans.push_back(m);
      prev = m.end;
    }
    if (prev != text.size()) spans.push_back({prev, text.size()});
    return Status::ok_status();
  }
  std::vector<Piece> pieces = cover_with_matches(text.size(), matches, invert);
  if (behavior == Behavior::kRemoved) {
    for (const Piece& p : pieces) if (!p.is_match) spans.push_back(p.span);
  } else if (behavior == Behavior::kIsolated) {
    for (const Piece& p : pieces) spans.push_back(p.span);
  } else {
    spans = merge_pieces(std::move(pieces), behavior);
  }
  return Status::ok_status();
}

Status split_on(const Regex& regex, Behavior behavior, bool invert, std::string_view text, bool at_origin,
                SplitList& out) {
  thread_local std::vector<Span> spans;
  TK_RETURN_IF_ERROR(split_spans(regex, behavior, invert, text, spans));
  for (const Span& s : spans) {
    if (s.end == s.begin) continue;  // HF drops empty splits
    out.add(text.substr(s.begin, s.end - s.begin), at_origin && s.begin == 0);
  }
  return Status::ok_status();
}

Result<Behavior> parse_behavior(const std::string& name) {
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  return invalid_argument("unknown split behavior '" + name + "'");
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::shared_ptr<const Regex> regex, Behavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  Status split(std::string_view text, bool at_origin, SplitList& out) const override {
    return split_on(*regex_, behavior_, invert_, text, at_origin, out);
  }

 private:
  std::shared_ptr<const Regex> regex_;
  Behavior behavior_;
  bool invert_;
};

constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Maps every byte to its printable stand-in, after the optional GPT-2 regex split.
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::shared_ptr<const Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  Status split(std::string_view text, bool at_origin, SplitList& out) const override {
    std::string prefixed;
    if (add_prefix_space_ && (text.empty() || text[0] != ' ')) {
      prefixed.reserve(text.size() + 1);
      prefixed += ' ';
      prefixed.append(text);
      text = prefixed;
    }
    if (!regex_) {
      add_mapped(text, at_origin, out);
      return Status::ok_status();
    }
    thread_local std::vector<Span> spans;
    TK_RETURN_IF_ERROR(split_spans(*regex_, Behavior::kIsolated, false, text, spans));
    for (const Span& s : spans) {
      if (s.end > s.begin) add_mapped(text.substr(s.begin, s.end - s.begin), at_origin && s.begin == 0, out);
    }
    return Status::ok_status();
  }

 private:
  // Appends `text` with every byte replaced by its printable stand-in (1 or 2 UTF-8 bytes).
  static void add_mapped(std::string_view text, bool at_origin, SplitList& out) {
    const auto& table = byte_to_unicode();
    const size_t begin = out.buffer.size();
    out.buffer.resize(begin + 2 * text.size());
    char* dst = out.buffer.data() + begin;
    for (char c : text) {
      const std::string& m = table[static_cast<unsigned char>(c)];
      dst[0] = m[0];
      if (m.size() == 2) dst[1] = m[1];
      dst += m.size();
    }
    const size_t size = static_cast<size_t>(dst - (out.buffer.data() + begin));
    out.buffer.resize(begin + size);
    out.refs.push_back({static_cast<uint32_t>(begin), static_cast<uint32_t>(size), -1, at_origin});
  }

 private:
  bool add_prefix_space_;
  std::shared_ptr<const Regex> regex_;  // null when use_regex is false
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, std::shared_ptr<const Regex> splitter)
      : replacement_(std::move(replacement)), scheme_(scheme), splitter_(std::move(splitter)) {}
  Status split(std::string_view in, bool at_origin, SplitList& out) const override {
    std::string text;
    text.reserve(in.size() + replacement_.size());
    for (char c : in) {
      if (c == ' ') text += replacement_; else text += c;
    }
    const bool starts = text.compare(0, replacement_.size(), replacement_) == 0;
    if (!starts && (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && at_origin))) {
      text.insert(0, replacement_);
    }
    if (!splitter_) {
      if (!text.empty()) out.add(text, at_origin);
      return Status::ok_status();
    }
    return split_on(*splitter_, Behavior::kMergedWithNext, false, text, at_origin, out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  std::shared_ptr<const Regex> splitter_;  // null when split is false
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  Status pre_tokenize(SplitList& splits) const override {
    for (const auto& p : parts_) TK_RETURN_IF_ERROR(p->pre_tokenize(splits));
    return Status::ok_status();
  }
  Status split(std::string_view text, bool at_origin, SplitList& out) const override {
    SplitList splits;
    splits.add(text, at_origin);
    TK_RETURN_IF_ERROR(pre_tokenize(splits));
    for (const SplitRef& r : splits.refs) out.add(splits.text(r), r.at_origin, r.token_id);
    return Status::ok_status();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

Result<std::unique_ptr<PreTokenizer>> make_metaspace(const Json& j) {
  const std::string replacement = json_string(j, "replacement", "\xE2\x96\x81");
  PrependScheme scheme = json_bool(j, "add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
  if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
    const std::string s = j["prepend_scheme"].get<std::string>();
    if (s == "always") scheme = PrependScheme::kAlways;
    else if (s == "first") scheme = PrependScheme::kFirst;
    else if (s == "never") scheme = PrependScheme::kNever;
    else return invalid_argument("Metaspace: unknown prepend_scheme '" + s + "'");
  }
  std::shared_ptr<const Regex> splitter;
  if (json_bool(j, "split", true)) {
    TK_ASSIGN_OR_RETURN(splitter, Regex::compile(replacement, /*literal=*/true));
  }
  return std::unique_ptr<PreTokenizer>(new MetaspacePreTokenizer(replacement, scheme, std::move(splitter)));
}

}  // namespace

Status PreTokenizer::pre_tokenize(SplitList& splits) const {
  SplitList out;
  out.buffer.reserve(splits.buffer.size() * 2 + 16);
  out.refs.reserve(splits.buffer.size() / 3 + 4);
  for (const SplitRef& r : splits.refs) {
    if (r.token_id >= 0) out.add(splits.text(r), r.at_origin, r.token_id);
    else TK_RETURN_IF_ERROR(split(splits.text(r), r.at_origin, out));
  }
  std::swap(splits, out);
  return Status::ok_status();
}

Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const Json& j) {
  const std::string type = json_type(j);
  if (type == "Split") {
    if (!j.contains("pattern")) return invalid_argument("Split pre-tokenizer without a pattern");
    TK_ASSIGN_OR_RETURN(auto regex, compile_pattern(j["pattern"]));
    TK_ASSIGN_OR_RETURN(Behavior behavior, parse_behavior(json_string(j, "behavior", "Isolated")));
    return std::unique_ptr<PreTokenizer>(new SplitPreTokenizer(std::move(regex), behavior, json_bool(j, "invert", false)));
  }
  if (type == "ByteLevel") {
    std::shared_ptr<const Regex> regex;
    if (json_bool(j, "use_regex", true)) {
      TK_ASSIGN_OR_RETURN(regex, Regex::compile(kGpt2Pattern));
    }
    return std::unique_ptr<PreTokenizer>(new ByteLevelPreTokenizer(json_bool(j, "add_prefix_space", true), std::move(regex)));
  }
  if (type == "Metaspace") return make_metaspace(j);
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) {
      return invalid_argument("Sequence pre-tokenizer without a 'pretokenizers' list");
    }
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const Json& part : j["pretokenizers"]) {
      TK_ASSIGN_OR_RETURN(auto p, make_pre_tokenizer(part));
      parts.push_back(std::move(p));
    }
    return std::unique_ptr<PreTokenizer>(new SequencePreTokenizer(std::move(parts)));
  }
  return unsupported("pre-tokenizer type '" + type + "' is not supported");
}

}  // namespace tk::tokenizer_detail
