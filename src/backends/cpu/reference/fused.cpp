// Orchard's fused ops (domain com.orchard, docs/fused_ops.md): FusedConv (NCHW, or NHWC by the layout attribute)
// and FusedMatMul, as the plain composition the contract states: the reference convolution / matrix product
// (dense.hpp), then the bias, the residual Z and the activation (apply_activation_ref), one pass each. float32 only.
#include <array>
#include <string>
#include <vector>

#include "backends/cpu/copy_util.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/opt/epilogue.hpp"
#include "backends/cpu/reference/dense.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

// Returns input i as a float32 tensor (invalid_argument naming it otherwise).
Result<const Tensor*> float_input(const OpContext& ctx, size_t i, const char* name) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(i));
  if (t->dtype() != DType::float32) return invalid_argument(name, " must be float32, got ", t->description());
  return t;
}

// y += z elementwise, then y = act(y); z (the residual, optional) must have y's shape.
Status residual_and_activation(const OpContext& ctx, size_t z_input, const ActivationSpec& act, Tensor& y) {
  float* py = y.data<float>();
  if (ctx.has_input(z_input)) {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* z, float_input(ctx, z_input, "Z"));
    if (z->shape() != y.shape()) {
      return invalid_argument("Z of shape ", z->shape().to_string(), " must have the output's shape ",
                              y.shape().to_string());
    }
    const float* pz = z->data<float>();
    for (int64_t i = 0; i < y.numel(); ++i) py[i] += pz[i];
  }
  apply_activation_ref(act, py, y.numel());
  return Status::OK();
}

// FusedMatMul: act(MatMul(A, B) + bias + Z), bias of shape [N].
class FusedMatMulRef final : public OpKernel {
 public:
  explicit FusedMatMulRef(const KernelCreateContext& ctx) : act_(*parse_activation(ctx.node)) {}
  static Status validate(const KernelCreateContext& ctx) { return parse_activation(ctx.node).status(); }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, float_input(ctx, 0, "A"));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, float_input(ctx, 1, "B"));
    ORCHARD_ASSIGN_OR_RETURN(MatMulPlan p, plan_matmul(a->shape(), b->shape()));
    const Tensor* bias = nullptr;
    if (ctx.has_input(2)) {
      ORCHARD_ASSIGN_OR_RETURN(bias, float_input(ctx, 2, "bias"));
      if (bias->rank() != 1 || bias->dim(0) != p.N) {
        return invalid_argument("bias of shape ", bias->shape().to_string(), " must have shape [", p.N, "]");
      }
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, p.out));
    if (y.numel() == 0) return Status::OK();
    float* py = y.data<float>();
    matmul_plain<float>(p, a->data<float>(), b->data<float>(), py);
    if (bias != nullptr) {
      const float* pb = bias->data<float>();
      for (int64_t i = 0; i < y.numel(); ++i) py[i] += pb[i % p.N];
    }
    return residual_and_activation(ctx, 3, act_, y);
  }

 private:
  ActivationSpec act_;
};

// Returns whether a FusedConv node has layout "nhwc" (X, Z and Y [N, H, W, C], W [M, kH, kW, C/group]);
// invalid_argument for a layout other than "nchw" / "nhwc".
Result<bool> conv_channels_last(const graph::Node& node) {
  const std::string layout = node.attr_string("layout", "nchw");
  if (layout != "nchw" && layout != "nhwc") return invalid_argument("FusedConv layout '", layout, "' (nchw or nhwc)");
  return layout == "nhwc";
}

// Writes `t` (rank 4) with its dims reordered by `perm` (dim k of the result is dim perm[k] of t) to `out`,
// contiguous.
void permute_into(const Tensor& t, const std::array<size_t, 4>& perm, float* out, ThreadPool& pool) {
  std::vector<int64_t> dims(4), strides(4);
  std::vector<int64_t> st(4, 1);
  for (size_t d = 3; d-- > 0;) st[d] = st[d + 1] * t.dim(d + 1);
  for (size_t k = 0; k < 4; ++k) {
    dims[k] = t.dim(perm[k]);
    strides[k] = st[perm[k]];
  }
  strided_copy(t.data<float>(), 0, dims, strides, out, pool);
}

