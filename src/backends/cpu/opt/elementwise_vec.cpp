// Vectorised float32 elementwise kernels: Add/Sub/Mul/Div with numpy broadcasting (the operands' dims are
// coalesced, so same shape, scalar, [*, N] + [N] and NCHW + [1, C, 1, 1] all become rows of one inner loop),
// the unary math and activation ops, Clip, Pow by a constant 2, 0.5 or 3, and com.orchard Gelu.
#include <cmath>
#include <limits>
#include <string>

#include "backends/cpu/opt/vec_math_kernels.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/kernel_inputs.hpp"

namespace orchard::cpu::opt {

namespace {

// ---- binary --------------------------------------------------------------------------------------

// y = a op b over the broadcast `out` of a's and b's shapes, all float32.
void binary_broadcast(ThreadPool& pool, BinaryOp op, const Tensor& a, const Tensor& b, float* y, const Shape& out) {
  // Coalesce: drop unit dims of the output, merge neighbours where each operand is broadcast in both or
  // in neither. Each coalesced dim d then has a size and, per operand, a step (0 when broadcast).
  const size_t rank = out.rank();
  std::vector<int64_t> size;
  std::vector<bool> a_bc, b_bc;
  for (size_t d = 0; d < rank; ++d) {
    if (out[d] == 1) continue;
    const size_t da = d + a.rank() - rank, db = d + b.rank() - rank;  // wrap below 0: operand lacks the dim
    const bool ba = d + a.rank() < rank || a.dim(da) == 1;
    const bool bb = d + b.rank() < rank || b.dim(db) == 1;
    if (!size.empty() && a_bc.back() == ba && b_bc.back() == bb) {
      size.back() *= out[d];
    } else {
      size.push_back(out[d]);
      a_bc.push_back(ba);
      b_bc.push_back(bb);
    }
  }
  if (size.empty()) {
    size.push_back(1);
    a_bc.push_back(false);
    b_bc.push_back(false);
  }
  const size_t k = size.size();
  std::vector<int64_t> sa(k), sb(k);
  int64_t acc_a = 1, acc_b = 1;
  for (size_t d = k; d-- > 0;) {
    sa[d] = a_bc[d] ? 0 : acc_a;
    sb[d] = b_bc[d] ? 0 : acc_b;
    if (!a_bc[d]) acc_a *= size[d];
    if (!b_bc[d]) acc_b *= size[d];
  }
  const int64_t n = size[k - 1];
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < k; ++d) rows *= size[d];
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  const VecKernels& vk = vec_kernels();
  const bool a_vec = !a_bc[k - 1], b_vec = !b_bc[k - 1];
  if (rows == 1) {  // one run (same shapes, or a scalar operand): split the run itself over threads
    parallel_range(pool, n, [&](int64_t b, int64_t e) {
      if (a_vec && b_vec)
        vk.binary_vv(op, pa + b, pb + b, y + b, e - b);
      else if (a_vec)
        vk.binary_vs(op, pa + b, pb[0], y + b, e - b);
      else
        vk.binary_sv(op, pa[0], pb + b, y + b, e - b);
    });
    return;
  }
  parallel_items(pool, rows, n, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      int64_t oa = 0, ob = 0, rem = r;
      for (size_t d = k - 1; d-- > 0;) {
        const int64_t i = rem % size[d];
        rem /= size[d];
        oa += i * sa[d];
        ob += i * sb[d];
      }
      float* dst = y + r * n;
      if (a_vec && b_vec)
        vk.binary_vv(op, pa + oa, pb + ob, dst, n);
      else if (a_vec)
        vk.binary_vs(op, pa + oa, pb[ob], dst, n);
      else
        vk.binary_sv(op, pa[oa], pb + ob, dst, n);
    }
  });
}

template <BinaryOp Op>
class BinaryKernel final : public VecKernel {
 public:
  BinaryKernel(const KernelCreateContext&, std::unique_ptr<OpKernel> reference) : VecKernel(std::move(reference)) {}
  // From opset 7 (numpy broadcasting), float32 operands.
  static bool accepts(const KernelCreateContext& c) { return c.node.opset >= 7 && maybe_f32(c, 0) && maybe_f32(c, 1); }

