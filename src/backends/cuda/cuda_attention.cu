// FusedAttention in one kernel on tensor cores (float16 operands, float32 accumulation), for heads of 32, 64 or 128
// values: a block takes 64 query rows of one batch (16 per warp) and walks the keys 64 at a time. Per key tile it
// computes the scores S = Q Kᵀ (WMMA), adds the mask, folds them into each row's running maximum and sum (the
// "online" softmax: earlier partial outputs are rescaled by exp(old max - new max)), and accumulates P V (WMMA).
// The score matrix never leaves the chip, every operand is read through its strides (Q, K and V in [B, S, H, D] need
// no transposes) and the output is written through its own.
//
// Rows whose scores are all -inf have no maximum: their probabilities stay 0 and the sum 0, which the last step turns
// into NaN as the unfused softmax gives (0 with nan_to_zero, as Where(IsNaN(P), 0, P) gives).
//
// Run only with ORCHARD_CUDA_ATTENTION=flash: right on every layout, but slower on gpt2 and bert_base than the two
// cuBLAS products of cuda_ops_fused.cpp (bench/RESULTS.md, session 12; at batch 1, 24 blocks for 132 SMs).
#include <cuda_fp16.h>
#include <mma.h>

#include <cstdint>

#include "backends/cuda/cuda_kernels.hpp"

