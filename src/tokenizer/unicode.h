// UTF-8 helpers shared by the tokenizer stages: decoding, Rust's from_utf8_lossy (which decoders
// must reproduce byte for byte), the GPT-2 byte<->unicode table and the few character classes
// (Rust's char::is_whitespace / is_alphanumeric) that added-token matching relies on.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/core.h"

namespace tk::tokenizer_detail {

bool is_valid_utf8(std::string_view s);

// Length of the UTF-8 sequence that starts with `lead` (1 for bytes that cannot start one).
inline int utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Decodes the code point at s[i] of a valid UTF-8 string and advances i past it.
char32_t next_code_point(std::string_view s, size_t& i);
// Decodes the last code point of a valid, non-empty UTF-8 string.
char32_t last_code_point(std::string_view s, size_t* start = nullptr);
using ::tk::append_utf8;  // core

// Rust's String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);
// True when `s` ends in the middle of a UTF-8 sequence or with U+FFFD.
bool ends_with_replacement_char(std::string_view s);

// GPT-2's bytes_to_unicode(): the UTF-8 text of the code point standing for each byte.
const std::array<std::string, 256>& byte_to_unicode();
// The inverse: the byte a code point stands for, or -1.
int unicode_to_byte(char32_t cp);

bool is_rust_whitespace(char32_t cp);
bool is_rust_alphanumeric(char32_t cp);

}  // namespace tk::tokenizer_detail