Tensor permuted(const Tensor& t, const std::array<size_t, 4>& perm, ThreadPool& pool) {
  Tensor out = Tensor::empty(DType::float32, Shape{t.dim(perm[0]), t.dim(perm[1]), t.dim(perm[2]), t.dim(perm[3])});
  permute_into(t, perm, out.data<float>(), pool);
  return out;
}

constexpr std::array<size_t, 4> kToNchw = {0, 3, 1, 2};  // NHWC → NCHW (and OHWI weights → OIHW)
constexpr std::array<size_t, 4> kToNhwc = {0, 2, 3, 1};

Shape permuted_shape(const Shape& s, const std::array<size_t, 4>& perm) {
  return Shape{s[perm[0]], s[perm[1]], s[perm[2]], s[perm[3]]};
}

// FusedConv: act(Conv(X, W, B) + Z). In the nhwc layout the convolution runs on NCHW copies of X and W and its
// result is transposed back before Z and the activation: the plain composition of the contract.
class FusedConvRef final : public OpKernel {
 public:
  explicit FusedConvRef(const KernelCreateContext& ctx)
      : node_(ctx.node), act_(*parse_activation(ctx.node)), nhwc_(*conv_channels_last(ctx.node)) {}

  static Status validate(const KernelCreateContext& ctx) {
    ORCHARD_RETURN_IF_ERROR(parse_activation(ctx.node).status());
    ORCHARD_RETURN_IF_ERROR(conv_channels_last(ctx.node).status());
    return validate_conv(ctx);
  }

  bool has_reshape() const override { return true; }

  Result<std::shared_ptr<const runtime::KernelState>> reshape(std::span<const Shape> shapes) const override {
    if (!nhwc_) return conv_state(node_, shapes);
    if (shapes.size() < 2 || shapes[0].rank() != 4 || shapes[1].rank() != 4) {
      return invalid_argument("layout nhwc takes X and W of rank 4");
    }
    const Shape nchw[2] = {permuted_shape(shapes[0], kToNchw), permuted_shape(shapes[1], kToNchw)};
    return conv_state(node_, nchw);
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, float_input(ctx, 0, "X"));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* w, float_input(ctx, 1, "W"));
    const ConvState* state = ctx.state<ConvState>();
    if (state == nullptr) return internal_error("run without reshape");
    const ConvGeom& g = state->g;
    const Tensor* b = nullptr;
    if (ctx.has_input(2)) {
      ORCHARD_ASSIGN_OR_RETURN(b, float_input(ctx, 2, "B"));
      if (b->numel() != g.M) return invalid_argument("B has ", b->numel(), " values for ", g.M, " output channels");
    }
    const Shape out = conv_output_shape(g);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, nhwc_ ? permuted_shape(out, kToNhwc) : out));
    if (y.numel() == 0) return Status::OK();
    if (!nhwc_) {
      conv_direct<float>(g, x->data<float>(), w->data<float>(), b ? b->data<float>() : nullptr, y.data<float>(),
                         ctx.pool());
    } else {
      const Tensor xc = permuted(*x, kToNchw, ctx.pool()), wc = permuted(*w, kToNchw, ctx.pool());
      Tensor yc = Tensor::empty(DType::float32, out);
      conv_direct<float>(g, xc.data<float>(), wc.data<float>(), b ? b->data<float>() : nullptr, yc.data<float>(),
                         ctx.pool());
      permute_into(yc, kToNhwc, y.data<float>(), ctx.pool());
    }
    return residual_and_activation(ctx, 3, act_, y);
  }

 private:
  const graph::Node& node_;
  ActivationSpec act_;
  bool nhwc_;
};

constexpr KernelDef kKernels[] = {
    {"com.orchard", "FusedConv", 1, 1, make<FusedConvRef>, {DType::float32}},
    {"com.orchard", "FusedMatMul", 1, 1, make<FusedMatMulRef>, {DType::float32}},
};

}  // namespace

std::span<const KernelDef> fused_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