  Status run(OpContext& ctx) const override {
    if (!ctx.has_input(0) || !ctx.has_input(1) || !ctx.value(0).is_tensor() || !ctx.value(1).is_tensor()) {
      return run_reference(ctx);
    }
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    if (a.dtype() != DType::float32 || b.dtype() != DType::float32) return run_reference(ctx);
    auto shape = broadcast_shapes({&a.shape(), &b.shape()});
    if (!shape.ok()) return run_reference(ctx);  // the reference words the error
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, *shape));
    if (y.numel() == 0) return Status::OK();
    binary_broadcast(ctx.pool(), Op, a, b, y.data<float>(), *shape);
    return Status::OK();
  }
};

// ---- unary ---------------------------------------------------------------------------------------

// y = op(x) with parameters p0, p1, over float32 x.
Status unary_run(OpContext& ctx, UnaryOp op, float p0, float p1) {
  const Tensor& x = ctx.input(0);
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, x.shape()));
  const float* px = x.data<float>();
  float* py = y.data<float>();
  const VecKernels& vk = vec_kernels();
  parallel_range(ctx.pool(), x.numel(), [&](int64_t b, int64_t e) { vk.unary(op, p0, p1, px + b, py + b, e - b); });
  return Status::OK();
}

bool is_f32_tensor(const OpContext& ctx, size_t i) {
  return ctx.has_input(i) && ctx.value(i).is_tensor() && ctx.input(i).dtype() == DType::float32;
}

// A unary op whose parameters come from attributes (Params::read) at create.
template <UnaryOp Op, class Params>
class UnaryKernel final : public VecKernel {
 public:
  UnaryKernel(const KernelCreateContext& c, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)), p_(Params::read(c.node)) {}
  static bool accepts(const KernelCreateContext& c) { return c.node.opset >= 6 && maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    if (!is_f32_tensor(ctx, 0)) return run_reference(ctx);
    return unary_run(ctx, Op, p_[0], p_[1]);
  }

 private:
  std::array<float, 2> p_;
};

struct NoParams {
  static std::array<float, 2> read(const graph::Node&) { return {0, 0}; }
};
struct LeakyParams {
  static std::array<float, 2> read(const graph::Node& n) { return {n.attr_float("alpha", 0.01f), 0}; }
};
struct HardSigmoidParams {
  static std::array<float, 2> read(const graph::Node& n) {
    return {n.attr_float("alpha", 0.2f), n.attr_float("beta", 0.5f)};
  }
};

// Clip: bounds from attributes before opset 11, else from the optional one-element inputs 1 and 2.
class ClipKernel final : public VecKernel {
 public:
  ClipKernel(const KernelCreateContext& c, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)),
        lo_(c.node.attr_float("min", std::numeric_limits<float>::lowest())),
        hi_(c.node.attr_float("max", std::numeric_limits<float>::max())) {}
  static bool accepts(const KernelCreateContext& c) { return c.node.opset >= 6 && maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    if (!is_f32_tensor(ctx, 0)) return run_reference(ctx);
    float lo = lo_, hi = hi_;
    if (ctx.node().opset >= 11) {
      lo = std::numeric_limits<float>::lowest();
      hi = std::numeric_limits<float>::max();
      for (size_t i = 1; i <= 2; ++i) {
        if (!ctx.has_input(i)) continue;
        if (!is_f32_tensor(ctx, i) || ctx.input(i).numel() != 1) return run_reference(ctx);  // its error
        (i == 1 ? lo : hi) = ctx.input(i).data<float>()[0];
      }
    }
    return unary_run(ctx, UnaryOp::clip, lo, hi);
  }

 private:
  float lo_, hi_;
};

// Returns the value of a constant one-element numeric input i, or NaN.
double constant_scalar(const KernelCreateContext& c, size_t i) {
  const Tensor* t = c.constant_input(i);
  if (!t || t->numel() != 1 || !(dtype_is_float(t->dtype()) || dtype_is_integer(t->dtype()))) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return element_as_double(*t, 0);
}

