// Elementwise math, logic and activations.
#include <cmath>

#include "backends/cpu/kernel_util.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

// Applies a binary op with numpy broadcasting: out[i] = op(a[i], b[i]) in compute_t<T>.
template <class T, class Out, class Op>
Status binary_broadcast(OpContext& ctx, DType out_dtype, Op op) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes({&a.shape(), &b.shape()}));
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, out_dtype, shape));
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  Out* py = y.data<Out>();
  std::array<std::vector<int64_t>, 2> strides{broadcast_strides(a.shape(), shape), broadcast_strides(b.shape(), shape)};
  broadcast_runs<2>(shape, strides, [&](int64_t o, const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
    const T* x0 = pa + off[0];
    const T* x1 = pb + off[1];
    Out* dst = py + o;
    for (int64_t k = 0; k < n; ++k) dst[k] = store<Out>(op(load(x0[k * st[0]]), load(x1[k * st[1]])));
  });
  return Status::OK();
}

Status check_same_dtype(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(1));
  if (a->dtype() != b->dtype()) {
    return invalid_argument("inputs have different element types: ", a->description(), " and ", b->description());
  }
  return Status::OK();
}

template <class Op>
Status arithmetic(OpContext& ctx, Op op) {
  ORCHARD_RETURN_IF_ERROR(check_same_dtype(ctx));
  const DType dt = ctx.input(0).dtype();
  return dispatch<kNumeric>(dt, ctx.node().op_type, [&](auto tag) {
    using T = decltype(tag);
    return binary_broadcast<T, T>(ctx, dt, [&](auto x, auto y) { return op(x, y); });
  });
}

Status add(OpContext& ctx) { return arithmetic(ctx, [](auto x, auto y) { return x + y; }); }
Status sub(OpContext& ctx) { return arithmetic(ctx, [](auto x, auto y) { return x - y; }); }
Status mul(OpContext& ctx) { return arithmetic(ctx, [](auto x, auto y) { return x * y; }); }
Status div(OpContext& ctx) {
  return arithmetic(ctx, [](auto x, auto y) {
    using C = decltype(x);
    if constexpr (std::is_integral_v<C>) {
      return y == 0 ? C(0) : static_cast<C>(x / y);  // integer division by zero is undefined in ONNX; give 0
    } else {
      return x / y;
    }
  });
}

Status relu(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  return dispatch<kFloats | kSignedInts>(x->dtype(), "Relu", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    const T* in = x->data<T>();
    T* out = y.data<T>();
    for (int64_t i = 0; i < x->numel(); ++i) {
      auto v = load(in[i]);
      out[i] = store<T>(v > 0 ? v : decltype(v)(0));
    }
    return Status::OK();
  });
}

// Identity passes its input through (tensor, sequence or optional) without copying.
Status identity(OpContext& ctx) {
  if (!ctx.has_input(0)) return invalid_argument("input 0 is missing");
  ctx.set_output(0, ctx.value(0));
  return Status::OK();
}

constexpr KernelDef kKernels[] = {
    {"", "Add", 7, kLatest, stateless<add>},
    {"", "Sub", 7, kLatest, stateless<sub>},
    {"", "Mul", 7, kLatest, stateless<mul>},
    {"", "Div", 7, kLatest, stateless<div>},
    {"", "Relu", 6, kLatest, stateless<relu>},
    {"", "Identity", 1, kLatest, stateless<identity>},
};

}  // namespace

std::span<const KernelDef> elementwise_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