namespace orchard::cuda {

namespace {

using namespace nvcuda;

constexpr int kWarps = 4;
constexpr int kRows = 16 * kWarps;  // query rows per block
constexpr int kCols = 64;           // keys per tile

// Shared memory of one block for heads of kD values. Row pitches are padded (8 halves, 4 floats) to spread rows over
// the banks; every WMMA tile pointer stays 32-byte aligned.
template <int kD>
struct FlashSmem {
  static constexpr int kLd = kD + 8;      // Q, K and V rows (halves)
  static constexpr int kPLd = kCols + 8;  // probabilities (halves)
  static constexpr int kSLd = kCols + 4;  // scores (floats)
  static constexpr int kOLd = kD + 4;     // output accumulators (floats)
  static constexpr size_t kHalves = static_cast<size_t>(kRows) * kLd + 2 * static_cast<size_t>(kCols) * kLd +
                                    static_cast<size_t>(kRows) * kPLd;
  static constexpr size_t kFloats = static_cast<size_t>(kRows) * kSLd + static_cast<size_t>(kRows) * kOLd + 2 * kRows;
  static constexpr size_t kBytes = kHalves * 2 + kFloats * 4;
};

template <int kD>
__global__ void __launch_bounds__(kWarps * 32)
    flash_attention_kernel(const __half* __restrict__ q, const __half* __restrict__ kt, const __half* __restrict__ v,
                           const __half* __restrict__ mask, __half* __restrict__ out, Attention a) {
  using L = FlashSmem<kD>;
  extern __shared__ __align__(128) unsigned char smem[];
  __half* sq = reinterpret_cast<__half*>(smem);  // [kRows][kLd]
  __half* sk = sq + kRows * L::kLd;              // [kCols][kLd]: key j's row (Kᵀ column-major)
  __half* sv = sk + kCols * L::kLd;              // [kCols][kLd]
  __half* sp = sv + kCols * L::kLd;              // [kRows][kPLd]
  float* ss = reinterpret_cast<float*>(sp + kRows * L::kPLd);  // [kRows][kSLd]
  float* so = ss + kRows * L::kSLd;                            // [kRows][kOLd]
  float* row_max = so + kRows * L::kOLd;                       // [kRows]
  float* row_sum = row_max + kRows;                            // [kRows]

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const AttentionOffsets off = attention_offsets(a, blockIdx.y);
  const int64_t qo = off.q, ko = off.kt, vo = off.v, mo = off.mask, oo = off.out;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const __half zero = __float2half(0.f);
  for (int e = threadIdx.x; e < kRows * kD; e += blockDim.x) {
    const int r = e / kD, d = e % kD;
    const int64_t i = row0 + r;
    sq[r * L::kLd + d] = i < a.sq ? q[qo + i * a.q_row + d] : zero;
  }
  for (int e = threadIdx.x; e < kRows * L::kOLd; e += blockDim.x) so[e] = 0.f;
  for (int e = threadIdx.x; e < kRows; e += blockDim.x) {
    row_max[e] = -INFINITY;
    row_sum[e] = 0.f;
  }
  // This warp's 16 rows in each buffer.
  const __half* wq = sq + warp * 16 * L::kLd;
  __half* wp = sp + warp * 16 * L::kPLd;
  float* ws = ss + warp * 16 * L::kSLd;
  float* wo = so + warp * 16 * L::kOLd;
  // Softmax step: two lanes per row, 32 columns each.
  const int r = warp * 16 + lane / 2, c0 = (lane % 2) * 32;
  const int64_t i = row0 + r;

  for (int64_t j0 = 0; j0 < a.sk; j0 += kCols) {
    __syncthreads();  // Q and the accumulators are set; the previous tile's K and V are no longer read
    // Key and value tiles; keys past the end are zero (their scores become -inf below). Kᵀ is read along whichever
    // of its dims is contiguous.
    const bool keys_fast = a.kt_col == 1;
    for (int e = threadIdx.x; e < kCols * kD; e += blockDim.x) {
      const int c = keys_fast ? e % kCols : e / kD, d = keys_fast ? e / kCols : e % kD;
      const int64_t j = j0 + c;
      sk[c * L::kLd + d] = j < a.sk ? kt[ko + j * a.kt_col + d * a.kt_row] : zero;
    }
    for (int e = threadIdx.x; e < kCols * kD; e += blockDim.x) {
      const int c = e / kD, d = e % kD;
      const int64_t j = j0 + c;
      sv[c * L::kLd + d] = j < a.sk ? v[vo + j * a.v_row + d] : zero;
    }
    __syncthreads();
    // S = Q Kᵀ for this warp's rows.
#pragma unroll
    for (int n = 0; n < kCols / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
#pragma unroll
      for (int k = 0; k < kD / 16; ++k) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, wq + k * 16, L::kLd);
        wmma::load_matrix_sync(fb, sk + n * 16 * L::kLd + k * 16, L::kLd);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(ws + n * 16, acc, L::kSLd, wmma::mem_row_major);
    }
    __syncwarp();
    // The online softmax over this tile's scores.
    {
      float s[32];
      float mx = -INFINITY;
#pragma unroll
      for (int c = 0; c < 32; ++c) {
        const int64_t j = j0 + c0 + c;
        float x = -INFINITY;
        if (j < a.sk) {
          x = a.scale * ss[r * L::kSLd + c0 + c];
          if (mask && i < a.sq) x += __half2float(mask[mo + i * a.m_row + j * a.m_col]);
        }
        s[c] = x;
        mx = fmaxf(mx, x);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      const float old_max = row_max[r];
      const float new_max = fmaxf(old_max, mx);
      const float base = new_max == -INFINITY ? 0.f : new_max;  // all -inf so far: probabilities 0, no NaN
      float sum = 0.f;
#pragma unroll
      for (int c = 0; c < 32; ++c) {
        const float p = __expf(s[c] - base);
        sum += p;
        wp[(lane / 2) * L::kPLd + c0 + c] = __float2half(p);
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      const float alpha = __expf(old_max - base);  // 0 when the row had no maximum yet
      for (int d = (lane % 2) * (kD / 2); d < (lane % 2 + 1) * (kD / 2); ++d) so[r * L::kOLd + d] *= alpha;
      __syncwarp();
      if (lane % 2 == 0) {
        row_max[r] = new_max;
        row_sum[r] = row_sum[r] * alpha + sum;
      }
    }
    __syncwarp();
    // O += P V.
#pragma unroll
    for (int n = 0; n < kD / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, wo + n * 16, L::kOLd, wmma::mem_row_major);
#pragma unroll
      for (int k = 0; k < kCols / 16; ++k) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, wp + k * 16, L::kPLd);
        wmma::load_matrix_sync(fb, sv + k * 16 * L::kLd + n * 16, L::kLd);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(wo + n * 16, acc, L::kOLd, wmma::mem_row_major);
    }
  }
  __syncwarp();
  // out = O / sum, per row.
  for (int e = lane; e < 16 * kD; e += 32) {
    const int rr = warp * 16 + e / kD, d = e % kD;
    const int64_t ii = row0 + rr;
    if (ii >= a.sq) continue;
    const float l = row_sum[rr];
    const float o = l > 0.f ? so[rr * L::kOLd + d] / l : (a.nan_to_zero ? 0.f : __int_as_float(0x7fc00000));
    out[oo + ii * a.o_row + d] = __float2half(o);
  }
}

template <int kD>
cudaError_t launch_flash(const void* q, const void* kt, const void* v, const void* mask, void* out, const Attention& a,
                         cudaStream_t stream) {
  constexpr size_t bytes = FlashSmem<kD>::kBytes;
  static const cudaError_t opt_in = cudaFuncSetAttribute(flash_attention_kernel<kD>,
                                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                         static_cast<int>(bytes));
  if (opt_in != cudaSuccess) return opt_in;
  const dim3 grid(static_cast<unsigned>((a.sq + kRows - 1) / kRows), static_cast<unsigned>(a.batches));
  flash_attention_kernel<kD><<<grid, kWarps * 32, bytes, stream>>>(
      static_cast<const __half*>(q), static_cast<const __half*>(kt), static_cast<const __half*>(v),
      static_cast<const __half*>(mask), static_cast<__half*>(out), a);
  return cudaGetLastError();
}

}  // namespace

bool flash_attention_fits(const Attention& a) {
  const bool head = a.d == a.dv && (a.d == 32 || a.d == 64 || a.d == 128);
  // Q's rows may not broadcast (q_row 0) and Kᵀ needs a column per key (kt_col 0 broadcasts one).
  return head && a.sk > 0 && a.q_row != 0 && a.kt_col != 0 && a.batches <= 65535 && (a.sq + kRows - 1) / kRows <= INT32_MAX &&
         a.batch_rank <= kMaxRank;
}

cudaError_t flash_attention(const void* q, const void* kt, const void* v, const void* mask, void* out,
                            const Attention& a, cudaStream_t stream) {
  if (a.batches == 0 || a.sq == 0) return cudaSuccess;
  switch (a.d) {
    case 32: return launch_flash<32>(q, kt, v, mask, out, a, stream);
    case 64: return launch_flash<64>(q, kt, v, mask, out, a, stream);
    case 128: return launch_flash<128>(q, kt, v, mask, out, a, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace orchard::cuda
