// Decode attention over the paged KV cache on AVX2 (and any CPU the library builds for): generated rows, one
// query each, reading K/V where they lie in their blocks.
//
// torch's path gathers each row's blocks into a padded copy, widens bf16 (or dequantizes int8) to the query's
// dtype and runs SDPA with a mask: ~120 us plus the copy per layer for one 300-token row of the 1.5B on a Zen 3
// core pair, ~5 ms of a 41 ms decode step. Here one work item is (row, KV head, part of the row's keys): the
// query heads that share the KV head take their scores against each key (8-lane dot products, reduced 8 heads
// at a time), an exp2 softmax in float, then P.V with 8 heads' accumulators per 8 dims. A row's keys are cut into
// ceil(L / 256) equal parts whose partial sums (max, sum, unnormalized output) are merged in part order: the
// split depends on the row's own length only, so a row gets the same bits alone, batched or as a draft under
// verification, whatever the thread count. Probabilities are rounded to a bf16 / fp16 query's dtype for P.V, as
// torch's flash attention does (the sum stays float). Caches: float32, bf16, fp16, or int8 with fp16 scales per token and
// head (score = scale_k * q.k_q; P.V weights p * scale_v), as kv_cache/quant.py stores them.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t kPart = 256;  // most keys per work item
constexpr int kHeads = 8;       // query heads per register block
constexpr float kLog2e = 1.4426950408889634f;

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const at::BFloat16* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
inline __m256 load8(const at::Half* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256 load8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

inline __m256 exp2_8(__m256 x) {  // 2^x for x <= 0, ~2e-7 relative; x < -126 gives 0
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-126.f), _CMP_LT_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-126.f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);  // [-0.5, 0.5]
  __m256 p = _mm256_set1_ps(1.5403530e-4f);  // Taylor series of 2^f to degree 6
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3333558e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6181291e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5504109e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022651e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// x rounded to Q's precision (nearest even) and widened back: bf16 and fp16 queries round the probabilities
// before P.V, as torch's flash attention does for them.
template <typename Q>
inline __m256 round_like(__m256 x) {
  if constexpr (std::is_same_v<Q, at::BFloat16>) {
    const __m256i bits = _mm256_castps_si256(x);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF)));
    return _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
  } else if constexpr (std::is_same_v<Q, at::Half>) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else {
    return x;
  }
}

inline __m256 hsum8(const __m256* a) {  // lane i = sum of a[i]'s 8 lanes
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

struct Shape {
  int64_t H, KV, d, group, bs;   // heads, KV heads, head dim, heads per KV head, block size
  int64_t tstride;               // stride of tables' rows
  int64_t parts_max;             // parts of the longest row
  float qscale;                  // scale * log2(e): scores in log2 units for exp2
};

template <typename T>
struct Cache {
  const T* k;
  const T* v;
  const at::Half* ks;  // int8 only: scales [blocks, bs, KV]
  const at::Half* vs;
};

inline int64_t parts_of(int64_t L) { return (L + kPart - 1) / kPart; }

// scores[g][i] = q_g . k_i for NG heads (q pre-scaled), keys given by slot
template <int NG, typename T>
void qk(const float* q, const T* const* keys, int64_t n, int64_t d, int64_t npad, float* scores) {
  for (int64_t i = 0; i < n; ++i) {
    __m256 acc[8];
    for (int g = 0; g < 8; ++g) acc[g] = _mm256_setzero_ps();
    const T* k = keys[i];
    for (int64_t x = 0; x < d; x += 8) {
      const __m256 kv = load8(k + x);
#pragma GCC unroll 8
      for (int g = 0; g < NG; ++g) acc[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q + g * d + x), kv, acc[g]);
    }
    float sums[8];
    _mm256_storeu_ps(sums, hsum8(acc));
#pragma GCC unroll 8
    for (int g = 0; g < NG; ++g) scores[g * npad + i] = sums[g];
  }
}

// o[g][x] = sum_i p[g][i] * v_i[x] for NG heads, 8 * DX dims per pass over the keys
template <int NG, int DX, typename T>
void pv(const float* p, const T* const* vals, int64_t n, int64_t d, int64_t npad, float* o) {
  for (int64_t x = 0; x < d; x += 8 * DX) {
    __m256 acc[NG][DX];
    for (int g = 0; g < NG; ++g)
      for (int u = 0; u < DX; ++u) acc[g][u] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; ++i) {
      __m256 vv[DX];
      for (int u = 0; u < DX; ++u) vv[u] = load8(vals[i] + x + 8 * u);
#pragma GCC unroll 8
      for (int g = 0; g < NG; ++g) {
        const __m256 pg = _mm256_broadcast_ss(p + g * npad + i);
        for (int u = 0; u < DX; ++u) acc[g][u] = _mm256_fmadd_ps(pg, vv[u], acc[g][u]);
      }
    }
    for (int g = 0; g < NG; ++g)
      for (int u = 0; u < DX; ++u) _mm256_storeu_ps(o + g * d + x + 8 * u, acc[g][u]);
  }
}