// Pow with a constant exponent of 2, 0.5 or 3 (x*x, sqrt with pow's -0 and -inf results, x*x*x).
class PowKernel final : public VecKernel {
 public:
  PowKernel(const KernelCreateContext& c, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)), e_(constant_scalar(c, 1)) {}
  static bool accepts(const KernelCreateContext& c) {
    const double e = constant_scalar(c, 1);
    return c.node.opset >= 7 && maybe_f32(c, 0) && (e == 2 || e == 0.5 || e == 3);
  }

  Status run(OpContext& ctx) const override {
    if (!is_f32_tensor(ctx, 0) || !ctx.has_input(1) || ctx.input(1).rank() > ctx.input(0).rank()) {
      return run_reference(ctx);  // the exponent would add dims to the output
    }
    if (e_ == 2) return unary_run(ctx, UnaryOp::square, 0, 0);
    if (e_ == 3) return unary_run(ctx, UnaryOp::cube, 0, 0);
    return unary_run(ctx, UnaryOp::pow_half, 0, 0);
  }

 private:
  double e_;
};

// com.orchard Gelu (docs/fused_ops.md).
class GeluKernel final : public VecKernel {
 public:
  GeluKernel(const KernelCreateContext& c, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)),
        op_(c.node.attr_string("approximate", "none") == "tanh" ? UnaryOp::gelu_tanh : UnaryOp::gelu_erf) {}
  static bool accepts(const KernelCreateContext& c) { return maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    if (!is_f32_tensor(ctx, 0)) return run_reference(ctx);
    return unary_run(ctx, op_, 0, 0);
  }

 private:
  UnaryOp op_;
};

template <UnaryOp Op, class P = NoParams>
constexpr KernelFactory unary = make_vec<UnaryKernel<Op, P>>;

constexpr KernelDef kKernels[] = {
    vec_def("", "Add", 7, kVerifiedOpset, make_vec<BinaryKernel<BinaryOp::add>>),
    vec_def("", "Sub", 7, kVerifiedOpset, make_vec<BinaryKernel<BinaryOp::sub>>),
    vec_def("", "Mul", 7, kVerifiedOpset, make_vec<BinaryKernel<BinaryOp::mul>>),
    vec_def("", "Div", 7, kVerifiedOpset, make_vec<BinaryKernel<BinaryOp::div>>),
    vec_def("", "Relu", 6, kVerifiedOpset, unary<UnaryOp::relu>),
    vec_def("", "Neg", 6, kVerifiedOpset, unary<UnaryOp::neg>),
    vec_def("", "Abs", 6, kVerifiedOpset, unary<UnaryOp::abs>),
    vec_def("", "Sqrt", 6, kVerifiedOpset, unary<UnaryOp::sqrt>),
    vec_def("", "Reciprocal", 6, kVerifiedOpset, unary<UnaryOp::reciprocal>),
    vec_def("", "Exp", 6, kVerifiedOpset, unary<UnaryOp::exp>),
    vec_def("", "Log", 6, kVerifiedOpset, unary<UnaryOp::log>),
    vec_def("", "Sigmoid", 6, kVerifiedOpset, unary<UnaryOp::sigmoid>),
    vec_def("", "Tanh", 6, kVerifiedOpset, unary<UnaryOp::tanh>),
    vec_def("", "Erf", 9, kVerifiedOpset, unary<UnaryOp::erf>),
    vec_def("", "HardSwish", 14, kVerifiedOpset, unary<UnaryOp::hardswish>),
    vec_def("", "HardSigmoid", 6, kVerifiedOpset, unary<UnaryOp::hardsigmoid, HardSigmoidParams>),
    vec_def("", "LeakyRelu", 6, kVerifiedOpset, unary<UnaryOp::leaky_relu, LeakyParams>),
    vec_def("", "Clip", 6, kVerifiedOpset, make_vec<ClipKernel>),
    vec_def("", "Pow", 7, kVerifiedOpset, make_vec<PowKernel>),
    vec_def("com.orchard", "Gelu", 1, 1, make_vec<GeluKernel>),
};

}  // namespace

std::span<const KernelDef> elementwise_vec_kernels() { return kKernels; }

}  // namespace orchard::cpu::opt
