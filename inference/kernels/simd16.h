// 16 lanes of float or int32: one AVX-512 register, or two AVX2 registers. codeloop's integer kernels are
// written in these operations, so one source serves both instruction sets (-march=native picks the branch).
//
// The integer dot products: AVX-512 VNNI's VPDPBUSD adds, per lane, 4 unsigned weight bytes times 4 signed
// activation bytes. AVX2 has no such instruction: VPMADDUBSW multiplies u8 x s8 and adds pairs into int16, and
// VPMADDWD by ones widens those to int32 (as llama.cpp's AVX2 Q8 dot products). VPMADDUBSW saturates at 32767:
// int4 nibbles (0..15) never get there; int8 weights stored as q + 128 (0..255) do against 8-bit activations
// (255 x 127 x 2), so on AVX2 the int8 GEMM's activations are quantized to 7 bits (|x| <= 63, kQ8Max) and the
// stored bytes are multiplied as they are. AVX2 CPUs with AVX-VNNI (Intel's client cores since Alder Lake) take
// its 256-bit VPDPBUSD and 8-bit activations instead.
#pragma once

#include <ATen/ATen.h>
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace codeloop_simd {

// int8 weights are stored as q + 128 (unsigned, VPDPBUSD's / VPMADDUBSW's first operand); dot_q8 adds
// (q + kQ8Bias) . x per lane, and the GEMM takes kQ8Bias * sum(x) off per row.
constexpr int32_t kQ8Bias = 128;

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define CODELOOP_SIMD_AVX512 1

struct F16 {
  __m512 v;
};
struct I16 {
  __m512i v;
};

inline F16 fzero() { return {_mm512_setzero_ps()}; }
inline F16 fset1(float a) { return {_mm512_set1_ps(a)}; }
inline F16 fadd(F16 a, F16 b) { return {_mm512_add_ps(a.v, b.v)}; }
inline F16 fsub(F16 a, F16 b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline F16 fmul(F16 a, F16 b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline F16 fmadd(F16 a, F16 b, F16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline F16 fabs16(F16 a) { return {_mm512_abs_ps(a.v)}; }
inline F16 fmax16(F16 a, F16 b) { return {_mm512_max_ps(a.v, b.v)}; }
inline float reduce_max(F16 a) { return _mm512_reduce_max_ps(a.v); }
inline float reduce_add(F16 a) { return _mm512_reduce_add_ps(a.v); }
inline F16 to_float(I16 a) { return {_mm512_cvtepi32_ps(a.v)}; }
inline I16 round_int(F16 a) { return {_mm512_cvtps_epi32(a.v)}; }  // to nearest even
inline F16 load(const float* p) { return {_mm512_loadu_ps(p)}; }
inline F16 load(const at::BFloat16* p) {
  const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(v, 16))};
}
inline void store(float* p, F16 a) { _mm512_storeu_ps(p, a.v); }
inline void store(at::BFloat16* p, F16 a) {  // round to nearest even, as torch's float -> bf16
  const __m512i bits = _mm512_castps_si512(a.v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
  const __mmask16 nan = _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q);
  const __m512i out = _mm512_mask_blend_epi32(nan, _mm512_srli_epi32(rounded, 16),
                                              _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(out));
}

inline I16 izero() { return {_mm512_setzero_si512()}; }
inline I16 iset1(int32_t a) { return {_mm512_set1_epi32(a)}; }
inline I16 iadd(I16 a, I16 b) { return {_mm512_add_epi32(a.v, b.v)}; }
inline I16 isub(I16 a, I16 b) { return {_mm512_sub_epi32(a.v, b.v)}; }
inline int32_t reduce_add(I16 a) { return _mm512_reduce_add_epi32(a.v); }
inline void store_int8(int8_t* p, I16 a) {  // saturated
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtsepi32_epi8(a.v));
}
inline I16 load_bytes(const uint8_t* p) { return {_mm512_loadu_si512(p)}; }  // 64 bytes: 4 per lane
inline I16 broadcast4(const int8_t* p) {  // 4 activation bytes to every lane
  int32_t v;
  std::memcpy(&v, p, 4);
  return {_mm512_set1_epi32(v)};
}
inline I16 low_nibbles(I16 w) { return {_mm512_and_si512(w.v, _mm512_set1_epi8(0x0F))}; }
inline I16 high_nibbles(I16 w) { return {_mm512_and_si512(_mm512_srli_epi16(w.v, 4), _mm512_set1_epi8(0x0F))}; }

// lo += nibbles wl . xl, hi += wh . xh per lane (4 bytes each). Two accumulators: independent VNNI chains.
inline void dot_u4x2(I16& lo, I16& hi, I16 wl, I16 xl, I16 wh, I16 xh) {
  lo.v = _mm512_dpbusd_epi32(lo.v, wl.v, xl.v);
  hi.v = _mm512_dpbusd_epi32(hi.v, wh.v, xh.v);
}

// dot_q8: weights as stored times activations quantized to [-kQ8Max, kQ8Max], broadcast4'd, through prep_x8.
constexpr int kQ8Max = 127;
using X8 = I16;
inline X8 prep_x8(I16 x) { return x; }
inline I16 dot_q8(I16 acc, const I16& w, const X8& x) { return {_mm512_dpbusd_epi32(acc.v, w.v, x.v)}; }

#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

struct F16 {
  __m256 lo, hi;
};
struct I16 {
  __m256i lo, hi;
};

inline float hsum8(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline float hmax8(__m256 a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
inline __m256 load8(const at::BFloat16* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
inline __m256i bf16_bits(__m256 a) {  // round to nearest even, quiet NaNs, in the low 16 bits of each lane
  const __m256i bits = _mm256_castps_si256(a);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded =
      _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(rounded, quiet, _mm256_castps_si256(_mm256_cmp_ps(a, a, _CMP_UNORD_Q)));
}
inline __m256i madd_u8s8(__m256i w, __m256i x) {  // per lane: 4 u8 x s8 products, summed to int32
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

inline F16 fzero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline F16 fset1(float a) { return {_mm256_set1_ps(a), _mm256_set1_ps(a)}; }
inline F16 fadd(F16 a, F16 b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
inline F16 fsub(F16 a, F16 b) { return {_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }
inline F16 fmul(F16 a, F16 b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
inline F16 fmadd(F16 a, F16 b, F16 c) { return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
inline F16 fabs16(F16 a) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  return {_mm256_andnot_ps(sign, a.lo), _mm256_andnot_ps(sign, a.hi)};
}
inline F16 fmax16(F16 a, F16 b) { return {_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)}; }
inline float reduce_max(F16 a) { return hmax8(_mm256_max_ps(a.lo, a.hi)); }
inline float reduce_add(F16 a) { return hsum8(_mm256_add_ps(a.lo, a.hi)); }
inline F16 to_float(I16 a) { return {_mm256_cvtepi32_ps(a.lo), _mm256_cvtepi32_ps(a.hi)}; }
inline I16 round_int(F16 a) { return {_mm256_cvtps_epi32(a.lo), _mm256_cvtps_epi32(a.hi)}; }
inline F16 load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
inline F16 load(const at::BFloat16* p) { return {load8(p), load8(p + 8)}; }
inline void store(float* p, F16 a) {
  _mm256_storeu_ps(p, a.lo);
  _mm256_storeu_ps(p + 8, a.hi);
}
inline void store(at::BFloat16* p, F16 a) {  // packus interleaves 128-bit halves; the permute puts them back
  const __m256i packed = _mm256_packus_epi32(bf16_bits(a.lo), bf16_bits(a.hi));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_permute4x64_epi64(packed, 0xD8));
}

inline I16 izero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
inline I16 iset1(int32_t a) { return {_mm256_set1_epi32(a), _mm256_set1_epi32(a)}; }
inline I16 iadd(I16 a, I16 b) { return {_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)}; }
inline I16 isub(I16 a, I16 b) { return {_mm256_sub_epi32(a.lo, b.lo), _mm256_sub_epi32(a.hi, b.hi)}; }
inline int32_t reduce_add(I16 a) {
  const __m256i s8 = _mm256_add_epi32(a.lo, a.hi);
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1)));
}
inline void store_int8(int8_t* p, I16 a) {  // saturated, in lane order
  const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a.lo, a.hi), 0xD8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
}
inline I16 load_bytes(const uint8_t* p) {
  return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32))};
}
inline I16 broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  const __m256i b = _mm256_set1_epi32(v);
  return {b, b};
}
inline I16 low_nibbles(I16 w) {
  const __m256i m = _mm256_set1_epi8(0x0F);
  return {_mm256_and_si256(w.lo, m), _mm256_and_si256(w.hi, m)};
}
inline I16 high_nibbles(I16 w) {
  const __m256i m = _mm256_set1_epi8(0x0F);
  return {_mm256_and_si256(_mm256_srli_epi16(w.lo, 4), m), _mm256_and_si256(_mm256_srli_epi16(w.hi, 4), m)};
}

