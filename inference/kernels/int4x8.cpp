// int4 weights x int8 activations on AVX-512 VNNI or AVX2 (simd16.h): the decode GEMV of codeloop's packed int4
// path.
//
// Weights: asymmetric int4 per group of G input channels (w ~= (q - 8) * scale + zero, as quantize_int4),
// packed by inference/kernels/__init__.py:pack_int4x8 into tiles of 16 output rows, one byte stream per tile:
// for each group, its 16 scales and 16 zeros (bf16, 64 bytes), then per 32-channel block 4 chunks of 64 bytes;
// byte (lane r, b) of chunk c holds channel 4c+b (low nibble) and 16+4c+b (high nibble) of row r, so one
// VPDPBUSD (on AVX2: two VPMADDUBSW per 32-byte half) multiplies 16 rows x 4 channels by 4 activation bytes
// broadcast. Scales inside the weight stream rather than beside it: one sequential stream per thread streamed
// ~14% faster from memory (1.5B shapes, Zen 4).
// Activations: each row quantized to int8 per block of 32 channels (scale amax/127), as llama.cpp's Q8_0:
// y = sum_g scale * sum_b a_b * (q.xq - 8 * sum xq) + zero * sum_g x. Rows are independent: a row gets the
// same result alone or in a batch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <immintrin.h>

#include "q8_block.h"

#include <vector>

namespace {

using namespace codeloop_simd;
using codeloop_q8::kBlock;
constexpr int kTile = 16;
constexpr int kMaxRows = 4;  // activation rows sharing one unpack of the weights
// Bytes ahead of the weight stream to prefetch: with 2-4 rows the unpack and dot products hold the core long
// enough that the hardware prefetcher falls behind (4 rows 1.2-1.3x faster on a Zen 4). One row streams at
// memory speed without it on AVX-512 (and a little slower with it); on AVX2, two loads and twice the
// instructions per 64 bytes, one row streams ~10% faster with it (1.5B shapes, Zen 3: 26 -> 29 GB/s, the
// lm_head 28 -> 32 GB/s; distances of 2-8 KiB alike).
constexpr int kPrefetch = 4096;
#ifdef CODELOOP_SIMD_AVX512
constexpr int kPrefetchRows = 2;  // the fewest activation rows that prefetch
#else
constexpr int kPrefetchRows = 1;
#endif

struct QuantRow {
  std::vector<int8_t> q;
  std::vector<float> scale;   // per 32-block
  std::vector<int32_t> sum8;  // 8 * sum(q) per 32-block
  std::vector<float> gsum;    // sum(x) per weight group
};

void quantize_row(const float* x, int64_t K, int G, QuantRow& r) {
  const int64_t nb = K / kBlock;
  r.q.resize(K);
  r.scale.resize(nb);
  r.sum8.resize(nb);
  r.gsum.assign(K / G, 0.f);
  for (int64_t b = 0; b < nb; ++b) {
    const codeloop_q8::Block q = codeloop_q8::quantize_block(x + b * kBlock, r.q.data() + b * kBlock);
    r.gsum[b * kBlock / G] += q.sumx;
    r.sum8[b] = 8 * q.sumq;
    r.scale[b] = q.scale;
  }
}

// 16 output rows (one tile) for R activation rows; writes out[r][0..15].
template <int R>
void tile(const uint8_t* w, const QuantRow* const* rows, int64_t K, int G, float* const* out) {
  F16 y[R];
  for (int r = 0; r < R; ++r) y[r] = fzero();
  const int64_t groups = K / G;
  const int sub = G / kBlock;
  for (int64_t g = 0; g < groups; ++g) {
    const auto* sz = reinterpret_cast<const at::BFloat16*>(w);
    w += 64;
    F16 t[R];
    for (int r = 0; r < R; ++r) t[r] = fzero();
    for (int s = 0; s < sub; ++s) {
      const int64_t blk = g * sub + s;
      I16 lo[R], hi[R];
      for (int r = 0; r < R; ++r) lo[r] = hi[r] = izero();
      for (int c = 0; c < 4; ++c) {
        if (R >= kPrefetchRows) _mm_prefetch(reinterpret_cast<const char*>(w) + kPrefetch, _MM_HINT_T0);
        const I16 wv = load_bytes(w);
        w += 64;
        const I16 wl = low_nibbles(wv), wh = high_nibbles(wv);
        for (int r = 0; r < R; ++r) {
          const int8_t* xb = rows[r]->q.data() + blk * kBlock;
          dot_u4x2(lo[r], hi[r], wl, broadcast4(xb + 4 * c), wh, broadcast4(xb + 16 + 4 * c));
        }
      }
      for (int r = 0; r < R; ++r) {
        const I16 acc = isub(iadd(lo[r], hi[r]), iset1(rows[r]->sum8[blk]));
        t[r] = fmadd(to_float(acc), fset1(rows[r]->scale[blk]), t[r]);
      }
    }
    const F16 scale = load(sz), zero = load(sz + 16);
    for (int r = 0; r < R; ++r) {
      y[r] = fmadd(scale, t[r], y[r]);
      y[r] = fmadd(zero, fset1(rows[r]->gsum[g]), y[r]);
    }
  }
  for (int r = 0; r < R; ++r) store(out[r], y[r]);
}

using TileFn = void (*)(const uint8_t*, const QuantRow* const*, int64_t, int, float* const*);
constexpr TileFn kTiles[kMaxRows + 1] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>};

