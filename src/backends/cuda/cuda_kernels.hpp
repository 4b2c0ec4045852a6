// Launchers of the CUDA backend's own device kernels (cuda_kernels.cu). Plain C++ declarations, so that
// the op kernels (cuda_ops_*.cpp) compile with the host compiler and nvcc compiles one file.
// Each launcher queues work on `stream` and returns the launch's error (cudaSuccess when queued).
// Layer: backends (CUDA).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace orchard::cuda {

inline constexpr int kMaxRank = 8;

// Element types the kernels take. The float kernels take f32, f16 and bf16 (16-bit data computed in float32).
enum class Elem : int { f32, f16, bf16, i32, i64, boolean };

// An iteration space (dims, row-major) and, per operand, the element stride of each dim and a base offset.
// A broadcast operand has stride 0 along the dims it repeats.
struct Layout {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t stride[3][kMaxRank] = {};
  int64_t offset[3] = {};
};

enum class BinaryOp : int { add, sub, mul, div, pow, max, min };
enum class UnaryOp : int {
  relu, sigmoid, tanh, erf, exp, log, sqrt, neg, abs, reciprocal, softplus, softsign, leaky_relu, elu, selu,
  hard_sigmoid, hard_swish, clip, sin, cos, floor, ceil, identity, gelu, gelu_tanh, silu
};
enum class ReduceOp : int { sum, mean, max, min, sum_square };

// dst[layout operand 1] = src[layout operand 0] over the iteration space, for elements of `elem_size` bytes.
cudaError_t strided_copy(const void* src, void* dst, size_t elem_size, const Layout& l, cudaStream_t stream);
// out (contiguous over l.dims) = a op b, with a and b read through layout operands 0 and 1.
cudaError_t binary(BinaryOp op, Elem t, const void* a, const void* b, void* out, const Layout& l, cudaStream_t stream);
// y = op(x) elementwise over n elements; alpha/beta are the op's attributes (LeakyRelu alpha, Clip min/max, ...).
cudaError_t unary(UnaryOp op, Elem t, const void* x, void* y, int64_t n, float alpha, float beta, cudaStream_t stream);
// y = act(y + bias[(i / inner) % channels] + z[i]) over y's n elements, in place; bias and z may be null (no bias:
// channels and inner unused). act is a unary op with its alpha/beta (identity for none). The fused ops' epilogue.
cudaError_t epilogue(Elem t, void* y, int64_t n, const void* bias, int64_t channels, int64_t inner, const void* z,
                     UnaryOp act, float alpha, float beta, cudaStream_t stream);
// Softmax (or LogSoftmax) of x viewed as [outer, n, inner] along the middle dim.
cudaError_t softmax(Elem t, const void* x, void* y, int64_t outer, int64_t n, int64_t inner, bool log,
                    cudaStream_t stream);
// y = (x - mean) / sqrt(var + eps) * scale + bias over each of `rows` rows of `cols`; bias may be null.
cudaError_t layer_norm(Elem t, const void* x, const void* scale, const void* bias, void* y, int64_t rows,
                       int64_t cols, float eps, cudaStream_t stream);
// dst = cast(src) for n elements.
cudaError_t cast(Elem from, Elem to, const void* src, void* dst, int64_t n, cudaStream_t stream);
// Bad input a kernel finds on the device (an index out of range), written where the host reads it once the
// stream has synchronized (pinned host memory, CudaStream::fault_record). Plain stores, no atomics: threads of one
// kernel write the same code and limit, and the host reports one of their values. code 0: nothing found.
enum class FaultCode : int32_t { none = 0, gather_index = 1 };
struct DeviceFault {
  FaultCode code = FaultCode::none;
  int32_t reserved = 0;
  int64_t value = 0;  // the offending value
  int64_t limit = 0;  // what it had to stay within (an axis size)
};
// out[o, j, i] = data[o, idx[j], i] for data viewed as [outer, axis_dim, inner]; idx (int32 or int64, in
// device memory, `wide`: int64) may be negative (counted from the end). An index outside [-axis_dim, axis_dim)
// writes zeros and reports FaultCode::gather_index in `fault`.
cudaError_t gather(const void* data, const void* idx, bool wide, void* out, size_t elem_size, int64_t outer,
                   int64_t axis_dim, int64_t num_idx, int64_t inner, DeviceFault* fault, cudaStream_t stream);
// Moves a fault reported in `from` (a CUDA graph's own record) to `to` (the run's) unless `to` holds one
// already, and clears `from`.
cudaError_t merge_fault(DeviceFault* from, DeviceFault* to, cudaStream_t stream);
// Comparisons (float operands) and logical ops (boolean operands), with a boolean result.
enum class PredicateOp : int { equal, less, greater, less_equal, greater_equal, logical_and, logical_or, logical_xor };
// out (boolean, contiguous over l.dims) = a op b, with a and b read through layout operands 0 and 1.
cudaError_t predicate(PredicateOp op, Elem t, const void* a, const void* b, bool* out, const Layout& l,
                      cudaStream_t stream);
// y = isnan(x) for float x (`is_nan`), or y = !x for boolean x, over n elements.
cudaError_t predicate_unary(bool is_nan, Elem t, const void* x, bool* y, int64_t n, cudaStream_t stream);
// out (contiguous over l.dims) = cond ? x : y, with cond, x and y read through layout operands 0, 1 and 2.
cudaError_t where(const bool* cond, const void* x, const void* y, void* out, size_t elem_size, const Layout& l,
                  cudaStream_t stream);
