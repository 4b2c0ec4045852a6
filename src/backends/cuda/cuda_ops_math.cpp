// CUDA op kernels for math: broadcasting binary ops, unary activations, MatMul/Gemm (cuBLAS), Softmax,
// LayerNormalization and reductions.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <optional>

#include "backends/cuda/cublas_loader.hpp"
#include "backends/cuda/cuda_gemm_lt.hpp"
#include "backends/cuda/cuda_ops.hpp"
#include "backends/cpu/shape_util.hpp"

namespace orchard::cuda {

Result<Elem> elem_of(DType t) {
  switch (t) {
    case DType::float32: return Elem::f32;
    case DType::float16: return Elem::f16;
    case DType::bfloat16: return Elem::bf16;
    case DType::int32: return Elem::i32;
    case DType::int64: return Elem::i64;
    case DType::boolean: return Elem::boolean;
    default: return unsupported("[cuda] dtype ", dtype_name(t), " has no CUDA kernel");
  }
}

Status launch_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::OK();
  return cuda_error(err, what);
}

Result<Shape> broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t rank = std::max(a.rank(), b.rank());
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.rank() ? 1 : a[i - (rank - a.rank())];
    const int64_t db = i < rank - b.rank() ? 1 : b[i - (rank - b.rank())];
    if (da != db && da != 1 && db != 1) {
      return invalid_argument("[", op, "] shapes ", a.to_string(), " and ", b.to_string(), " do not broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return Shape(std::move(out));
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.rank(), 1);
  for (size_t i = s.rank(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

void set_broadcast_operand(Layout& l, int k, const Shape& in) {
  const auto st = contiguous_strides(in);
  const int shift = l.rank - static_cast<int>(in.rank());
  for (int d = 0; d < l.rank; ++d) {
    const int id = d - shift;
    l.stride[k][d] = id < 0 || in[static_cast<size_t>(id)] == 1 ? 0 : st[static_cast<size_t>(id)];
  }
}

Result<Layout> layout_over(const Shape& dims, const char* op) {
  if (dims.rank() > static_cast<size_t>(kMaxRank)) {
    return unsupported("[", op, "] rank ", dims.rank(), " above the CUDA kernels' ", kMaxRank);
  }
  Layout l;
  l.rank = static_cast<int>(dims.rank());
  for (int d = 0; d < l.rank; ++d) l.dims[d] = dims[static_cast<size_t>(d)];
  return l;
}

Result<float> host_float_scalar(const Tensor& t, const char* what) {
  if (t.numel() < 1) return invalid_argument(what, " ", t.description(), " has no element");
  switch (t.dtype()) {
    case DType::float32: return t.data<float>()[0];
    case DType::float16: return static_cast<float>(t.data<float16>()[0]);
    case DType::bfloat16: return static_cast<float>(t.data<bfloat16>()[0]);
    default: return invalid_argument(what, " ", t.description(), " is not float32, float16 or bfloat16");
  }
}

Result<cudaDataType> blas_type(DType t) {
  switch (t) {
    case DType::float32: return CUDA_R_32F;
    case DType::float16: return CUDA_R_16F;
    case DType::bfloat16: return CUDA_R_16BF;
    default: return unsupported("[cuda] GEMM of ", dtype_name(t));
  }
}

Result<std::vector<int64_t>> host_ints(const Tensor& t, const char* what) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::int64) {
    std::copy(t.data<int64_t>(), t.data<int64_t>() + t.numel(), v.begin());
  } else if (t.dtype() == DType::int32) {
    std::copy(t.data<int32_t>(), t.data<int32_t>() + t.numel(), v.begin());
  } else {
    return invalid_argument("[cuda] ", what, " must be int64 or int32, not ", dtype_name(t.dtype()));
  }
  return v;
}

namespace {

// ---- elementwise ----

class BinaryKernel final : public runtime::OpKernel {
 public:
  BinaryKernel(BinaryOp op, const char* name) : op_(op), name_(name) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(1));
    if (a->dtype() != b->dtype()) {
      return invalid_argument("[", name_, "] input dtypes differ: ", a->description(), " and ", b->description());
    }
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(a->dtype()));
    ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes(a->shape(), b->shape(), name_));
    ORCHARD_ASSIGN_OR_RETURN(Layout l, layout_over(shape, name_));
    set_broadcast_operand(l, 0, a->shape());
    set_broadcast_operand(l, 1, b->shape());
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, a->dtype(), shape));
    return launch_status(binary(op_, t, a->raw_data(), b->raw_data(), y.raw_data(), l, current_cuda_stream()), name_);
  }

 private:
  BinaryOp op_;
  const char* name_;
};

