// Normalizers: the text rewrites a tokenizer.json applies to each piece of input between added
// tokens (Unicode normal forms through utf8proc, Prepend, Replace, Strip, Lowercase, Sequence).
#include <utf8proc.h>

#include <cstdlib>

#include "pipeline.h"
#include "pcre2_regex.h"
#include "unicode.h"

namespace tk::tokenizer_detail {
namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(utf8proc_option_t options) : options_(options) {}
  Status normalize(std::string& text) const override {
    if (text.empty()) return Status::ok_status();
    // ASCII is invariant under every normal form: skip the library call for it.
    bool ascii = true;
    for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii) return Status::ok_status();
    utf8proc_uint8_t* result = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                static_cast<utf8proc_ssize_t>(text.size()), &result,
                                static_cast<utf8proc_option_t>(options_ | UTF8PROC_STABLE));
    if (n < 0) return invalid_argument(std::string("unicode normalization failed: ") + utf8proc_errmsg(n));
    text.assign(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
    std::free(result);
    return Status::ok_status();
  }

 private:
  utf8proc_option_t options_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  Status normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      const char32_t cp = next_code_point(text, i);
      append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
    text = std::move(out);
    return Status::ok_status();
  }
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  Status normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);  // HF leaves empty pieces empty
    return Status::ok_status();
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::shared_ptr<const Regex> regex, std::string content)
      : regex_(std::move(regex)), content_(std::move(content)) {}
  Status normalize(std::string& text) const override {
    std::vector<Span> spans;
    TK_RETURN_IF_ERROR(regex_->find_all(text, spans));
    if (spans.empty()) return Status::ok_status();
    std::string out;
    size_t prev = 0;
    for (const Span& s : spans) {
      out.append(text, prev, s.begin - prev);
      out += content_;
      prev = s.end;
    }
    out.append(text, prev, std::string::npos);
    text = std::move(out);
    return Status::ok_status();
  }

 private:
  std::shared_ptr<const Regex> regex_;
  std::string content_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  Status normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    while (left_ && begin < end) {
      size_t next = begin;
      if (!is_rust_whitespace(next_code_point(text, next))) break;
      begin = next;
    }
    while (right_ && end > begin) {
      size_t start = 0;
      if (!is_rust_whitespace(last_code_point(std::string_view(text).substr(0, end), &start))) break;
      end = start;
    }
    text = text.substr(begin, end - begin);
    return Status::ok_status();
  }

 private:
  bool left_, right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  Status normalize(std::string& text) const override {
    for (const auto& p : parts_) TK_RETURN_IF_ERROR(p->normalize(text));
    return Status::ok_status();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

// {"String": s} or {"Regex": r}, as Replace normalizers/decoders and Split pre-tokenizers write it.
Result<std::shared_ptr<const Regex>> compile_pattern(const Json& pattern) {
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    return Regex::compile(pattern["String"].get<std::string>(), /*literal=*/true);
  }
  if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
    return Regex::compile(pattern["Regex"].get<std::string>(), /*literal=*/false);
  }
  return invalid_argument("pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

Result<std::unique_ptr<Normalizer>> make_normalizer(const Json& j) {
  const std::string type = json_type(j);
  if (type == "NFC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_COMPOSE));
  if (type == "NFD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_DECOMPOSE));
  if (type == "NFKC") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNormalizer(static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_COMPAT)));
  }
  if (type == "NFKD") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNormalizer(static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT)));
  }
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(new LowercaseNormalizer());
  if (type == "Prepend") return std::unique_ptr<Normalizer>(new PrependNormalizer(json_string(j, "prepend", "")));
  if (type == "Strip") {
    return std::unique_ptr<Normalizer>(
        new StripNormalizer(json_bool(j, "strip_left", true), json_bool(j, "strip_right", true)));
  }
  if (type == "Replace") {
    if (!j.contains("pattern")) return invalid_argument("Replace normalizer without a pattern");
    TK_ASSIGN_OR_RETURN(auto regex, compile_pattern(j["pattern"]));
    return std::unique_ptr<Normalizer>(new ReplaceNormalizer(std::move(regex), json_string(j, "content", "")));
  }
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
      return invalid_argument("Sequence normalizer without a 'normalizers' list");
    }
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const Json& part : j["normalizers"]) {
      TK_ASSIGN_OR_RETURN(auto n, make_normalizer(part));
      parts.push_back(std::move(n));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(parts)));
  }
  return unsupported("normalizer type '" + type + "' is not supported");
}

}  // namespace tk::tokenizer_detail
