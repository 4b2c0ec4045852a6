// Plain dense math for the reference kernels: the geometry of MatMul and Conv, a triple-loop matrix
// product and a direct convolution. The reference MatMul, Gemm, Conv and fused ops (fused.cpp) compute
// with these; the optimized variants (opt/) reuse the geometry and are held to these loops by the op harness.
#pragma once

#include <cstdint>
#include <vector>

#include "graph/graph.hpp"
#include "orchard/status.hpp"
#include "orchard/tensor.hpp"
#include "orchard/thread_pool.hpp"
#include "runtime/op_kernel.hpp"

namespace orchard::cpu::reference {

// ---- MatMul --------------------------------------------------------------------------------------

// The geometry of a numpy-style matmul of shapes a and b.
struct MatMulPlan {
  int64_t M = 0, N = 0, K = 0;
  Shape out;
  Shape a_batch, b_batch;             // the operands' own batch dims
  std::vector<int64_t> a_off, b_off;  // per output batch: element offset of its A and B matrices
  int64_t batches = 0;
};

// Returns the plan of a x b (1-D operands promoted as numpy does). A batched A times an unbatched B is
// one tall product (A's batch folded into M).
Result<MatMulPlan> plan_matmul(const Shape& a, const Shape& b);

// Y = alpha * op(A) op(B) + beta * Y as a triple loop (op(A) is MxK, A is KxM when ta; op(B) KxN, B is NxK
// when tb; row strides lda/ldb/ldc). With beta == 0, Y is not read. For float and double.
template <class C>
void gemm_plain(bool ta, bool tb, int64_t M, int64_t N, int64_t K, C alpha, const C* A, int64_t lda, const C* B,
                int64_t ldb, C beta, C* Y, int64_t ldc);

// Runs every batch of plan `p` through gemm_plain: Y[b] = A[a_off[b]] B[b_off[b]] (contiguous matrices).
template <class C>
void matmul_plain(const MatMulPlan& p, const C* A, const C* B, C* Y);

// ---- Conv ----------------------------------------------------------------------------------------

struct ConvGeom {
  int64_t N = 0, C = 0, M = 0, group = 1;  // batch, input channels, output channels, groups
  std::vector<int64_t> in, kernel, out, stride, dilation, pad_begin, pad_end;  // per spatial dim
  int64_t in_size = 1, out_size = 1, kernel_size = 1;
  size_t rank() const { return in.size(); }
  int64_t c_per_group() const { return C / group; }
  int64_t m_per_group() const { return M / group; }
  // Recomputes in_size, out_size and kernel_size from the per-dim vectors.
  void finish();
};

// Reads strides/dilations/pads/kernel_shape/group of a convolution node whose weight has spatial dims
// `w_spatial` into g (auto_pad is applied by conv_geometry).
Status read_conv_attributes(const graph::Node& node, const std::vector<int64_t>& w_spatial, ConvGeom& g);

// Geometry of Conv (and FusedConv, ConvInteger, QLinearConv) for x [N, C, D...] and w [M, C/group, k...].
Result<ConvGeom> conv_geometry(const graph::Node& node, const Shape& x, const Shape& w);

// Returns [N, M, out...].
Shape conv_output_shape(const ConvGeom& g);

// A convolution kernel's shape-dependent state: the geometry of its current input shapes.
struct ConvState final : runtime::KernelState {
  ConvGeom g;
};

// Checks a Conv-like node's attributes against its weight when the weight (input 1) is a constant; the
// create-time check of every Conv kernel (otherwise checked per shape by conv_state).
Status validate_conv(const runtime::KernelCreateContext& ctx);

// Returns the ConvState of Conv inputs of these shapes (X, W, ...): a kernel's reshape().
Result<std::shared_ptr<const runtime::KernelState>> conv_state(const graph::Node& node, std::span<const Shape> shapes);

// y [N, M, out...] = conv(x [N, C, in...], w [M, C/group, k...]) + bias [M] (bias may be null), computed
// directly: one sum over (input channel of the group, kernel offset) per output element. For float and
// double; parallel over output planes.
template <class C>
void conv_direct(const ConvGeom& g, const C* x, const C* w, const C* bias, C* y, ThreadPool& pool);

// Writes the column matrix [(channels * kernel_size) x out_size] of x [channels, in...] (one image, one
// group): row (c, k) holds the input value each output position sees through kernel offset k (0 in the
// padding). The lowering of the GEMM-based Conv variants (opt/conv_f32.cpp); ConvTranspose's col2im is its
// transpose.
void im2col(const ConvGeom& g, const float* x, int64_t channels, float* cols, ThreadPool& pool);

}  // namespace orchard::cpu::reference