class UnaryKernel final : public runtime::OpKernel {
 public:
  UnaryKernel(UnaryOp op, float alpha, float beta, bool bounds_from_inputs)
      : op_(op), alpha_(alpha), beta_(beta), bounds_from_inputs_(bounds_from_inputs) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(x->dtype()));
    float alpha = alpha_, beta = beta_;
    if (bounds_from_inputs_) {  // Clip-11+: min and max are optional scalar inputs, read on the host
      for (size_t i = 1; i <= 2; ++i) {
        if (!ctx.has_input(i)) continue;
        const Tensor& b = ctx.input(i);
        if (b.numel() != 1) return invalid_argument("[Clip] bound ", i, " must be a scalar, got ", b.description());
        ORCHARD_ASSIGN_OR_RETURN(const float v, host_float_scalar(b, "[Clip] bound"));
        (i == 1 ? alpha : beta) = v;
      }
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    return launch_status(unary(op_, t, x->raw_data(), y.raw_data(), x->numel(), alpha, beta, current_cuda_stream()),
                         ctx.node().op_type.c_str());
  }

 private:
  UnaryOp op_;
  float alpha_, beta_;
  bool bounds_from_inputs_;
};

struct BinaryName {
  const char* op;
  BinaryOp kind;
};
constexpr BinaryName kBinary[] = {{"Add", BinaryOp::add}, {"Sub", BinaryOp::sub}, {"Mul", BinaryOp::mul},
                                  {"Div", BinaryOp::div}, {"Pow", BinaryOp::pow}, {"Max", BinaryOp::max},
                                  {"Min", BinaryOp::min}};

struct UnaryName {
  const char* op;
  UnaryOp kind;
  const char* alpha_attr;
  float alpha;
  const char* beta_attr;
  float beta;
};
constexpr UnaryName kUnary[] = {
    {"Relu", UnaryOp::relu, nullptr, 0, nullptr, 0},
    {"Sigmoid", UnaryOp::sigmoid, nullptr, 0, nullptr, 0},
    {"Tanh", UnaryOp::tanh, nullptr, 0, nullptr, 0},
    {"Erf", UnaryOp::erf, nullptr, 0, nullptr, 0},
    {"Exp", UnaryOp::exp, nullptr, 0, nullptr, 0},
    {"Log", UnaryOp::log, nullptr, 0, nullptr, 0},
    {"Sqrt", UnaryOp::sqrt, nullptr, 0, nullptr, 0},
    {"Neg", UnaryOp::neg, nullptr, 0, nullptr, 0},
    {"Abs", UnaryOp::abs, nullptr, 0, nullptr, 0},
    {"Reciprocal", UnaryOp::reciprocal, nullptr, 0, nullptr, 0},
    {"Softplus", UnaryOp::softplus, nullptr, 0, nullptr, 0},
    {"Softsign", UnaryOp::softsign, nullptr, 0, nullptr, 0},
    {"LeakyRelu", UnaryOp::leaky_relu, "alpha", 0.01f, nullptr, 0},
    {"Elu", UnaryOp::elu, "alpha", 1.0f, nullptr, 0},
    {"Selu", UnaryOp::selu, "alpha", 1.67326319217681884765625f, "gamma", 1.05070102214813232421875f},
    {"HardSigmoid", UnaryOp::hard_sigmoid, "alpha", 0.2f, "beta", 0.5f},
    {"HardSwish", UnaryOp::hard_swish, nullptr, 0, nullptr, 0},
    // Absent bounds are the float range (ONNX: numeric_limits lowest/max): an infinite input clips to it.
    {"Clip", UnaryOp::clip, "min", -FLT_MAX, "max", FLT_MAX},
    {"Sin", UnaryOp::sin, nullptr, 0, nullptr, 0},
    {"Cos", UnaryOp::cos, nullptr, 0, nullptr, 0},
    {"Floor", UnaryOp::floor, nullptr, 0, nullptr, 0},
    {"Ceil", UnaryOp::ceil, nullptr, 0, nullptr, 0},
};

}  // namespace