template <typename T>
using BlockFn = void (*)(const float*, const T* const*, int64_t, int64_t, int64_t, float*);
template <typename T>
constexpr BlockFn<T> kQK[9] = {nullptr, qk<1, T>, qk<2, T>, qk<3, T>, qk<4, T>, qk<5, T>, qk<6, T>, qk<7, T>, qk<8, T>};
// 16 dims per pass where the accumulators fit 16 registers (up to 6 heads) and the head dim allows
template <typename T>
constexpr BlockFn<T> kPV16[9] = {nullptr,        pv<1, 2, T>, pv<2, 2, T>, pv<3, 2, T>, pv<4, 2, T>,
                                 pv<5, 2, T>,    pv<6, 2, T>, pv<7, 1, T>, pv<8, 1, T>};
template <typename T>
constexpr BlockFn<T> kPV8[9] = {nullptr,     pv<1, 1, T>, pv<2, 1, T>, pv<3, 1, T>, pv<4, 1, T>,
                                pv<5, 1, T>, pv<6, 1, T>, pv<7, 1, T>, pv<8, 1, T>};

struct Scratch {
  std::vector<float> q, scores, kscale, vscale;
  std::vector<const void*> keys, vals;
};

// One part: the query heads of KV head h over keys [t0, t1) of a row (q: the row's [H, d], unscaled).
// Out: m [G] (max score, log2 units), l [G] (sum of exp2), o [G][d] unnormalized.
template <typename T, typename Q>
void part(const Shape& s, const Cache<T>& c, const int32_t* table, const Q* q, int64_t h, int64_t t0, int64_t t1,
          Scratch& w, float* m, float* l, float* o) {
  const int64_t n = t1 - t0, npad = (n + 7) / 8 * 8, d = s.d, G = s.group;
  w.q.resize(G * d);
  for (int64_t i = 0; i < G * d; ++i) w.q[i] = static_cast<float>(q[h * G * d + i]) * s.qscale;
  w.scores.resize(G * npad);
  w.keys.resize(n), w.vals.resize(n);
  if (c.ks) w.kscale.resize(n), w.vscale.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = t0 + i, slot = (static_cast<int64_t>(table[t / s.bs]) * s.bs + t % s.bs) * s.KV + h;
    w.keys[i] = c.k + slot * d;
    w.vals[i] = c.v + slot * d;
    if (c.ks) w.kscale[i] = static_cast<float>(c.ks[slot]), w.vscale[i] = static_cast<float>(c.vs[slot]);
  }
  const auto* keys = reinterpret_cast<const T* const*>(w.keys.data());
  const auto* vals = reinterpret_cast<const T* const*>(w.vals.data());
  for (int64_t g0 = 0; g0 < G; g0 += 8) {
    const int ng = static_cast<int>(std::min<int64_t>(8, G - g0));
    kQK<T>[ng](w.q.data() + g0 * d, keys, n, d, npad, w.scores.data() + g0 * npad);
  }
  for (int64_t g = 0; g < G; ++g) {  // softmax numerators in place (padding 0), times scale_v for int8 V
    float* sg = w.scores.data() + g * npad;
    if (c.ks)
      for (int64_t i = 0; i < n; ++i) sg[i] *= w.kscale[i];
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, sg[i]);
    for (int64_t i = n; i < npad; ++i) sg[i] = -std::numeric_limits<float>::infinity();
    const __m256 mv = _mm256_set1_ps(mx);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t i = 0; i < npad; i += 8) {
      const __m256 p = exp2_8(_mm256_sub_ps(_mm256_loadu_ps(sg + i), mv));
      sum = _mm256_add_ps(sum, p);
      _mm256_storeu_ps(sg + i, round_like<Q>(p));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    m[g] = mx;
    l[g] = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    if (c.vs)
      for (int64_t i = 0; i < n; ++i) sg[i] *= w.vscale[i];
  }
  for (int64_t g0 = 0; g0 < G; g0 += 8) {
    const int ng = static_cast<int>(std::min<int64_t>(8, G - g0));
    (d % 16 == 0 ? kPV16<T> : kPV8<T>)[ng](w.scores.data() + g0 * npad, vals, n, d, npad, o + g0 * d);
  }
}

