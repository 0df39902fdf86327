// Causal prompt attention for bf16 on AVX-512 BF16: the prefill attention of codeloop's CPU path.
//
// torch's CPU flash attention runs bf16 through float GEMMs (~115 GFLOP/s on a Zen 4 core pair); VDPBF16PS does
// 32 bf16 multiply-adds per instruction into float lanes, twice float FMA's rate. One pass per group of 4 query
// rows (flattened (position, head of the KV head's group) rows, so GQA needs no K/V repeat) over blocks of 64
// keys: scores in registers, the online softmax in float (exp2 with the scale's log2(e) folded in), the
// probabilities rounded to bf16 for the P.V products (as torch's bf16 flash attention), output divided by the
// row sum at the end. K is packed per KV head as [block of 64 keys][pair of dims][64 keys][2], V as
// [pair of keys][dim][2]: VDPBF16PS's pair layout. Query i of n attends to keys 0 .. L - n + i (a prompt
// chunk after L - n cached tokens sees all of them). Rows are independent: a row's result does not depend on
// what else is in the call.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

// Built into the same library as the VNNI kernels, on CPUs that may lack AVX-512 BF16: only this file's
// functions carry the instruction set; Python calls them where the CPU has it. (scripts/emulated_isa.py defines
// it empty: its portable stand-ins for the instructions must not be compiled for the real ones.)
#ifndef CL_BF16
#define CL_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

