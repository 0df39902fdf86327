// int8 weights x int8 activations on AVX-512 VNNI or AVX2 (simd16.h): the prefill GEMM of codeloop's packed int8
// path.
//
// Prefill is compute-bound on a CPU: one VPDPBUSD does 64 int8 multiply-adds where a bf16 dot product
// (VDPBF16PS) does 32, so integer prompts run up to twice the bf16 rate on VNNI machines without AMX; on AVX2
// (no bf16 or VNNI) four instructions do 32, still ahead of float32's 8 per FMA.
// Weights: symmetric int8 per output channel (w ~= q * scale, as quantize_int8), packed by
// inference/kernels/__init__.py:pack_int8x8 into tiles of 16 output rows; per 32-channel block 8 chunks of 64 bytes,
// byte (lane r, b) of chunk c = channel 4c+b of row r, stored as q + 128 (unsigned, VPDPBUSD's first operand).
// Activations: each row quantized per block of 32 channels (amax / kQ8Max: 127, or 63 on plain AVX2, see
// simd16.h); a block's integer dot product is scaled by the block's activation scale as it is added up in
// float; the weights' +128 (128 * sum(xq) * scale per block, the same for every output of the row) is taken off
// once at the end, then the weight scale is applied.
// Register blocking: kRows activation rows x kCols tiles of 16 outputs share every broadcast and weight load
// (fewer on AVX2: 16 registers of half the width).
// Rows are independent: a row gets the same result alone or in a batch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <immintrin.h>

#include "q8_block.h"

#include <array>
#include <utility>

namespace {

using namespace codeloop_simd;
using codeloop_q8::kBlock;
constexpr int kTile = 16;
#ifdef CODELOOP_SIMD_AVX512
constexpr int kRows = 3;
constexpr int kCols = 4;
#else
constexpr int kRows = 1;  // 1 x 4 measured best of 1..4 x 1..6 on a Zen 3 (8 accumulators; more spill)
constexpr int kCols = 4;
#endif
constexpr int64_t kTileBlockBytes = kTile * kBlock;  // 512 bytes per tile per 32-channel block

struct Quantized {  // activations, row-major
  at::Tensor q;      // int8 [M, K]
  at::Tensor scale;  // float [M, K/32]
  at::Tensor corr;   // int32 [M, K/32]: kQ8Bias * sum(q) per block
};

template <typename In>
Quantized quantize(const at::Tensor& xt) {
  const int64_t M = xt.size(0), K = xt.size(1), nb = K / kBlock;
  const auto f32 = xt.options().dtype(at::kFloat);
  Quantized r{at::empty({M, K}, xt.options().dtype(at::kChar)), at::empty({M, nb}, f32),
              at::empty({M, nb}, xt.options().dtype(at::kInt))};
  const In* x = xt.data_ptr<In>();
  int8_t* q = r.q.data_ptr<int8_t>();
  float* s = r.scale.data_ptr<float>();
  int32_t* c = r.corr.data_ptr<int32_t>();
  at::parallel_for(0, M, 16, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t at = m * K + b * kBlock;
        const codeloop_q8::Block blk = codeloop_q8::quantize_block(x + at, q + at, static_cast<float>(kQ8Max));
        c[m * nb + b] = kQ8Bias * blk.sumq;
        s[m * nb + b] = blk.scale;
      }
    }
  });
  return r;
}

