// Accumulation type and vector memory access shared by the fastot CUDA kernels (their launch
// geometry is in launch.cuh).
#pragma once

#include <ATen/OpMathType.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "reduce.cuh"
#include "row_plan.h"

namespace fastot::cuda {

// Accumulation type: float for half / bfloat16 / float, double for double.
template <typename T>
using acc_t = at::opmath_type<T>;

// ---- vector memory access ------------------------------------------------------------------

// Elements per 16-byte load: 8 half / bfloat16, 4 float, 2 double.
template <typename T>
constexpr int kVec = static_cast<int>(16 / sizeof(T));

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// N consecutive elements from p, which must be aligned to N * sizeof(T).
template <int N, typename T>
__device__ __forceinline__ Pack<T, N> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, N>*>(p);
}

// Integer type of a pack's size: a pack is stored as one integer vector.
template <int Bytes>
struct RawBits;
template <>
struct RawBits<16> {
  using type = uint4;
};
template <>
struct RawBits<8> {
  using type = uint2;
};
template <>
struct RawBits<4> {
  using type = unsigned int;
};
template <>
struct RawBits<2> {
  using type = unsigned short;
};

template <int N, typename T>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, N>& pack) {
  using raw_t = typename RawBits<static_cast<int>(sizeof(Pack<T, N>))>::type;
  static_assert(sizeof(raw_t) == sizeof(Pack<T, N>), "pack size");
  raw_t raw;
  memcpy(&raw, &pack, sizeof(raw));
  // The store intrinsic keeps it one vector instruction where a plain store through a
  // strength-reduced loop pointer is split into scalar stores.
  __stwb(reinterpret_cast<raw_t*>(p), raw);
}

// N consecutive elements from p, converted to the accumulation type.
template <int N, typename T>
__device__ __forceinline__ void load_acc(acc_t<T> (&out)[N], const T* p) {
  const Pack<T, N> pack = load_pack<N>(p);
#pragma unroll
  for (int i = 0; i < N; ++i) out[i] = static_cast<acc_t<T>>(pack.v[i]);
}

template <int N, typename T>
__device__ __forceinline__ void store_acc(T* p, const acc_t<T> (&in)[N]) {
  Pack<T, N> pack;
#pragma unroll
  for (int i = 0; i < N; ++i) pack.v[i] = static_cast<T>(in[i]);
  store_pack<N>(p, pack);
}

inline bool aligned16(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// fn(std::integral_constant<int, N>) with N = kVec<T> when `vectorise`, else N = 1.
template <typename T, typename F>
void with_vec(bool vectorise, const F& fn) {
  if (vectorise) {
    fn(std::integral_constant<int, kVec<T>>{});
  } else {
    fn(std::integral_constant<int, 1>{});
  }
}

}  // namespace fastot::cuda
