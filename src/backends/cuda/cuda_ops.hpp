// Shared helpers of the CUDA op kernels (cuda_ops_math.cpp, cuda_ops_shape.cpp) and their factories, which
// cuda_kernel_table.cpp lists. Layer: backends (CUDA).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/cuda_kernels.hpp"
#include "runtime/op_kernel.hpp"

namespace orchard::cuda {

using KernelResult = Result<std::unique_ptr<runtime::OpKernel>>;

// Returns the kernels' element type for `t`, or unsupported naming it.
Result<Elem> elem_of(DType t);
// Returns OK, or the launch error naming the op.
Status launch_status(cudaError_t err, const char* what);
// Returns the broadcast of two shapes (numpy rules), or invalid_argument naming both.
Result<Shape> broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Returns contiguous element strides of `s`.
std::vector<int64_t> contiguous_strides(const Shape& s);
// Sets layout operand `k` to read a tensor of shape `in` broadcast over l.dims (right-aligned, stride 0 where
// it repeats); l.rank and l.dims must be set.
void set_broadcast_operand(Layout& l, int k, const Shape& in);
// Returns a layout over `dims`, or unsupported when the rank exceeds kMaxRank.
Result<Layout> layout_over(const Shape& dims, const char* op);
// Returns element 0 of a float32/float16/bfloat16 host tensor as float, or invalid_argument naming `what`.
Result<float> host_float_scalar(const Tensor& t, const char* what);
// Returns the cuBLAS / cuBLASLt data type of float32, float16 or bfloat16 (CUDA_R_32F, _16F, _16BF), or unsupported.
Result<cudaDataType> blas_type(DType t);
// Reads an int64/int32 host tensor (a shape, axes, starts) into a vector.
Result<std::vector<int64_t>> host_ints(const Tensor& t, const char* what);

// C[M,N] (row-major, ldc) = alpha * op(A) op(B) + beta * C for `batch` matrices at the given element strides
// (cuBLAS, accumulated in float32): A and B of dtype t, C of c_type (float32, float16 or bfloat16; 16-bit A and B
// with float32 C is allowed).
Status gemm_rowmajor(DType t, DType c_type, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b,
                     float beta, void* c, int64_t ldc, int64_t stride_c, int64_t batch);
// The same product for `batch` matrices anywhere in device memory: a, b and c are device arrays of `batch`
// pointers each (cublasGemmBatchedEx).
Status gemm_rowmajor_batched(DType t, DType c_type, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                             float alpha, const void* const* a, int64_t lda, const void* const* b, int64_t ldb,
                             float beta, void* const* c, int64_t ldc, int64_t batch);

// The activation a fused op (FusedMatMul, FusedConv) applies after its bias and residual, as a unary op.
struct FusedEpilogue {
  UnaryOp act = UnaryOp::identity;
  float alpha = 0, beta = 0;  // Clip: min, max; LeakyRelu: alpha
};
// Reads a fused node's `activation` / `activation_params`, or invalid_argument naming a bad one (cuda_ops_fused.cpp).
Result<FusedEpilogue> fused_epilogue(const graph::Node& node);
// y = act(y + bias + Z) in place with the node's optional inputs 2 (bias: `channels` values, each applying to runs
// of `inner` elements) and 3 (Z: y's shape); invalid_argument naming a bias or Z that does not fit.
Status apply_epilogue(runtime::OpContext& ctx, const FusedEpilogue& e, Tensor& y, int64_t channels, int64_t inner);
// com.orchard FusedAttention (cuda_ops_fused.cpp).
KernelResult create_fused_attention(const runtime::KernelCreateContext& ctx);

// Factories, one per op family (cuda_ops_math.cpp).
KernelResult create_binary(const runtime::KernelCreateContext& ctx);
KernelResult create_unary(const runtime::KernelCreateContext& ctx);  // and com.orchard Gelu
KernelResult create_matmul(const runtime::KernelCreateContext& ctx);  // MatMul, com.orchard FusedMatMul
KernelResult create_gemm(const runtime::KernelCreateContext& ctx);
KernelResult create_softmax(const runtime::KernelCreateContext& ctx);
KernelResult create_layer_norm(const runtime::KernelCreateContext& ctx);
KernelResult create_reduce(const runtime::KernelCreateContext& ctx);
KernelResult create_global_pool(const runtime::KernelCreateContext& ctx);  // GlobalAveragePool, GlobalMaxPool
// Conv and com.orchard FusedConv through cuDNN (cuda_conv.cpp; built when CMake finds cuDNN).
KernelResult create_conv(const runtime::KernelCreateContext& ctx);
// Factories of data-movement ops (cuda_ops_shape.cpp).
KernelResult create_reshape(const runtime::KernelCreateContext& ctx);  // Reshape, Flatten, Squeeze, Unsqueeze, Identity
KernelResult create_transpose(const runtime::KernelCreateContext& ctx);
KernelResult create_concat(const runtime::KernelCreateContext& ctx);
KernelResult create_slice(const runtime::KernelCreateContext& ctx);
KernelResult create_gather(const runtime::KernelCreateContext& ctx);
KernelResult create_cast(const runtime::KernelCreateContext& ctx);
KernelResult create_expand(const runtime::KernelCreateContext& ctx);
KernelResult create_split(const runtime::KernelCreateContext& ctx);
// Factories of mask, selection, pooling and fill ops (cuda_ops_select.cpp).
KernelResult create_predicate(const runtime::KernelCreateContext& ctx);  // Equal, Less, ..., And, Or, Xor
KernelResult create_predicate_unary(const runtime::KernelCreateContext& ctx);  // IsNaN, Not
KernelResult create_where(const runtime::KernelCreateContext& ctx);
KernelResult create_pool(const runtime::KernelCreateContext& ctx);  // MaxPool, AveragePool
KernelResult create_batch_norm(const runtime::KernelCreateContext& ctx);
KernelResult create_constant_of_shape(const runtime::KernelCreateContext& ctx);
KernelResult create_range(const runtime::KernelCreateContext& ctx);

}  // namespace orchard::cuda