// ---- cuBLAS ----

namespace {

// What both cuBLAS entry points check and set up: dims within int, the run's handle, the data types, and the
// operations of the column-major call (row-major C = A B is column-major C^T = B^T A^T, so B comes first).
struct BlasCall {
  cublasHandle_t handle = nullptr;
  cudaDataType dt{}, ct{};
  cublasOperation_t ob{}, oa{};
};

Result<BlasCall> blas_call(DType t, DType c_type, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                           int64_t batch) {
  const int64_t limit = INT32_MAX;
  if (m > limit || n > limit || k > limit || batch > limit) return unsupported("[cuda] GEMM dims above 2^31");
  CudaStream* s = current_stream();
  if (!s) return internal_error("[cuda] GEMM outside a run");
  BlasCall c;
  ORCHARD_ASSIGN_OR_RETURN(c.handle, s->blas());
  ORCHARD_ASSIGN_OR_RETURN(c.dt, blas_type(t));
  ORCHARD_ASSIGN_OR_RETURN(c.ct, blas_type(c_type));
  c.ob = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  c.oa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  return c;
}

}  // namespace

Status gemm_rowmajor(DType t, DType c_type, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b,
                     float beta, void* c, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return Status::OK();
  ORCHARD_ASSIGN_OR_RETURN(const BlasCall bc, blas_call(t, c_type, trans_a, trans_b, m, n, k, batch));
  // k == 0 is valid BLAS (C = beta * C); leading dimensions must still be at least 1.
  const int la = static_cast<int>(std::max<int64_t>(lda, 1)), lb = static_cast<int>(std::max<int64_t>(ldb, 1));
  const cublasStatus_t st = (*cublas_api())->gemm_strided_batched_ex(
      bc.handle, bc.ob, bc.oa, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b, bc.dt, lb,
      stride_b, a, bc.dt, la, stride_a, &beta, c, bc.ct, static_cast<int>(ldc), stride_c, static_cast<int>(batch),
      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS) return cublas_error(st, "cublasGemmStridedBatchedEx");
  return Status::OK();
}

Status gemm_rowmajor_batched(DType t, DType c_type, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                             float alpha, const void* const* a, int64_t lda, const void* const* b, int64_t ldb,
                             float beta, void* const* c, int64_t ldc, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return Status::OK();
  ORCHARD_ASSIGN_OR_RETURN(const BlasCall bc, blas_call(t, c_type, trans_a, trans_b, m, n, k, batch));
  const int la = static_cast<int>(std::max<int64_t>(lda, 1)), lb = static_cast<int>(std::max<int64_t>(ldb, 1));
  const cublasStatus_t st = (*cublas_api())->gemm_batched_ex(
      bc.handle, bc.ob, bc.oa, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b, bc.dt, lb, a,
      bc.dt, la, &beta, c, bc.ct, static_cast<int>(ldc), static_cast<int>(batch), CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS) return cublas_error(st, "cublasGemmBatchedEx");
  return Status::OK();
}

