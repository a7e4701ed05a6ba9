// Data types and the host-side conversions between the float formats checkpoints use.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/core.h"

namespace tk {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32: case DType::kI32: return 4;
    case DType::kF16: case DType::kBF16: case DType::kI16: return 2;
    case DType::kI64: case DType::kF64: return 8;
    case DType::kU8: case DType::kI8: case DType::kBool: case DType::kF8E4M3: return 1;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    case DType::kI32: return "int32";
    case DType::kI64: return "int64";
    case DType::kU8: return "uint8";
    case DType::kF64: return "float64";
    case DType::kI8: return "int8";
    case DType::kI16: return "int16";
    case DType::kBool: return "bool";
    case DType::kF8E4M3: return "float8_e4m3fn";
  }
  return "?";
}

std::optional<DType> dtype_from_safetensors(std::string_view n) {
  if (n == "F32") return DType::kF32;
  if (n == "F16") return DType::kF16;
  if (n == "BF16") return DType::kBF16;
  if (n == "I32") return DType::kI32;
  if (n == "I64") return DType::kI64;
  if (n == "U8") return DType::kU8;
  if (n == "F64") return DType::kF64;
  if (n == "I8") return DType::kI8;
  if (n == "I16") return DType::kI16;
  if (n == "BOOL") return DType::kBool;
  if (n == "F8_E4M3") return DType::kF8E4M3;
  return std::nullopt;
}

std::optional<DType> dtype_from_torch_name(std::string_view n) {
  if (n.substr(0, 6) == "torch.") n.remove_prefix(6);
  if (n == "float32" || n == "float") return DType::kF32;
  if (n == "float16" || n == "half") return DType::kF16;
  if (n == "bfloat16") return DType::kBF16;
  return std::nullopt;
}

float bf16_to_f32(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_bf16(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) { mant <<= 1; --exp; }
      mant &= 0x3ffu;
      u = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (abs < 0x38800000u) {  // subnormal or zero in half
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    // value = mant24 * 2^(exp-150); a half subnormal is m * 2^-24, so m = mant24 >> (126 - exp).
    uint32_t exp = abs >> 23;
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp;
    uint32_t half_mant = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++half_mant;
    return static_cast<uint16_t>(sign | half_mant);
  }
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((r - 0x38000000u) >> 13));
}

// e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa bits; exponent 0 is subnormal (m * 2^-9);
// S.1111.111 is NaN, so S.1111.110 = 448 is the largest finite value.
float fp8_e4m3_to_f32(uint8_t bits) {
  const int exp = (bits >> 3) & 0xf, mant = bits & 0x7;
  const float sign = (bits & 0x80) ? -1.f : 1.f;
  if (exp == 0xf && mant == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -9);
  return sign * std::ldexp(static_cast<float>(8 + mant), exp - 10);
}

uint8_t f32_to_fp8_e4m3(float value) {
  if (std::isnan(value)) return 0x7f;
  const uint8_t sign = std::signbit(value) ? 0x80 : 0;
  float a = std::fabs(value);
  if (a >= kFp8E4M3Max) return static_cast<uint8_t>(sign | 0x7e);
  // The quantum at a's binade (2^(e-3) for normals, 2^-9 below 2^-6); nearbyint rounds to even
  // under the default rounding mode, and a / quantum is exact in fp32.
  int e = 0;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1): a's binade is 2^(e-1)
  const int quantum_exp = std::max(e - 1, -6) - 3;
  const float q = std::nearbyint(std::ldexp(a, -quantum_exp));  // integer mantissa in the quantum
  const float r = std::ldexp(q, quantum_exp);
  if (r >= kFp8E4M3Max) return static_cast<uint8_t>(sign | 0x7e);
  if (r == 0.f) return sign;
  int re = 0;
  std::frexp(r, &re);
  if (re - 1 < -6) return static_cast<uint8_t>(sign | static_cast<int>(q));  // subnormal: q in [1, 8)
  const int mant = static_cast<int>(std::ldexp(r, -(re - 1) + 3)) - 8;       // r = (8 + mant) * 2^(re-4)
  return static_cast<uint8_t>(sign | ((re - 1 + 7) << 3) | mant);
}

void convert_to_f32(const void* src, DType src_dtype, float* dst, size_t count) {
  switch (src_dtype) {
    case DType::kF32:
      std::memcpy(dst, src, count * 4);
      return;
    case DType::kBF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::kF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::kF8E4M3: {
      const auto* s = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = fp8_e4m3_to_f32(s[i]);
      return;
    }
    default:
      fatal(__FILE__, __LINE__, std::string("convert_to_f32: not a float dtype: ") + dtype_name(src_dtype));
  }
}

}  // namespace tk