// The row's output for KV head h from its parts (m, l, o each, in part order).
template <typename Out>
void merge(const Shape& s, const float* parts, int64_t np, Out* dst, std::vector<float>& acc) {
  const int64_t G = s.group, d = s.d, stride = G * (d + 2);
  acc.resize(d);
  for (int64_t g = 0; g < G; ++g) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < np; ++j) mx = std::max(mx, parts[j * stride + g]);
    float total = 0.f;
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int64_t j = 0; j < np; ++j) {
      const float* pj = parts + j * stride;
      const float wj = np == 1 ? 1.f : std::exp2(pj[g] - mx);
      total += wj * pj[G + g];
      const float* oj = pj + 2 * G + g * d;
      for (int64_t x = 0; x < d; ++x) acc[x] += wj * oj[x];
    }
    const float inv = total > 0.f ? 1.f / total : 0.f;
    for (int64_t x = 0; x < d; ++x) dst[g * d + x] = static_cast<Out>(acc[x] * inv);
  }
}

// Work items are (row, KV head), each doing its parts in order, where they alone fill the threads; else (row,
// KV head, part) with the merge after: the same arithmetic either way, so the same bits.
template <typename T, typename Q>
void run(const Shape& s, const Cache<T>& c, const Q* qd, const int32_t* td, const std::vector<int64_t>& lens,
         int64_t R, Q* od) {
  const int64_t G = s.group, d = s.d, P = s.parts_max, stride = G * (d + 2);
  if (R * s.KV >= at::get_num_threads() || P == 1) {
    at::parallel_for(0, R * s.KV, 1, [&](int64_t b, int64_t e) {
      std::vector<float> parts(P * stride), acc;
      Scratch w;
      for (int64_t rh = b; rh < e; ++rh) {
        const int64_t r = rh / s.KV, h = rh % s.KV, L = lens[r], np = parts_of(L);
        for (int64_t j = 0; j < np; ++j) {
          float* slot = parts.data() + j * stride;
          part<T, Q>(s, c, td + r * s.tstride, qd + r * s.H * d, h, j * L / np, (j + 1) * L / np, w, slot,
                     slot + G, slot + 2 * G);
        }
        merge<Q>(s, parts.data(), np, od + (r * s.H + h * G) * d, acc);
      }
    });
    return;
  }
  std::vector<float> parts(R * s.KV * P * stride);
  at::parallel_for(0, R * s.KV * P, 1, [&](int64_t b, int64_t e) {
    Scratch w;
    for (int64_t it = b; it < e; ++it) {
      const int64_t r = it / (s.KV * P), h = (it / P) % s.KV, j = it % P, L = lens[r], np = parts_of(L);
      if (j >= np) continue;
      float* slot = parts.data() + it * stride;
      part<T, Q>(s, c, td + r * s.tstride, qd + r * s.H * d, h, j * L / np, (j + 1) * L / np, w, slot, slot + G,
                 slot + 2 * G);
    }
  });
  at::parallel_for(0, R * s.KV, 1, [&](int64_t b, int64_t e) {
    std::vector<float> acc;
    for (int64_t rh = b; rh < e; ++rh) {
      const int64_t r = rh / s.KV, h = rh % s.KV;
      merge<Q>(s, parts.data() + rh * P * stride, parts_of(lens[r]), od + (r * s.H + h * G) * d, acc);
    }
  });
}