namespace {

// C of A's and B's dtype.
Status gemm_rowmajor(DType t, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const void* a,
                     int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, float beta, void* c,
                     int64_t ldc, int64_t stride_c, int64_t batch) {
  return cuda::gemm_rowmajor(t, t, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                             stride_c, batch);
}

// MatMul, and FusedMatMul when `fused` is set: the product, then the epilogue over the output's last dim; a
// linear layer's FusedMatMul in one cuBLASLt call where its epilogue allows (cuda_gemm_lt.hpp).
class MatMulKernel final : public runtime::OpKernel {
 public:
  explicit MatMulKernel(std::optional<FusedEpilogue> fused) : fused_(fused) {}
  Status run(runtime::OpContext& ctx) const override {
    if (fused_) {
      ORCHARD_ASSIGN_OR_RETURN(bool done, fused_linear(ctx));
      if (done) return Status::OK();
    }
    Tensor y;
    int64_t n = 0;
    ORCHARD_RETURN_IF_ERROR(product(ctx, y, n));
    return fused_ ? apply_epilogue(ctx, *fused_, y, n, 1) : Status::OK();
  }

 private:
  // A [..., K] x B [K, N] (one B for every row of A) with its bias and residual as one cuBLASLt GEMM; false, having
  // done nothing, for anything else or anything invalid (the general path then runs, and names what is wrong).
  Result<bool> fused_linear(runtime::OpContext& ctx) const {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(1));
    const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    const Tensor* z = ctx.has_input(3) ? &ctx.input(3) : nullptr;
    const DType t = a->dtype();
    if (!LtGemm::takes(t, fused_->act, z != nullptr) || b->dtype() != t || a->rank() < 2 || b->rank() != 2) return false;
    const int64_t k = a->dim(a->rank() - 1), n = b->dim(1);
    if (k <= 0 || n <= 0 || b->dim(0) != k || a->numel() == 0) return false;
    if (bias && (bias->dtype() != t || bias->numel() != n)) return false;
    Shape out = a->shape();
    out[out.rank() - 1] = n;
    if (z && (z->dtype() != t || z->shape() != out)) return false;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, t, out));
    const int64_t m = a->numel() / k;
    ORCHARD_ASSIGN_OR_RETURN(bool done, lt_.run(t, m, n, k, a->raw_data(), b->raw_data(), bias ? bias->raw_data() : nullptr,
                                                 z ? z->raw_data() : nullptr, y.raw_data(), fused_->act));
    if (done) return true;
    // No cuBLASLt algorithm for this shape: cuBLAS and the epilogue kernel, into the output already made.
    ORCHARD_RETURN_IF_ERROR(
        gemm_rowmajor(t, false, false, m, n, k, 1.f, a->raw_data(), k, 0, b->raw_data(), n, 0, 0.f, y.raw_data(), n, 0, 1));
    ORCHARD_RETURN_IF_ERROR(apply_epilogue(ctx, *fused_, y, n, 1));
    return true;
  }

  Status product(runtime::OpContext& ctx, Tensor& y, int64_t& n_out) const {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(1));
    if (a->dtype() != b->dtype()) return invalid_argument("[MatMul] dtypes differ: ", a->description(), ", ", b->description());
    if (a->rank() == 0 || b->rank() == 0) return invalid_argument("[MatMul] scalar operand ", a->description(), ", ", b->description());
    // 1-D operands become matrices (and their unit dim is dropped from the result).
    Shape sa = a->rank() == 1 ? Shape{1, a->dim(0)} : a->shape();
    Shape sb = b->rank() == 1 ? Shape{b->dim(0), 1} : b->shape();
    const int64_t m = sa[sa.rank() - 2], k = sa[sa.rank() - 1], n = sb[sb.rank() - 1];
    n_out = n;
    if (sb[sb.rank() - 2] != k) {
      return invalid_argument("[MatMul] inner dims differ: ", a->description(), " x ", b->description());
    }
    const Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
    ORCHARD_ASSIGN_OR_RETURN(Shape batch, broadcast_shapes(ba, bb, "MatMul"));
    std::vector<int64_t> out_dims = batch.dims();
    if (a->rank() != 1) out_dims.push_back(m);
    if (b->rank() != 1) out_dims.push_back(n);
    ORCHARD_ASSIGN_OR_RETURN(y, ctx.make_output(0, a->dtype(), Shape(out_dims)));
    const int64_t nb = batch.numel(), na_b = ba.numel(), nb_b = bb.numel();
    if (k == 0) {
      // Sum over nothing: zeros.
      ORCHARD_CUDA_CALL(cudaMemsetAsync(y.raw_data(), 0, y.nbytes(), current_cuda_stream()));
      return Status::OK();
    }
    if (nb_b == 1) {  // B shared by every batch: one GEMM with the batches folded into M (A is contiguous)
      return gemm_rowmajor(a->dtype(), false, false, na_b * m, n, k, 1.f, a->raw_data(), k, 0, b->raw_data(), n, 0,
                           0.f, y.raw_data(), n, 0, 1);
    }
    if (na_b == nb || na_b == 1) {
      if (nb_b == nb) {
        return gemm_rowmajor(a->dtype(), false, false, m, n, k, 1.f, a->raw_data(), k, na_b == 1 ? 0 : m * k,
                             b->raw_data(), n, k * n, 0.f, y.raw_data(), n, m * n, nb);
      }
    }
    // General broadcasting between batch shapes: one GEMM per output batch.
    ORCHARD_ASSIGN_OR_RETURN(Layout l, layout_over(batch, "MatMul"));
    set_broadcast_operand(l, 0, ba);
    set_broadcast_operand(l, 1, bb);
    const size_t es = dtype_size(a->dtype());
    for (int64_t i = 0; i < nb; ++i) {
      int64_t oa = 0, ob = 0, rest = i;
      for (int d = l.rank - 1; d >= 0; --d) {
        const int64_t c = rest % l.dims[d];
        rest /= l.dims[d];
        oa += c * l.stride[0][d];
        ob += c * l.stride[1][d];
      }
      ORCHARD_RETURN_IF_ERROR(gemm_rowmajor(
          a->dtype(), false, false, m, n, k, 1.f, static_cast<const char*>(a->raw_data()) + oa * m * k * es, k, 0,
          static_cast<const char*>(b->raw_data()) + ob * k * n * es, n, 0, 0.f,
          static_cast<char*>(y.raw_data()) + i * m * n * es, n, 0, 1));
    }
    return Status::OK();
  }

  std::optional<FusedEpilogue> fused_;
  mutable LtGemm lt_;
};

