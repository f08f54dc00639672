// Loads and stores between the storage type and the accumulation type, written so the
// compiler vectorises them inside `omp simd` loops.
//
// c10::Half / c10::BFloat16 convert one element at a time through out-of-line or branchy
// code, which keeps the loops of loops.h scalar for 16-bit inputs (several times slower than
// float). The conversions below are branch-free bit manipulation (selects only), round to
// nearest even like c10, and map NaN to a quiet NaN.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <c10/util/bit_cast.h>

#include <cstdint>

namespace fastot::cpu {

#if defined(__GNUC__) || defined(__clang__)
#define FASTOT_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FASTOT_ALWAYS_INLINE inline
#endif

template <typename T>
FASTOT_ALWAYS_INLINE T load_acc(T v) {
  return v;  // float, double: already the accumulation type
}

FASTOT_ALWAYS_INLINE float load_acc(c10::BFloat16 v) {
  return c10::bit_cast<float>(static_cast<uint32_t>(v.x) << 16);
}

FASTOT_ALWAYS_INLINE float load_acc(c10::Half v) {
  // Shift exponent and mantissa into float position and rebias the exponent; subnormals are
  // renormalised by a float subtraction, infinities and NaNs get the maximal exponent.
  const uint32_t h = v.x;
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t bits = (h & 0x7fffu) << 13;
  const uint32_t exp = bits & 0x0f800000u;
  bits += (127u - 15u) << 23;
  const uint32_t inf_nan = bits + ((128u - 16u) << 23);
  const float sub = c10::bit_cast<float>(bits + (1u << 23)) - c10::bit_cast<float>(113u << 23);
  bits = exp == 0x0f800000u ? inf_nan : bits;
  bits = exp == 0 ? c10::bit_cast<uint32_t>(sub) : bits;
  return c10::bit_cast<float>(bits | sign);
}

template <typename T, typename A>
FASTOT_ALWAYS_INLINE T store_as(A v) {
  return static_cast<T>(v);
}

template <>
FASTOT_ALWAYS_INLINE c10::BFloat16 store_as<c10::BFloat16, float>(float v) {
  const uint32_t u = c10::bit_cast<uint32_t>(v);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint16_t bits = static_cast<uint16_t>(v != v ? 0x7fc0u : rounded);
  return c10::BFloat16(bits, c10::BFloat16::from_bits());
}

template <>
FASTOT_ALWAYS_INLINE c10::Half store_as<c10::Half, float>(float v) {
  const uint32_t u = c10::bit_cast<uint32_t>(v);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  // |v| >= 65520 rounds to infinity; NaN stays NaN.
  const uint32_t big = a > 0x7f800000u ? 0x7e00u : 0x7c00u;
  // Subnormal results: adding 0.5f aligns the mantissa so the FPU rounds (to nearest even).
  const uint32_t sub = c10::bit_cast<uint32_t>(c10::bit_cast<float>(a) + 0.5f) - 0x3f000000u;
  // Normal results: rebias the exponent and round to nearest even on bit 13.
  const uint32_t normal = (a + ((15u - 127u) << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
  uint32_t h = a < 0x38800000u ? sub : normal;
  h = a >= 0x47800000u ? big : h;
  return c10::Half(static_cast<uint16_t>(h | sign), c10::Half::from_bits());
}

}  // namespace fastot::cpu