// q [R, H, d] (float, bf16 or fp16); k, v [blocks, bs, KV, d] (float, bf16, fp16, or int8 with k_scale and
// v_scale [blocks, bs, KV] fp16); tables [R, >= ceil(L/bs)] int32; lens [R]: keys of each row (>= 1).
at::Tensor paged_decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const std::optional<at::Tensor>& k_scale, const std::optional<at::Tensor>& v_scale,
                                  const at::Tensor& tables, const at::Tensor& lens, double scale) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 4 && v.dim() == 4, "paged_decode_attention: q [R, H, d], k/v [blocks, bs, KV, d]");
  TORCH_CHECK(k.sizes() == v.sizes() && k.scalar_type() == v.scalar_type() && k.is_contiguous() && v.is_contiguous(),
              "paged_decode_attention: k and v must be contiguous caches of one shape and dtype");
  Shape s{q.size(1), k.size(2), q.size(2), 0, k.size(1), 0, 0};
  TORCH_CHECK(k.size(3) == s.d && s.d % 8 == 0, "paged_decode_attention: head dim ", s.d, " (a multiple of 8, as the cache's)");
  TORCH_CHECK(s.KV > 0 && s.H % s.KV == 0, "paged_decode_attention: ", s.H, " heads over ", s.KV, " KV heads");
  TORCH_CHECK(tables.dim() == 2 && tables.size(0) == q.size(0) && lens.dim() == 1 && lens.size(0) == q.size(0),
              "paged_decode_attention: tables [R, blocks] and lens [R] for R rows");
  const bool int8 = k.scalar_type() == at::kChar;
  TORCH_CHECK(int8 == (k_scale.has_value() && v_scale.has_value()), "paged_decode_attention: scales go with an int8 cache");
  s.group = s.H / s.KV;
  const at::Tensor tab = tables.to(at::kInt).contiguous();
  s.tstride = tab.size(1);
  std::vector<int64_t> lv(lens.numel());
  if (lens.scalar_type() == at::kInt) {  // the backend's own (no conversion per layer)
    const at::Tensor lc = lens.contiguous();
    std::copy(lc.data_ptr<int32_t>(), lc.data_ptr<int32_t>() + lc.numel(), lv.begin());
  } else {
    const at::Tensor lc = lens.to(at::kLong).contiguous();
    std::copy(lc.data_ptr<int64_t>(), lc.data_ptr<int64_t>() + lc.numel(), lv.begin());
  }
  for (int64_t L : lv) {
    TORCH_CHECK(L >= 1 && (L + s.bs - 1) / s.bs <= s.tstride, "paged_decode_attention: a row's length ", L,
                " does not fit its table of ", s.tstride, " blocks");
    s.parts_max = std::max(s.parts_max, parts_of(L));
  }
  s.qscale = static_cast<float>(scale * kLog2e);
  const at::Tensor qc = q.contiguous();
  at::Tensor out = at::empty({q.size(0), s.H, s.d}, q.options());
  if (q.size(0) == 0) return out;
  at::Tensor ks, vs;
  if (int8) {
    ks = k_scale->to(at::kHalf).contiguous(), vs = v_scale->to(at::kHalf).contiguous();
    TORCH_CHECK(ks.numel() == k.numel() / s.d && vs.numel() == ks.numel(), "paged_decode_attention: scales [blocks, bs, KV]");
  }
  const int64_t R = q.size(0);
  const int32_t* td = tab.data_ptr<int32_t>();
  auto with_cache = [&](auto* tag) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    const Cache<T> c{static_cast<const T*>(k.data_ptr()), static_cast<const T*>(v.data_ptr()),
                     int8 ? ks.data_ptr<at::Half>() : nullptr, int8 ? vs.data_ptr<at::Half>() : nullptr};
    switch (q.scalar_type()) {
      case at::kFloat: return run<T, float>(s, c, qc.data_ptr<float>(), td, lv, R, out.data_ptr<float>());
      case at::kBFloat16:
        return run<T, at::BFloat16>(s, c, qc.data_ptr<at::BFloat16>(), td, lv, R, out.data_ptr<at::BFloat16>());
      case at::kHalf: return run<T, at::Half>(s, c, qc.data_ptr<at::Half>(), td, lv, R, out.data_ptr<at::Half>());
      default: TORCH_CHECK(false, "paged_decode_attention: q must be float32, bf16 or fp16, got ", q.scalar_type());
    }
  };
  switch (k.scalar_type()) {
    case at::kFloat: with_cache(static_cast<const float*>(nullptr)); break;
    case at::kBFloat16: with_cache(static_cast<const at::BFloat16*>(nullptr)); break;
    case at::kHalf: with_cache(static_cast<const at::Half*>(nullptr)); break;
    case at::kChar: with_cache(static_cast<const int8_t*>(nullptr)); break;
    default: TORCH_CHECK(false, "paged_decode_attention: cache dtype ", k.scalar_type(), " is not supported");
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(codeloop, m) {
  m.def("paged_decode_attention(Tensor q, Tensor k, Tensor v, Tensor? k_scale, Tensor? v_scale, Tensor tables, "
        "Tensor lens, float scale) -> Tensor");
}
TORCH_LIBRARY_IMPL(codeloop, CPU, m) { m.impl("paged_decode_attention", &paged_decode_attention); }