class GemmKernel final : public runtime::OpKernel {
 public:
  GemmKernel(bool ta, bool tb, float alpha, float beta) : ta_(ta), tb_(tb), alpha_(alpha), beta_(beta) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(1));
    if (a->rank() != 2 || b->rank() != 2 || a->dtype() != b->dtype()) {
      return invalid_argument("[Gemm] needs two matrices of one dtype, got ", a->description(), ", ", b->description());
    }
    const int64_t m = ta_ ? a->dim(1) : a->dim(0), k = ta_ ? a->dim(0) : a->dim(1);
    const int64_t kb = tb_ ? b->dim(1) : b->dim(0), n = tb_ ? b->dim(0) : b->dim(1);
    if (k != kb) return invalid_argument("[Gemm] inner dims differ: ", a->description(), " x ", b->description());
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, a->dtype(), Shape{m, n}));
    float beta = 0.f;
    if (ctx.has_input(2) && beta_ != 0.f) {
      const Tensor& c = ctx.input(2);
      if (c.dtype() != a->dtype()) return invalid_argument("[Gemm] C dtype differs: ", c.description());
      ORCHARD_ASSIGN_OR_RETURN(Shape bs, broadcast_shapes(c.shape(), y.shape(), "Gemm"));
      if (bs != y.shape()) return invalid_argument("[Gemm] C ", c.description(), " does not broadcast to ", y.shape().to_string());
      ORCHARD_ASSIGN_OR_RETURN(Layout l, layout_over(y.shape(), "Gemm"));
      set_broadcast_operand(l, 0, c.shape());
      set_broadcast_operand(l, 1, y.shape());
      ORCHARD_RETURN_IF_ERROR(launch_status(
          strided_copy(c.raw_data(), y.raw_data(), dtype_size(c.dtype()), l, current_cuda_stream()), "Gemm bias"));
      beta = beta_;
    }
    return gemm_rowmajor(a->dtype(), ta_, tb_, m, n, k, alpha_, a->raw_data(), a->dim(1), 0, b->raw_data(), b->dim(1),
                         0, beta, y.raw_data(), n, 0, 1);
  }

 private:
  bool ta_, tb_;
  float alpha_, beta_;
};

