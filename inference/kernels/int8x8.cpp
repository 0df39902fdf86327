// int8 weights x int8 activations on AVX-512 VNNI: the prefill GEMM of codeloop's packed int8 path.
//
// Prefill is compute-bound on a CPU: one VPDPBUSD does 64 int8 multiply-adds where a bf16 dot product
// (VDPBF16PS) does 32, so integer prompts run up to twice the bf16 rate on VNNI machines without AMX.
// Weights: symmetric int8 per output channel (w ~= q * scale, as quantize_int8), packed by
// inference/kernels/__init__.py:pack_int8x8 into tiles of 16 output rows; per 32-channel block 8 chunks of 64 bytes,
// byte (lane r, b) of chunk c = channel 4c+b of row r, stored as q + 128 (unsigned, VPDPBUSD's first operand).
// Activations: each row quantized to int8 per block of 32 channels (amax/127), as in int4x8.cpp; a block's
// integer dot product is corrected by 128 * sum(xq) and scaled once per block; the weight scale comes last.
// Register blocking: kRows activation rows x kCols tiles of 16 outputs share every broadcast and weight load.
// Rows are independent: a row gets the same result alone or in a batch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

namespace {

constexpr int kBlock = 32;
constexpr int kTile = 16;
constexpr int kRows = 3;
constexpr int kCols = 4;
constexpr int64_t kTileBlockBytes = kTile * kBlock;  // 512 bytes per tile per 32-channel block

struct Quantized {  // activations, row-major
  at::Tensor q;      // int8 [M, K]
  at::Tensor scale;  // float [M, K/32]
  at::Tensor corr;   // int32 [M, K/32]: 128 * sum(q) per block
};

Quantized quantize(const at::Tensor& xf) {
  const int64_t M = xf.size(0), K = xf.size(1), nb = K / kBlock;
  Quantized r{at::empty({M, K}, xf.options().dtype(at::kChar)), at::empty({M, nb}, xf.options()),
              at::empty({M, nb}, xf.options().dtype(at::kInt))};
  const float* x = xf.data_ptr<float>();
  int8_t* q = r.q.data_ptr<int8_t>();
  float* s = r.scale.data_ptr<float>();
  int32_t* c = r.corr.data_ptr<int32_t>();
  at::parallel_for(0, M, 16, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      for (int64_t b = 0; b < nb; ++b) {
        const float* xb = x + m * K + b * kBlock;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const __m512 inv = _mm512_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
        const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, inv));  // round to nearest even
        const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, inv));
        int8_t* qb = q + m * K + b * kBlock;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(qb), _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + 16), _mm512_cvtsepi32_epi8(q1));
        c[m * nb + b] = 128 * (_mm512_reduce_add_epi32(q0) + _mm512_reduce_add_epi32(q1));
        s[m * nb + b] = amax / 127.f;
      }
    }
  });
  return r;
}