// R activation rows x C tiles (16 outputs each): out[r][c*16 + 0..15] = sum_k x[r,k] * w[c*16 + lane, k].
template <typename Out, int R, int C>
void block(const uint8_t* const* w, const int8_t* const* xq, const float* const* xs, const int32_t* const* xc,
           int64_t K, const float* const* wscale, Out* const* out) {
  F16 y[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) y[r][c] = fzero();
  const int64_t nb = K / kBlock;
  for (int64_t b = 0; b < nb; ++b) {
    I16 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = izero();
    for (int k = 0; k < 8; ++k) {
      I16 wv[C];
      for (int c = 0; c < C; ++c) wv[c] = load_bytes(w[c] + b * kTileBlockBytes + 64 * k);
      for (int r = 0; r < R; ++r) {
        const X8 xv = prep_x8(broadcast4(xq[r] + b * kBlock + 4 * k));
        for (int c = 0; c < C; ++c) acc[r][c] = dot_q8(acc[r][c], wv[c], xv);
      }
    }
    for (int r = 0; r < R; ++r) {
      const F16 s = fset1(xs[r][b]);
      for (int c = 0; c < C; ++c) y[r][c] = fmadd(to_float(acc[r][c]), s, y[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {  // the +128 of the weights, summed over the blocks: one number per row
    float bias = 0.f;
    for (int64_t b = 0; b < nb; ++b) bias += xs[r][b] * static_cast<float>(xc[r][b]);
    const F16 bv = fset1(bias);
    for (int c = 0; c < C; ++c) y[r][c] = fsub(y[r][c], bv);
  }
  for (int c = 0; c < C; ++c) {
    const F16 ws = load(wscale[c]);
    for (int r = 0; r < R; ++r) store(out[r] + c * kTile, fmul(y[r][c], ws));
  }
}

template <typename Out>
using BlockFn = void (*)(const uint8_t* const*, const int8_t* const*, const float* const*, const int32_t* const*,
                         int64_t, const float* const*, Out* const*);
template <typename Out, int R, int... Cs>
constexpr std::array<BlockFn<Out>, kCols + 1> row_of(std::integer_sequence<int, Cs...>) {
  return {nullptr, block<Out, R, Cs + 1>...};
}
template <typename Out, int... Rs>
constexpr std::array<std::array<BlockFn<Out>, kCols + 1>, kRows + 1> table_of(std::integer_sequence<int, Rs...>) {
  return {std::array<BlockFn<Out>, kCols + 1>{}, row_of<Out, Rs + 1>(std::make_integer_sequence<int, kCols>{})...};
}
template <typename Out>
constexpr auto kBlocks = table_of<Out>(std::make_integer_sequence<int, kRows>{});

// One GEMM over all rows; Out: float or bf16, as x.
template <typename Out>
void gemm(const Quantized& xq, const uint8_t* wp, const float* sp, int64_t M, int64_t K, int64_t T, Out* o) {
  const int64_t N = T * kTile, nb = K / kBlock, groups = (T + kCols - 1) / kCols;
  const int8_t* qp = xq.q.data_ptr<int8_t>();
  const float* xsp = xq.scale.data_ptr<float>();
  const int32_t* xcp = xq.corr.data_ptr<int32_t>();
  at::parallel_for(0, groups, 1, [&](int64_t begin, int64_t end) {
    const uint8_t* wt[kCols];
    const float* ws[kCols];
    const int8_t* rq[kRows];
    const float* rs[kRows];
    const int32_t* rc[kRows];
    Out* op[kRows];
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
        kBlocks<Out>[nr][nc](wt, rq, rs, rc, K, ws, op);
      }
    }
  });
}

// x [M, K] (float or bf16) @ W.T -> [M, N] in x's dtype; w uint8 [N/16, K*16]; scale float [N].
at::Tensor int8x8_mm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& scale) {
  TORCH_CHECK(x.dim() == 2, "int8x8_mm: x must be [M, K], got ", x.sizes());
  TORCH_CHECK(w.scalar_type() == at::kByte && w.dim() == 2 && w.is_contiguous(), "int8x8_mm: bad packed weight");
  const int64_t M = x.size(0), K = x.size(1), T = w.size(0), N = T * kTile;
  TORCH_CHECK(K % kBlock == 0, "int8x8_mm: K=", K, " is not a multiple of ", kBlock);
  TORCH_CHECK(w.size(1) == K * kTile, "int8x8_mm: packed weight is for another K");
  TORCH_CHECK(scale.scalar_type() == at::kFloat && scale.numel() == N && scale.is_contiguous(),
              "int8x8_mm: scale must be float [", N, "]");
  const bool bf16 = x.scalar_type() == at::kBFloat16;
  const at::Tensor xc = bf16 ? x.contiguous() : x.to(at::kFloat).contiguous();
  const Quantized xq = bf16 ? quantize<at::BFloat16>(xc) : quantize<float>(xc);
  at::Tensor out = at::empty({M, N}, x.options().dtype(bf16 ? at::kBFloat16 : at::kFloat));
  const uint8_t* wp = w.data_ptr<uint8_t>();
  const float* sp = scale.data_ptr<float>();
  if (bf16) {
    gemm<at::BFloat16>(xq, wp, sp, M, K, T, out.data_ptr<at::BFloat16>());
    return out;
  }
  gemm<float>(xq, wp, sp, M, K, T, out.data_ptr<float>());
  return x.scalar_type() == at::kFloat ? out : out.to(x.scalar_type());
}

// The activations' quantization range this build uses, [-kQ8Max, kQ8Max] (127, or 63 on plain AVX2).
int64_t int8x8_activation_max() { return kQ8Max; }

}  // namespace

TORCH_LIBRARY_FRAGMENT(codeloop, m) {
  m.def("int8x8_mm(Tensor x, Tensor w, Tensor scale) -> Tensor");
  m.def("int8x8_activation_max() -> int", &int8x8_activation_max);
}
TORCH_LIBRARY_IMPL(codeloop, CPU, m) { m.impl("int8x8_mm", &int8x8_mm); }