// ---- normalization and reductions ----

class SoftmaxKernel final : public runtime::OpKernel {
 public:
  SoftmaxKernel(int64_t axis, bool flatten, bool log) : axis_(axis), flatten_(flatten), log_(log) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(x->dtype()));
    const int64_t rank = static_cast<int64_t>(x->rank());
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    // Opset < 13 coerces to 2-D at `axis`, which may then be `rank` (every dim in the outer one).
    if (axis < 0 || axis >= std::max<int64_t>(rank, 1) + (flatten_ ? 1 : 0)) {
      return invalid_argument("[", ctx.node().op_type, "] axis ", axis_, " out of range for rank ", rank);
    }
    int64_t outer = 1, n = 1, inner = 1;
    for (int64_t d = 0; d < rank; ++d) {
      const int64_t v = x->dim(static_cast<size_t>(d));
      if (d < axis) outer *= v;
      else if (d == axis || flatten_) n *= v;
      else inner *= v;
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    return launch_status(softmax(t, x->raw_data(), y.raw_data(), outer, n, inner, log_, current_cuda_stream()),
                         ctx.node().op_type.c_str());
  }

 private:
  int64_t axis_;
  bool flatten_, log_;
};

class LayerNormKernel final : public runtime::OpKernel {
 public:
  LayerNormKernel(int64_t axis, float eps) : axis_(axis), eps_(eps) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* scale, ctx.input_tensor(1));
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(x->dtype()));
    const int64_t rank = static_cast<int64_t>(x->rank());
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (axis < 0 || axis >= rank) return invalid_argument("[LayerNormalization] axis ", axis_, " out of range for rank ", rank);
    int64_t rows = 1, cols = 1;
    for (int64_t d = 0; d < rank; ++d) (d < axis ? rows : cols) *= x->dim(static_cast<size_t>(d));
    const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    // Scale and bias must cover the normalized dims exactly (the broadcasting forms stay on the CPU).
    for (const Tensor* p : {scale, bias}) {
      if (p && (p->numel() != cols || p->dtype() != x->dtype())) {
        return unsupported("[LayerNormalization] scale/bias ", p->description(), " for ", x->description(), " axis ", axis);
      }
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    return launch_status(layer_norm(t, x->raw_data(), scale->raw_data(), bias ? bias->raw_data() : nullptr,
                                    y.raw_data(), rows, cols, eps_, current_cuda_stream()),
                         "LayerNormalization");
  }

 private:
  int64_t axis_;
  float eps_;
};