// 2-D pooling over NCHW planes; windows clipped to the input (pads never hold values).
struct Pool2d {
  int64_t planes = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0, k_h = 1, k_w = 1, s_h = 1, s_w = 1, d_h = 1, d_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool max = true;          // MaxPool, else AveragePool
  bool include_pad = false;  // AveragePool: count_include_pad
};
cudaError_t pool2d(Elem t, const void* x, void* y, const Pool2d& p, cudaStream_t stream);
// BatchNormalization (inference) of x viewed as [n, c, inner] with per-channel scale, bias, mean, var.
cudaError_t batch_norm(Elem t, const void* x, const void* scale, const void* bias, const void* mean, const void* var,
                       void* y, int64_t n, int64_t c, int64_t inner, float eps, cudaStream_t stream);
// dst[i] = start + i * delta for n float elements (Range; ConstantOfShape with delta 0).
cudaError_t arithmetic_fill(Elem t, void* dst, int64_t n, float start, float delta, cudaStream_t stream);

// Scaled dot-product attention (com.orchard FusedAttention): for each output batch b (index over `batch_dims`) and
// row i, out[b, i, :] = softmax(scale * q[b, i, :] . kt[b, :, j] + mask[b, i, j] over j) . v[b, j, :], with each
// operand's per-batch-dim element strides (0 where it broadcasts) and row/column strides; Q's, V's and the output's
// columns are contiguous.
struct Attention {
  int batch_rank = 0;
  int64_t batch_dims[kMaxRank] = {};
  int64_t q_bs[kMaxRank] = {}, kt_bs[kMaxRank] = {}, v_bs[kMaxRank] = {}, m_bs[kMaxRank] = {}, o_bs[kMaxRank] = {};
  int64_t batches = 0, sq = 0, sk = 0, d = 0, dv = 0;
  int64_t q_row = 0;              // Q's row stride (0: one row broadcast over Sq)
  int64_t kt_row = 0, kt_col = 0;  // Kt's stride along D and along Sk (0: one column broadcast over Sk)
  int64_t v_row = 0;               // V's row stride
  int64_t o_row = 0;               // the output's row stride
  int64_t m_row = 0, m_col = 0;    // the mask's row and column strides
  float scale = 1.f;
  bool nan_to_zero = false;
};
#ifdef __CUDACC__
// Element offsets of output batch b's matrices in each operand of `a`.
struct AttentionOffsets {
  int64_t q = 0, kt = 0, v = 0, mask = 0, out = 0;
};
__device__ inline AttentionOffsets attention_offsets(const Attention& a, int64_t b) {
  AttentionOffsets o;
  for (int d = a.batch_rank - 1; d >= 0; --d) {
    const int64_t c = b % a.batch_dims[d];
    b /= a.batch_dims[d];
    o.q += c * a.q_bs[d];
    o.kt += c * a.kt_bs[d];
    o.v += c * a.v_bs[d];
    o.mask += c * a.m_bs[d];
    o.out += c * a.o_bs[d];
  }
  return o;
}
#endif

// out from q, kt, v and mask (null when absent), all of element type t (f32/f16/bf16), one warp per row.
// Returns cudaErrorInvalidValue when a row of sk scores does not fit in shared memory.
cudaError_t attention(Elem t, const void* q, const void* kt, const void* v, const void* mask, void* out,
                      const Attention& a, cudaStream_t stream);
// The same on tensor cores, one kernel (cuda_attention.cu): float16 operands (never bfloat16), d == dv of 32, 64 or
// 128, at most 65535 batches; scores and the running softmax stay on chip (64 query rows per block, 64 keys at a
// time). flash_attention_fits(a) says whether it takes `a`.
bool flash_attention_fits(const Attention& a);
cudaError_t flash_attention(const void* q, const void* kt, const void* v, const void* mask, void* out,
                            const Attention& a, cudaStream_t stream);

// The softmax step of attention computed as two matrix products (cuBLAS) and this kernel between them: for each of
// the a.batches * a.sq rows r of `scores` (float32, contiguous [batches, sq, sk], the scale already applied),
// p[r, :] (element type t, same layout) = softmax(scores[r, :] + mask) with the mask read through a.m_bs, a.m_row
// and a.m_col (null: none) and NaN probabilities made 0 when a.nan_to_zero.
cudaError_t attention_softmax(Elem t, const float* scores, const void* mask, void* p, const Attention& a,
                              cudaStream_t stream);
// Fills the six device arrays of a.batches pointers at `out` (out[i * a.batches + b]) that the two batched
// products of attention read and write, for output batch b: Q, Kt and V at their offsets through a's batch
// strides (es: bytes per element), the scores (float32) and probabilities (pes bytes per element) contiguous
// [batches, sq, sk], and Y at its offset: in that order Q, Kt, scores, probabilities, V, Y.
cudaError_t attention_pointers(const void* q, const void* kt, const void* v, void* scores, void* probs, void* y,
                               int64_t es, int64_t pes, const Attention& a, void** out, cudaStream_t stream);
// y[o, i] = reduce over j of x[o, j, i] for x viewed as [outer, n, inner].
cudaError_t reduce(ReduceOp op, Elem t, const void* x, void* y, int64_t outer, int64_t n, int64_t inner,
                   cudaStream_t stream);

}  // namespace orchard::cuda
