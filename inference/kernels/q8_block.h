// Shared by the integer kernels: activations quantized to int8 per block of 32 channels, as llama.cpp's Q8_0
// (to [-qmax, qmax]: 127, or 63 for the AVX2 int8 GEMM),
// in simd16.h's 16-lane operations (AVX-512 or AVX2).
#pragma once

#include "simd16.h"

#include <cstdint>

namespace codeloop_q8 {

constexpr int kBlock = 32;

struct Block {
  float scale;   // amax / qmax (0 for an all-zero block: q is 0 then)
  int32_t sumq;  // sum of the 32 int8 values
  float sumx;    // sum of the 32 inputs
};

// x[0..31] -> q[0..31] = round_half_even(x * qmax / amax).
template <typename In>
inline Block quantize_block(const In* x, int8_t* q, float qmax = 127.f) {
  using namespace codeloop_simd;
  const F16 v0 = load(x), v1 = load(x + 16);
  const float amax = reduce_max(fmax16(fabs16(v0), fabs16(v1)));
  const F16 inv = fset1(amax > 0.f ? qmax / amax : 0.f);
  const I16 q0 = round_int(fmul(v0, inv)), q1 = round_int(fmul(v1, inv));
  store_int8(q, q0);
  store_int8(q + 16, q1);
  return {amax / qmax, reduce_add(q0) + reduce_add(q1), reduce_add(fadd(v0, v1))};
}

}  // namespace codeloop_q8