class ReduceKernel final : public runtime::OpKernel {
 public:
  ReduceKernel(ReduceOp op, std::vector<int64_t> axes, bool axes_input, bool keepdims, bool noop_empty)
      : op_(op), axes_(std::move(axes)), axes_input_(axes_input), keepdims_(keepdims), noop_empty_(noop_empty) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(x->dtype()));
    const std::string& name = ctx.node().op_type;
    std::vector<int64_t> axes = axes_;
    if (axes_input_ && ctx.has_input(1)) {
      ORCHARD_ASSIGN_OR_RETURN(axes, host_ints(ctx.input(1), "axes"));
    }
    const int64_t rank = static_cast<int64_t>(x->rank());
    if (axes.empty()) {
      if (noop_empty_) {
        ctx.set_output(0, ctx.value(0));
        return Status::OK();
      }
      for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
    }
    std::vector<bool> reduced(static_cast<size_t>(rank), false);
    for (int64_t a : axes) {
      const int64_t ax = a < 0 ? a + rank : a;
      if (ax < 0 || ax >= rank) return invalid_argument("[", name, "] axis ", a, " out of range for rank ", rank);
      reduced[static_cast<size_t>(ax)] = true;
    }
    // One pass per reduced axis, innermost first; mean and sum of squares combine passes plainly.
    Shape cur = x->shape();
    Tensor src = *x;
    std::vector<int64_t> out_dims;
    for (int64_t d = 0; d < rank; ++d) {
      if (!reduced[static_cast<size_t>(d)]) out_dims.push_back(x->dim(static_cast<size_t>(d)));
      else if (keepdims_) out_dims.push_back(1);
    }
    int passes = 0;
    for (int64_t d = rank - 1; d >= 0; --d) passes += reduced[static_cast<size_t>(d)] ? 1 : 0;
    int done = 0;
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (!reduced[static_cast<size_t>(d)]) continue;
      int64_t outer = 1, inner = 1;
      for (int64_t e = 0; e < rank; ++e) {
        if (e < d) outer *= cur[static_cast<size_t>(e)];
        else if (e > d) inner *= cur[static_cast<size_t>(e)];
      }
      const int64_t n = cur[static_cast<size_t>(d)];
      cur[static_cast<size_t>(d)] = 1;
      ++done;
      Tensor dst;
      if (done == passes) {
        ORCHARD_ASSIGN_OR_RETURN(dst, ctx.make_output(0, x->dtype(), Shape(out_dims)));
      } else {
        ORCHARD_ASSIGN_OR_RETURN(dst, Tensor::create(x->dtype(), cur, ctx.allocator()));
      }
      const ReduceOp pass = done == 1 || op_ != ReduceOp::sum_square ? op_ : ReduceOp::sum;
      ORCHARD_RETURN_IF_ERROR(launch_status(
          reduce(pass, t, src.raw_data(), dst.raw_data(), outer, n, inner, current_cuda_stream()), name.c_str()));
      src = dst;
    }
    return Status::OK();
  }

 private:
  ReduceOp op_;
  std::vector<int64_t> axes_;
  bool axes_input_, keepdims_, noop_empty_;
};

// GlobalAveragePool / GlobalMaxPool: a mean or max over every dim after the first two.
class GlobalPoolKernel final : public runtime::OpKernel {
 public:
  explicit GlobalPoolKernel(ReduceOp op) : op_(op) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(x->dtype()));
    if (x->rank() < 3) return invalid_argument("[", ctx.node().op_type, "] input ", x->description(), " has rank below 3");
    std::vector<int64_t> dims = {x->dim(0), x->dim(1)};
    int64_t spatial = 1;
    for (size_t d = 2; d < x->rank(); ++d) {
      spatial *= x->dim(d);
      dims.push_back(1);
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), Shape(dims)));
    return launch_status(reduce(op_, t, x->raw_data(), y.raw_data(), x->dim(0) * x->dim(1), spatial, 1,
                                current_cuda_stream()),
                         ctx.node().op_type.c_str());
  }

 private:
  ReduceOp op_;
};

}  // namespace

KernelResult create_global_pool(const runtime::KernelCreateContext& ctx) {
  return std::unique_ptr<runtime::OpKernel>(
      new GlobalPoolKernel(ctx.node.op_type == "GlobalMaxPool" ? ReduceOp::max : ReduceOp::mean));
}

KernelResult create_binary(const runtime::KernelCreateContext& ctx) {
  for (const auto& b : kBinary) {
    if (ctx.node.op_type != b.op) continue;
    if ((b.kind == BinaryOp::max || b.kind == BinaryOp::min) && ctx.node.inputs.size() != 2) {
      return unsupported("[cuda] ", b.op, " with ", ctx.node.inputs.size(), " inputs (the CUDA kernel takes two)");
    }
    const DType ta = ctx.input_type(0).dtype, tb = ctx.input_type(1).dtype;
    if (ta != DType::undefined && tb != DType::undefined && ta != tb) {
      return unsupported("[cuda] ", b.op, " of ", dtype_name(ta), " and ", dtype_name(tb));
    }
    return std::unique_ptr<runtime::OpKernel>(new BinaryKernel(b.kind, b.op));
  }
  return unsupported("[cuda] no binary kernel for ", ctx.node.op_type);
}

