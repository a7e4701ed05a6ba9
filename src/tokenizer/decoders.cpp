// Decoders: turn token strings back into text the way HF's decode_chain does (ByteLevel,
// Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence). Byte-exact U+FFFD handling matters:
// the streaming detokenizer relies on it to tell a finished character from a partial one.
#include "pipeline.h"
#include "pcre2_regex.h"
#include "unicode.h"

namespace tk::tokenizer_detail {
namespace {

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      // A token with a character outside the byte table (an added token) is kept as raw text.
      const size_t start = bytes.size();
      bool mapped = true;
      for (size_t i = 0; i < t.size() && mapped;) {
        const int b = unicode_to_byte(next_code_point(t, i));
        if (b < 0) mapped = false; else bytes += static_cast<char>(b);
      }
      if (!mapped) {
        bytes.resize(start);
        bytes += t;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k) {
      const std::string& t = tokens[k];
      std::string out;
      for (size_t pos = 0; pos < t.size();) {
        if (!replacement_.empty() && t.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(k == 0 && strip_first_)) out += ' ';
          pos += replacement_.size();
        } else {
          out += t[pos++];
        }
      }
      tokens[k] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;  // prepend_scheme is not "never": the first token loses its replacement
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::shared_ptr<const Regex> regex, std::string content)
      : regex_(std::move(regex)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<Span> spans;
    for (std::string& t : tokens) {
      spans.clear();
      if (!regex_->find_all(t, spans).ok() || spans.empty()) continue;
      std::string out;
      size_t prev = 0;
      for (const Span& s : spans) {
        out.append(t, prev, s.begin - prev);
        out += content_;
        prev = s.end;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::shared_ptr<const Regex> regex_;
  std::string content_;
};

// "<0xAB>" -> 0xAB, or -1.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int value = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = t[k];
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (d < 0) return -1;
    value = value * 16 + d;
  }
  return value;
}

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;  // consecutive byte tokens
    auto flush = [&]() {
      if (pending.empty()) return;
      if (is_valid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      const int b = parse_byte_token(t);
      if (b >= 0) {
        pending += static_cast<char>(b);
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    if (content_.empty()) return;
    const size_t n = content_.size();
    for (std::string& t : tokens) {
      size_t begin = 0, end = t.size();
      for (size_t k = 0; k < start_ && end - begin >= n && t.compare(begin, n, content_) == 0; ++k) begin += n;
      for (size_t k = 0; k < stop_ && end - begin >= n && t.compare(end - n, n, content_) == 0; ++k) end -= n;
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;  // one character
  size_t start_, stop_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

Result<std::unique_ptr<Decoder>> make_metaspace_decoder(const Json& j) {
  bool strip_first = json_bool(j, "add_prefix_space", true);
  if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
    strip_first = j["prepend_scheme"].get<std::string>() != "never";
  }
  return std::unique_ptr<Decoder>(new MetaspaceDecoder(json_string(j, "replacement", "\xE2\x96\x81"), strip_first));
}

size_t json_size(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_number_unsigned() ? j[key].get<size_t>() : 0;
}

}  // namespace

Result<std::unique_ptr<Decoder>> make_decoder(const Json& j) {
  const std::string type = json_type(j);
  if (type == "ByteLevel") return std::unique_ptr<Decoder>(new ByteLevelDecoder());
  if (type == "Metaspace") return make_metaspace_decoder(j);
  if (type == "ByteFallback") return std::unique_ptr<Decoder>(new ByteFallbackDecoder());
  if (type == "Fuse") return std::unique_ptr<Decoder>(new FuseDecoder());
  if (type == "Strip") {
    return std::unique_ptr<Decoder>(new StripDecoder(json_string(j, "content", " "), json_size(j, "start"), json_size(j, "stop")));
  }
  if (type == "Replace") {
    if (!j.contains("pattern")) return invalid_argument("Replace decoder without a pattern");
    TK_ASSIGN_OR_RETURN(auto regex, compile_pattern(j["pattern"]));
    return std::unique_ptr<Decoder>(new ReplaceDecoder(std::move(regex), json_string(j, "content", "")));
  }
  if (type == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array()) return invalid_argument("Sequence decoder without a 'decoders' list");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const Json& part : j["decoders"]) {
      TK_ASSIGN_OR_RETURN(auto d, make_decoder(part));
      parts.push_back(std::move(d));
    }
    return std::unique_ptr<Decoder>(new SequenceDecoder(std::move(parts)));
  }
  return unsupported("decoder type '" + type + "' is not supported");
}

}  // namespace tk::tokenizer_detail