namespace {

constexpr int kRows = 4;   // query rows per pass
constexpr int kKeys = 64;  // keys per block: 4 vectors of 16
constexpr float kLog2e = 1.4426950408889634f;

CL_BF16 inline __m512 exp2_ps(__m512 x) {  // 2^x, ~1e-7 relative; x <= -200 gives exactly 0
  x = _mm512_max_ps(x, _mm512_set1_ps(-200.f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);  // [-0.5, 0.5]
  __m512 p = _mm512_set1_ps(1.5403530e-4f);  // Taylor series of 2^f to degree 6
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

CL_BF16 inline __m512 bcast_pair(const void* p) {  // two bf16 broadcast to all 16 lanes
  uint32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(v)));
}

CL_BF16 inline __m512 dot(__m512 acc, __m512 a, __m512 b) {
  return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

struct Shape {
  int64_t n, L, H, KV, d, group, nkb;  // queries, keys, heads, KV heads, head dim, heads per KV head, key blocks
  int64_t qs0, qs1, ks0, ks1, vs0, vs1, os0, os1;  // strides (elements) of q, k, v, out: token, head
};

// Pack the keys and values of KV head h (pairs of bf16 read as one uint32).
void pack(const Shape& s, const uint16_t* k, const uint16_t* v, int64_t h, uint32_t* kp, uint32_t* vp) {
  const int64_t pairs = s.d / 2, lpad = s.nkb * kKeys;
  uint32_t* kh = kp + h * lpad * pairs;
  uint32_t* vh = vp + h * (lpad / 2) * s.d;
  for (int64_t j = 0; j < lpad; ++j) {  // kh[(j/64) * pairs * 64 + p * 64 + j%64] = K[j, 2p..2p+1]
    uint32_t* dst = kh + (j / kKeys) * pairs * kKeys + j % kKeys;
    if (j < s.L) {
      const uint16_t* row = k + j * s.ks0 + h * s.ks1;
      for (int64_t p = 0; p < pairs; ++p) std::memcpy(dst + p * kKeys, row + 2 * p, 4);
    } else {
      for (int64_t p = 0; p < pairs; ++p) dst[p * kKeys] = 0;
    }
  }
  for (int64_t j2 = 0; j2 < lpad / 2; ++j2) {  // vh[j2 * d + c] = (V[2 j2, c], V[2 j2 + 1, c])
    const int64_t a = 2 * j2, b = a + 1;
    const uint16_t* ra = a < s.L ? v + a * s.vs0 + h * s.vs1 : nullptr;
    const uint16_t* rb = b < s.L ? v + b * s.vs0 + h * s.vs1 : nullptr;
    for (int64_t c = 0; c < s.d; ++c)
      vh[j2 * s.d + c] = (ra ? ra[c] : 0u) | (static_cast<uint32_t>(rb ? rb[c] : 0u) << 16);
  }
}

// out rows += P[4][64] . V block, 16 * C dims at a time starting at dim c0.
template <int C>
CL_BF16 inline void pv(const uint16_t (*pb)[kKeys], const uint32_t* vb, int64_t d, int64_t c0, float* const* o) {
  __m512 acc[kRows][C];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_loadu_ps(o[r] + c0 + 16 * c);
  for (int j2 = 0; j2 < kKeys / 2; ++j2) {
    __m512 vv[C];
    for (int c = 0; c < C; ++c) vv[c] = _mm512_castsi512_ps(_mm512_loadu_si512(vb + j2 * d + c0 + 16 * c));
    for (int r = 0; r < kRows; ++r) {
      const __m512 pr = bcast_pair(&pb[r][2 * j2]);
      for (int c = 0; c < C; ++c) acc[r][c] = dot(acc[r][c], pr, vv[c]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(o[r] + c0 + 16 * c, acc[r][c]);
}

// Four rows of a KV head's (position, head in group) rows, flattened; past the end: repeats of the last row,
// computed and not stored. m: running max (log2 units), l: running sum, o: unnormalized output.
struct Group {
  const uint16_t* qr[kRows];
  int64_t limit[kRows];  // the last key each row sees
  int64_t row0, kmax, kmin;
  float m[kRows], l[kRows];
  alignas(64) float o[kRows][256];
};

void start(const Shape& s, const uint16_t* q, int64_t h, int64_t row0, Group& g) {
  const int64_t last_row = s.n * s.group - 1;
  g.row0 = row0;
  for (int r = 0; r < kRows; ++r) {
    const int64_t row = std::min(row0 + r, last_row), pos = row / s.group, head = h * s.group + row % s.group;
    g.qr[r] = q + pos * s.qs0 + head * s.qs1;
    g.limit[r] = s.L - s.n + pos;
    std::fill(g.o[r], g.o[r] + s.d, 0.f);
    g.m[r] = -std::numeric_limits<float>::infinity();
    g.l[r] = 0.f;
  }
  g.kmax = *std::max_element(g.limit, g.limit + kRows);
  g.kmin = *std::min_element(g.limit, g.limit + kRows);
}

// One block of 64 keys (kblk, vblk: its packed K and V) for the group's rows.
CL_BF16 void step(const Shape& s, Group& g, const uint32_t* kblk, const uint32_t* vblk, int64_t kb, __m512 sc) {
  const int64_t pairs = s.d / 2;
  float* const o[kRows] = {g.o[0], g.o[1], g.o[2], g.o[3]};
  __m512 acc[kRows][4];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    __m512 kv[4];
    for (int c = 0; c < 4; ++c) kv[c] = _mm512_castsi512_ps(_mm512_loadu_si512(kblk + p * kKeys + 16 * c));
    for (int r = 0; r < kRows; ++r) {
      const __m512 qv = bcast_pair(g.qr[r] + 2 * p);
      for (int c = 0; c < 4; ++c) acc[r][c] = dot(acc[r][c], qv, kv[c]);
    }
  }
  const bool edge = (kb + 1) * kKeys - 1 > g.kmin;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  alignas(64) uint16_t pb[kRows][kKeys];
  for (int r = 0; r < kRows; ++r) {
    __m512 mx = neg_inf;
    for (int c = 0; c < 4; ++c) {
      acc[r][c] = _mm512_mul_ps(acc[r][c], sc);
      if (edge) {  // keys past this row's position (and the padding past L) do not count
        const __m512i key = _mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(kb * kKeys + 16 * c)));
        const __mmask16 hidden = _mm512_cmpgt_epi32_mask(key, _mm512_set1_epi32(static_cast<int>(g.limit[r])));
        acc[r][c] = _mm512_mask_mov_ps(acc[r][c], hidden, neg_inf);
      }
      mx = _mm512_max_ps(mx, acc[r][c]);
    }
    const float m_new = std::max(g.m[r], _mm512_reduce_max_ps(mx));  // finite: key 0 is in the first block
    const float alpha = std::exp2(g.m[r] - m_new);
    const __m512 mv = _mm512_set1_ps(m_new);
    __m512 sum = _mm512_setzero_ps();
    for (int c = 0; c < 4; c += 2) {
      const __m512 p0 = exp2_ps(_mm512_sub_ps(acc[r][c], mv)), p1 = exp2_ps(_mm512_sub_ps(acc[r][c + 1], mv));
      sum = _mm512_add_ps(sum, _mm512_add_ps(p0, p1));
      _mm512_storeu_si512(&pb[r][16 * c], (__m512i)_mm512_cvtne2ps_pbh(p1, p0));
    }
    g.l[r] = g.l[r] * alpha + _mm512_reduce_add_ps(sum);
    g.m[r] = m_new;
    if (alpha != 1.f) {
      const __m512 av = _mm512_set1_ps(alpha);
      for (int64_t c = 0; c < s.d; c += 16) _mm512_storeu_ps(o[r] + c, _mm512_mul_ps(_mm512_loadu_ps(o[r] + c), av));
    }
  }
  int64_t c0 = 0;
  for (; c0 + 64 <= s.d; c0 += 64) pv<4>(pb, vblk, s.d, c0, o);
  for (; c0 < s.d; c0 += 32) pv<2>(pb, vblk, s.d, c0, o);
}

CL_BF16 void finish(const Shape& s, const Group& g, int64_t h, uint16_t* out) {
  for (int r = 0; r < kRows && g.row0 + r < s.n * s.group; ++r) {
    const int64_t row = g.row0 + r, pos = row / s.group, head = h * s.group + row % s.group;
    uint16_t* dst = out + pos * s.os0 + head * s.os1;
    const __m512 inv = _mm512_set1_ps(1.f / g.l[r]);
    for (int64_t c = 0; c < s.d; c += 32) {
      const __m512 a = _mm512_mul_ps(_mm512_loadu_ps(g.o[r] + c), inv);
      const __m512 b = _mm512_mul_ps(_mm512_loadu_ps(g.o[r] + c + 16), inv);
      _mm512_storeu_si512(dst + c, (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
  }
}

// Rows row0 .. row0+3 of KV head h over every key block they see. One group at a time: its float output rows
// (4 KB) stay in L1 while K and V stream from L2; sharing each key block among several groups (tried: 4 and 8)
// was 15-30% slower, even 8k keys back, as their outputs then leave L1.
CL_BF16 void group_pass(const Shape& s, const uint16_t* q, const uint32_t* kp, const uint32_t* vp, uint16_t* out,
                        int64_t h, int64_t row0, float scale) {
  const int64_t pairs = s.d / 2, lpad = s.nkb * kKeys;
  Group g;
  start(s, q, h, row0, g);
  const uint32_t* kh = kp + h * lpad * pairs;
  const uint32_t* vh = vp + h * (lpad / 2) * s.d;
  const __m512 sc = _mm512_set1_ps(scale * kLog2e);
  for (int64_t kb = 0; kb * kKeys <= g.kmax; ++kb) step(s, g, kh + kb * pairs * kKeys, vh + kb * (kKeys / 2) * s.d, kb, sc);
  finish(s, g, h, out);
}

// q [n, H, d], k and v [L, KV, d] (bf16, last dim contiguous, L >= n) -> out [n, H, d] bf16.
at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3, "causal_attention: q, k, v must be [tokens, heads, dim]");
  TORCH_CHECK(q.scalar_type() == at::kBFloat16 && k.scalar_type() == at::kBFloat16 && v.scalar_type() == at::kBFloat16,
              "causal_attention: bf16 only");
  TORCH_CHECK(q.stride(2) == 1 && k.stride(2) == 1 && v.stride(2) == 1, "causal_attention: last dim must be contiguous");
  Shape s{q.size(0), k.size(0), q.size(1), k.size(1), q.size(2), 0, 0};
  TORCH_CHECK(v.size(0) == s.L && v.size(1) == s.KV && k.size(2) == s.d && v.size(2) == s.d, "causal_attention: k/v shapes differ");
  TORCH_CHECK(s.d % 32 == 0 && s.d <= 256, "causal_attention: head dim ", s.d, " is not a multiple of 32 up to 256");
  TORCH_CHECK(s.KV > 0 && s.H % s.KV == 0, "causal_attention: ", s.H, " heads over ", s.KV, " KV heads");
  TORCH_CHECK(s.L >= s.n, "causal_attention: fewer keys than queries");
  at::Tensor out = at::empty_like(q, q.options().memory_format(at::MemoryFormat::Contiguous));
  if (s.n == 0) return out;
  s.group = s.H / s.KV;
  s.nkb = (s.L + kKeys - 1) / kKeys;
  s.qs0 = q.stride(0), s.qs1 = q.stride(1), s.ks0 = k.stride(0), s.ks1 = k.stride(1);
  s.vs0 = v.stride(0), s.vs1 = v.stride(1), s.os0 = out.stride(0), s.os1 = out.stride(1);
  const int64_t lpad = s.nkb * kKeys;
  at::Tensor kp = at::empty({s.KV, lpad * s.d / 2}, q.options().dtype(at::kInt));
  at::Tensor vp = at::empty({s.KV, lpad * s.d / 2}, q.options().dtype(at::kInt));
  const auto* qd = reinterpret_cast<const uint16_t*>(q.data_ptr());
  const auto* kd = reinterpret_cast<const uint16_t*>(k.data_ptr());
  const auto* vd = reinterpret_cast<const uint16_t*>(v.data_ptr());
  auto* kpd = reinterpret_cast<uint32_t*>(kp.data_ptr());
  auto* vpd = reinterpret_cast<uint32_t*>(vp.data_ptr());
  auto* od = reinterpret_cast<uint16_t*>(out.data_ptr());
  at::parallel_for(0, s.KV, 1, [&](int64_t b, int64_t e) {
    for (int64_t h = b; h < e; ++h) pack(s, kd, vd, h, kpd, vpd);
  });
  // Items (KV head, group of 4 rows), interleaved first/last so that each thread's contiguous share of the
  // causal triangle costs about the same.
  const int64_t groups = (s.n * s.group + kRows - 1) / kRows, items = groups * s.KV;
  at::parallel_for(0, items, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t u = t % 2 == 0 ? t / 2 : items - 1 - t / 2;
      group_pass(s, qd, kpd, vpd, od, u % s.KV, (u / s.KV) * kRows, static_cast<float>(scale));
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(codeloop, m) { m.def("causal_attention(Tensor q, Tensor k, Tensor v, float scale) -> Tensor"); }
TORCH_LIBRARY_IMPL(codeloop, CPU, m) { m.impl("causal_attention", &causal_attention); }
