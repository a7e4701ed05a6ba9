// Bitmask kernels of the mask's hot path: or-ing a table in, and building a mask from a byte
// threshold (the repetition tables' "at most `limit` further iterations"), 16 tokens at a time.
#pragma once

#include <cstdint>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tk::grammar {

inline void or_words(uint32_t* dst, const uint32_t* src, int32_t words) {
  for (int32_t i = 0; i < words; ++i) dst[i] |= src[i];
}

inline bool any_bit(const uint32_t* mask, int32_t words) {
  uint32_t acc = 0;
  for (int32_t i = 0; i < words; ++i) acc |= mask[i];
  return acc != 0;
}

// dst |= { t : kmin[t] <= limit } over n tokens.
inline void or_kmin_at_most(uint32_t* dst, const uint8_t* kmin, int32_t n, uint8_t limit) {
  int32_t t = 0;
#if defined(__SSE2__)
  const __m128i lim = _mm_set1_epi8(static_cast<char>(limit));
  for (; t + 32 <= n; t += 32) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kmin + t));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kmin + t + 16));
    // unsigned a <= lim  <=>  min(a, lim) == a
    uint32_t lo = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(a, lim), a)));
    uint32_t hi = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(b, lim), b)));
    dst[t >> 5] |= lo | (hi << 16);
  }
#endif
  for (; t < n; ++t) {
    if (kmin[t] <= limit) dst[t >> 5] |= 1u << (t & 31);
  }
}

}  // namespace tk::grammar