inline __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// R activation rows x C tiles (16 outputs each): out[r][c*16 + 0..15] = sum_k x[r,k] * w[c*16 + lane, k].
template <int R, int C>
void block(const uint8_t* const* w, const int8_t* const* xq, const float* const* xs, const int32_t* const* xc,
           int64_t K, const float* const* wscale, float* const* out) {
  __m512 y[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) y[r][c] = _mm512_setzero_ps();
  const int64_t nb = K / kBlock;
  for (int64_t b = 0; b < nb; ++b) {
    __m512i acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_si512();
    for (int k = 0; k < 8; ++k) {
      __m512i wv[C];
      for (int c = 0; c < C; ++c) wv[c] = _mm512_loadu_si512(w[c] + b * kTileBlockBytes + 64 * k);
      for (int r = 0; r < R; ++r) {
        const __m512i xv = broadcast4(xq[r] + b * kBlock + 4 * k);
        for (int c = 0; c < C; ++c) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], wv[c], xv);
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m512 s = _mm512_set1_ps(xs[r][b]);
      for (int c = 0; c < C; ++c) y[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][c]), s, y[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {  // the +128 of the weights, summed over the blocks: one number per row
    float bias = 0.f;
    for (int64_t b = 0; b < nb; ++b) bias += xs[r][b] * static_cast<float>(xc[r][b]);
    const __m512 bv = _mm512_set1_ps(bias);
    for (int c = 0; c < C; ++c) y[r][c] = _mm512_sub_ps(y[r][c], bv);
  }
  for (int c = 0; c < C; ++c) {
    const __m512 ws = _mm512_loadu_ps(wscale[c]);
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(out[r] + c * kTile, _mm512_mul_ps(y[r][c], ws));
  }
}

using BlockFn = void (*)(const uint8_t* const*, const int8_t* const*, const float* const*, const int32_t* const*,
                         int64_t, const float* const*, float* const*);
template <int R, int... Cs>
constexpr std::array<BlockFn, kCols + 1> row_of(std::integer_sequence<int, Cs...>) {
  return {nullptr, block<R, Cs + 1>...};
}
template <int... Rs>
constexpr std::array<std::array<BlockFn, kCols + 1>, kRows + 1> table_of(std::integer_sequence<int, Rs...>) {
  return {std::array<BlockFn, kCols + 1>{}, row_of<Rs + 1>(std::make_integer_sequence<int, kCols>{})...};
}
constexpr auto kBlocks = table_of(std::make_integer_sequence<int, kRows>{});

// x [M, K] (float or bf16) @ W.T -> [M, N] in x's dtype; w uint8 [N/16, K*16]; scale float [N].
at::Tensor int8x8_mm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& scale) {
  TORCH_CHECK(x.dim() == 2, "int8x8_mm: x must be [M, K], got ", x.sizes());
  TORCH_CHECK(w.scalar_type() == at::kByte && w.dim() == 2 && w.is_contiguous(), "int8x8_mm: bad packed weight");
  const int64_t M = x.size(0), K = x.size(1), T = w.size(0), N = T * kTile;
  TORCH_CHECK(K % kBlock == 0, "int8x8_mm: K=", K, " is not a multiple of ", kBlock);
  TORCH_CHECK(w.size(1) == K * kTile, "int8x8_mm: packed weight is for another K");
  TORCH_CHECK(scale.scalar_type() == at::kFloat && scale.numel() == N && scale.is_contiguous(),
              "int8x8_mm: scale must be float [", N, "]");
  const Quantized xq = quantize(x.to(at::kFloat).contiguous());
  at::Tensor out = at::empty({M, N}, x.options().dtype(at::kFloat));
  float* o = out.data_ptr<float>();
  const uint8_t* wp = w.data_ptr<uint8_t>();
  const float* sp = scale.data_ptr<float>();
  const int8_t* qp = xq.q.data_ptr<int8_t>();
  const float* xsp = xq.scale.data_ptr<float>();
  const int32_t* xcp = xq.corr.data_ptr<int32_t>();
  const int64_t nb = K / kBlock, groups = (T + kCols - 1) / kCols;
  at::parallel_for(0, groups, 1, [&](int64_t begin, int64_t end) {
    const uint8_t* wt[kCols];
    const float* ws[kCols];
    const int8_t* rq[kRows];
    const float* rs[kRows];
    const int32_t* rc[kRows];
    float* op[kRows];
    for (int64_t g = begin; g < end; ++g) {
      const int64_t t0 = g * kCols;
      const int nc = static_cast<int>(std::min<int64_t>(kCols, T - t0));
      for (int c = 0; c < nc; ++c) {
        wt[c] = wp + (t0 + c) * K * kTile;
        ws[c] = sp + (t0 + c) * kTile;
      }
      for (int64_t m0 = 0; m0 < M; m0 += kRows) {
        const int nr = static_cast<int>(std::min<int64_t>(kRows, M - m0));
        for (int r = 0; r < nr; ++r) {
          rq[r] = qp + (m0 + r) * K;
          rs[r] = xsp + (m0 + r) * nb;
          rc[r] = xcp + (m0 + r) * nb;
          op[r] = o + (m0 + r) * N + t0 * kTile;
        }
        kBlocks[nr][nc](wt, rq, rs, rc, K, ws, op);
      }
    }
  });
  return x.scalar_type() == at::kFloat ? out : out.to(x.scalar_type());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(codeloop, m) { m.def("int8x8_mm(Tensor x, Tensor w, Tensor scale) -> Tensor"); }
TORCH_LIBRARY_IMPL(codeloop, CPU, m) { m.impl("int8x8_mm", &int8x8_mm); }