#if defined(__AVXVNNI__)
// AVX-VNNI (Intel's client cores since Alder Lake): VPDPBUSD on 256 bits, the AVX-512 branch's arithmetic.
inline void dot_u4x2(I16& lo, I16& hi, I16 wl, I16 xl, I16 wh, I16 xh) {
  lo.lo = _mm256_dpbusd_avx_epi32(lo.lo, wl.lo, xl.lo);
  lo.hi = _mm256_dpbusd_avx_epi32(lo.hi, wl.hi, xl.hi);
  hi.lo = _mm256_dpbusd_avx_epi32(hi.lo, wh.lo, xh.lo);
  hi.hi = _mm256_dpbusd_avx_epi32(hi.hi, wh.hi, xh.hi);
}
constexpr int kQ8Max = 127;
using X8 = I16;
inline X8 prep_x8(I16 x) { return x; }
inline I16 dot_q8(I16 acc, const I16& w, const X8& x) {
  return {_mm256_dpbusd_avx_epi32(acc.lo, w.lo, x.lo), _mm256_dpbusd_avx_epi32(acc.hi, w.hi, x.hi)};
}
#else
// lo += wl . xl + wh . xh per lane; hi is left alone. Nibble products sum to at most 2 x 2 x 15 x 128 per int16:
// both pairs are added before one widening.
inline void dot_u4x2(I16& lo, I16&, I16 wl, I16 xl, I16 wh, I16 xh) {
  const __m256i one = _mm256_set1_epi16(1);
  lo.lo = _mm256_add_epi32(lo.lo, _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(wl.lo, xl.lo),
                                                                     _mm256_maddubs_epi16(wh.lo, xh.lo)), one));
  lo.hi = _mm256_add_epi32(lo.hi, _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(wl.hi, xl.hi),
                                                                     _mm256_maddubs_epi16(wh.hi, xh.hi)), one));
}

// int8 weights as stored (q + 128) times activations quantized to 7 bits (|x| <= 63): VPMADDUBSW's int16 pair
// sums stay within 2 x 255 x 63 = 32130, with no sign or magnitude work per product. (8-bit activations needed
// a VPSIGNB per product and |x| beside each broadcast: this is ~17% faster on a Zen 3, for a KL from float of
// 0.0021 nats per token on code against 0.0013; docs/BENCHMARKS.md.) The +128 comes off once per row, as on VNNI.
constexpr int kQ8Max = 63;
using X8 = __m256i;
inline X8 prep_x8(I16 x) { return x.lo; }  // broadcast4: x.lo == x.hi
inline I16 dot_q8(I16 acc, const I16& w, const X8& x) {
  return {_mm256_add_epi32(acc.lo, madd_u8s8(w.lo, x)), _mm256_add_epi32(acc.hi, madd_u8s8(w.hi, x))};
}

#endif  // __AVXVNNI__

#endif

}  // namespace codeloop_simd
