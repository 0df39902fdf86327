// Shared by the VNNI kernels: 16-lane loads of float/bf16, the activation broadcast, and activations quantized
// to int8 per block of 32 channels, as llama.cpp's Q8_0.
#pragma once

#include <ATen/ATen.h>
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace codeloop_q8 {

constexpr int kBlock = 32;

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const at::BFloat16* p) {
  const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

// 4 int8 activations broadcast to all 16 lanes: VPDPBUSD's second operand.
inline __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

struct Block {
  float scale;   // amax / 127 (0 for an all-zero block: q is 0 then)
  int32_t sumq;  // sum of the 32 int8 values
  float sumx;    // sum of the 32 inputs
};

// x[0..31] -> q[0..31] = round_half_even(x * 127 / amax), saturated to int8.
template <typename In>
inline Block quantize_block(const In* x, int8_t* q) {
  const __m512 v0 = load16(x), v1 = load16(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const __m512 inv = _mm512_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
  const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, inv));  // round to nearest even
  const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, inv));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtsepi32_epi8(q1));
  return {amax / 127.f, _mm512_reduce_add_epi32(q0) + _mm512_reduce_add_epi32(q1),
          _mm512_reduce_add_ps(_mm512_add_ps(v0, v1))};
}

}  // namespace codeloop_q8