KernelResult create_unary(const runtime::KernelCreateContext& ctx) {
  if (ctx.node.op_type == "Gelu") {  // com.orchard Gelu
    const std::string approx = ctx.node.attr_string("approximate", "none");
    if (approx != "none" && approx != "tanh") return invalid_argument("[Gelu] approximate '", approx, "'");
    return std::unique_ptr<runtime::OpKernel>(
        new UnaryKernel(approx == "tanh" ? UnaryOp::gelu_tanh : UnaryOp::gelu, 0.f, 0.f, false));
  }
  for (const auto& u : kUnary) {
    if (ctx.node.op_type != u.op) continue;
    const float alpha = u.alpha_attr ? ctx.node.attr_float(u.alpha_attr, u.alpha) : u.alpha;
    const float beta = u.beta_attr ? ctx.node.attr_float(u.beta_attr, u.beta) : u.beta;
    const bool clip_inputs = u.kind == UnaryOp::clip && ctx.node.opset >= 11;
    return std::unique_ptr<runtime::OpKernel>(new UnaryKernel(u.kind, alpha, beta, clip_inputs));
  }
  return unsupported("[cuda] no unary kernel for ", ctx.node.op_type);
}

KernelResult create_matmul(const runtime::KernelCreateContext& ctx) {
  std::optional<FusedEpilogue> fused;
  if (ctx.node.op_type == "FusedMatMul") {
    ORCHARD_ASSIGN_OR_RETURN(fused, fused_epilogue(ctx.node));
  }
  return std::unique_ptr<runtime::OpKernel>(new MatMulKernel(fused));
}

KernelResult create_gemm(const runtime::KernelCreateContext& ctx) {
  const auto& n = ctx.node;
  return std::unique_ptr<runtime::OpKernel>(new GemmKernel(n.attr_int("transA", 0) != 0, n.attr_int("transB", 0) != 0,
                                                           n.attr_float("alpha", 1.f), n.attr_float("beta", 1.f)));
}

KernelResult create_softmax(const runtime::KernelCreateContext& ctx) {
  const bool flatten = ctx.node.opset < 13;
  return std::unique_ptr<runtime::OpKernel>(
      new SoftmaxKernel(ctx.node.attr_int("axis", flatten ? 1 : -1), flatten, ctx.node.op_type == "LogSoftmax"));
}

KernelResult create_layer_norm(const runtime::KernelCreateContext& ctx) {
  for (size_t i = 1; i < ctx.node.outputs.size(); ++i) {
    if (!ctx.node.outputs[i].empty()) return unsupported("[cuda] LayerNormalization's Mean/InvStdDev outputs");
  }
  return std::unique_ptr<runtime::OpKernel>(
      new LayerNormKernel(ctx.node.attr_int("axis", -1), ctx.node.attr_float("epsilon", 1e-5f)));
}

KernelResult create_reduce(const runtime::KernelCreateContext& ctx) {
  const std::string& op = ctx.node.op_type;
  const ReduceOp kind = op == "ReduceSum" ? ReduceOp::sum
                        : op == "ReduceMean" ? ReduceOp::mean
                        : op == "ReduceMax" ? ReduceOp::max
                        : op == "ReduceMin" ? ReduceOp::min
                                            : ReduceOp::sum_square;
  // ReduceSum-13 takes axes as an input; the others take the attribute up to opset 17.
  const bool axes_input = op == "ReduceSum" && ctx.node.opset >= 13;
  const bool noop = axes_input && ctx.node.attr_int("noop_with_empty_axes", 0) != 0;
  return std::unique_ptr<runtime::OpKernel>(new ReduceKernel(kind, ctx.node.attr_ints("axes"), axes_input,
                                                             ctx.node.attr_int("keepdims", 1) != 0, noop));
}

}  // namespace orchard::cuda