// x [M, K] (float or bf16) @ W.T -> [M, N] in x's dtype; w uint8 [N/16, (K/G) * (64 + G*8)].
at::Tensor int4x8_mm(const at::Tensor& x, const at::Tensor& w, int64_t group_size) {
  TORCH_CHECK(x.dim() == 2, "int4x8_mm: x must be [M, K], got ", x.sizes());
  TORCH_CHECK(w.scalar_type() == at::kByte && w.dim() == 2 && w.is_contiguous(), "int4x8_mm: bad packed weight");
  const int64_t M = x.size(0), K = x.size(1), T = w.size(0);
  const int G = static_cast<int>(group_size);
  TORCH_CHECK(G >= kBlock && G % kBlock == 0 && K % G == 0, "int4x8_mm: K=", K, " does not fit group size ", G);
  const int64_t tile_bytes = (K / G) * (2 * kTile * 2 + G * kTile / 2);
  TORCH_CHECK(w.size(1) == tile_bytes, "int4x8_mm: packed weight is for another K or group size");
  const int64_t N = T * kTile;
  const at::Tensor xf = x.to(at::kFloat).contiguous();
  std::vector<QuantRow> rows(M);
  for (int64_t m = 0; m < M; ++m) quantize_row(xf.data_ptr<float>() + m * K, K, G, rows[m]);
  at::Tensor out = at::empty({M, N}, x.options().dtype(at::kFloat));
  float* o = out.data_ptr<float>();
  const uint8_t* wp = w.data_ptr<uint8_t>();
  at::parallel_for(0, T, 1, [&](int64_t begin, int64_t end) {
    const QuantRow* rp[kMaxRows];
    float* op[kMaxRows];
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t m0 = 0; m0 < M; m0 += kMaxRows) {
        const int n = static_cast<int>(std::min<int64_t>(kMaxRows, M - m0));
        for (int r = 0; r < n; ++r) {
          rp[r] = &rows[m0 + r];
          op[r] = o + (m0 + r) * N + t * kTile;
        }
        kTiles[n](wp + t * tile_bytes, rp, K, G, op);
      }
    }
  });
  return x.scalar_type() == at::kFloat ? out : out.to(x.scalar_type());
}

}  // namespace

TORCH_LIBRARY(codeloop, m) { m.def("int4x8_mm(Tensor x, Tensor w, int group_size) -> Tensor"); }
TORCH_LIBRARY_IMPL(codeloop, CPU, m) { m.impl("int4x8_mm", &int4x8_mm); }
