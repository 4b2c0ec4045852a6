// CUDA op kernels for masks, selection, pooling and fills: comparisons and logical ops (boolean results),
// IsNaN, Not, Where, MaxPool/AveragePool (2-D), BatchNormalization (inference), ConstantOfShape and Range
// (float outputs; integer ones stay with the shape arithmetic on the CPU).
#include <algorithm>
#include <cmath>

#include "backends/cpu/shape_util.hpp"
#include "backends/cuda/cuda_ops.hpp"

namespace orchard::cuda {

namespace {

// ---- comparisons, logical ops, Where ----

class PredicateKernel final : public runtime::OpKernel {
 public:
  explicit PredicateKernel(PredicateOp op) : op_(op) {}
  Status run(runtime::OpContext& ctx) const override {
    const char* name = ctx.node().op_type.c_str();
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(1));
    if (a->dtype() != b->dtype()) {
      return invalid_argument("[", name, "] input dtypes differ: ", a->description(), " and ", b->description());
    }
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(a->dtype()));
    ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes(a->shape(), b->shape(), name));
    ORCHARD_ASSIGN_OR_RETURN(Layout l, layout_over(shape, name));
    set_broadcast_operand(l, 0, a->shape());
    set_broadcast_operand(l, 1, b->shape());
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::boolean, shape));
    return launch_status(predicate(op_, t, a->raw_data(), b->raw_data(), y.data<bool>(), l, current_cuda_stream()), name);
  }

 private:
  PredicateOp op_;
};

// IsNaN (float input) and Not (boolean input).
class PredicateUnaryKernel final : public runtime::OpKernel {
 public:
  explicit PredicateUnaryKernel(bool is_nan) : is_nan_(is_nan) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(x->dtype()));
    if ((t == Elem::boolean) == is_nan_) {
      return unsupported("[", ctx.node().op_type, "] input ", x->description());
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::boolean, x->shape()));
    return launch_status(predicate_unary(is_nan_, t, x->raw_data(), y.data<bool>(), x->numel(), current_cuda_stream()),
                         ctx.node().op_type.c_str());
  }

 private:
  bool is_nan_;
};

class WhereKernel final : public runtime::OpKernel {
 public:
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* c, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(1));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* y, ctx.input_tensor(2));
    if (c->dtype() != DType::boolean || x->dtype() != y->dtype()) {
      return invalid_argument("[Where] needs a boolean condition and one value dtype, got ", c->description(), ", ",
                              x->description(), ", ", y->description());
    }
    ORCHARD_ASSIGN_OR_RETURN(Shape xy, broadcast_shapes(x->shape(), y->shape(), "Where"));
    ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes(c->shape(), xy, "Where"));
    ORCHARD_ASSIGN_OR_RETURN(Layout l, layout_over(shape, "Where"));
    set_broadcast_operand(l, 0, c->shape());
    set_broadcast_operand(l, 1, x->shape());
    set_broadcast_operand(l, 2, y->shape());
    ORCHARD_ASSIGN_OR_RETURN(Tensor out, ctx.make_output(0, x->dtype(), shape));
    return launch_status(where(c->data<bool>(), x->raw_data(), y->raw_data(), out.raw_data(), dtype_size(x->dtype()), l,
                               current_cuda_stream()),
                         "Where");
  }
};

// ---- pooling ----

// MaxPool (without the Indices output) and AveragePool over two spatial dims; geometry as the CPU's.
class Pool2dKernel final : public runtime::OpKernel {
 public:
  explicit Pool2dKernel(bool max) : max_(max) {}
  Status run(runtime::OpContext& ctx) const override {
    const graph::Node& node = ctx.node();
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(x->dtype()));
    if (x->rank() != 4) return unsupported("[", node.op_type, "] input ", x->description(), " (CUDA: 2-D pooling only)");
    const std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
    std::vector<int64_t> stride = node.attr_ints("strides", {1, 1});
    std::vector<int64_t> dilation = node.attr_ints("dilations", {1, 1});
    std::vector<int64_t> pads = node.attr_ints("pads", {0, 0, 0, 0});
    if (kernel.size() != 2 || stride.size() != 2 || dilation.size() != 2 || pads.size() != 4) {
      return invalid_argument("[", node.op_type, "] kernel_shape, strides, dilations and pads must have 2, 2, 2 and 4 values");
    }
    for (int d = 0; d < 2; ++d) {
      if (kernel[d] < 1 || stride[d] < 1 || dilation[d] < 1 || pads[d] < 0 || pads[d + 2] < 0) {
        return invalid_argument("[", node.op_type, "] kernel_shape, strides and dilations must be positive and pads non-negative");
      }
    }
    const int64_t in[2] = {x->dim(2), x->dim(3)};
    int64_t begin[2] = {pads[0], pads[1]}, end[2] = {pads[2], pads[3]};
    ORCHARD_ASSIGN_OR_RETURN(
        const std::vector<int64_t> out,
        cpu::spatial_output_shape(in, kernel, stride, dilation, begin, end, node.attr_string("auto_pad", "NOTSET"),
                                  node.attr_int("ceil_mode", 0) != 0));
    Pool2d p;
    p.planes = x->dim(0) * x->dim(1);
    p.in_h = in[0];
    p.in_w = in[1];
    p.out_h = out[0];
    p.out_w = out[1];
    p.k_h = kernel[0];
    p.k_w = kernel[1];
    p.s_h = stride[0];
    p.s_w = stride[1];
    p.d_h = dilation[0];
    p.d_w = dilation[1];
    p.pad_top = begin[0];
    p.pad_left = begin[1];
    p.pad_bottom = end[0];
    p.pad_right = end[1];
    p.max = max_;
    p.include_pad = node.attr_int("count_include_pad", 0) != 0;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), Shape{x->dim(0), x->dim(1), out[0], out[1]}));
    return launch_status(pool2d(t, x->raw_data(), y.raw_data(), p, current_cuda_stream()), node.op_type.c_str());
  }

 private:
  bool max_;
};

// BatchNormalization in inference mode: Y only, every parameter of X's dtype.
class BatchNormKernel final : public runtime::OpKernel {
 public:
  explicit BatchNormKernel(float eps) : eps_(eps) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(x->dtype()));
    if (x->rank() < 2) return invalid_argument("[BatchNormalization] input ", x->description(), " has rank below 2");
    const int64_t c = x->dim(1);
    const Tensor* params[4];
    for (size_t i = 0; i < 4; ++i) {
      ORCHARD_ASSIGN_OR_RETURN(params[i], ctx.input_tensor(i + 1));
      if (params[i]->numel() != c) {
        return invalid_argument("[BatchNormalization] input ", i + 1, " ", params[i]->description(), " for ", c, " channels");
      }
      if (params[i]->dtype() != x->dtype()) {
        return unsupported("[BatchNormalization] input ", i + 1, " ", params[i]->description(), " differs from ", x->description());
      }
    }
    int64_t inner = 1;
    for (size_t d = 2; d < x->rank(); ++d) inner *= x->dim(d);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    return launch_status(batch_norm(t, x->raw_data(), params[0]->raw_data(), params[1]->raw_data(), params[2]->raw_data(),
                                    params[3]->raw_data(), y.raw_data(), x->dim(0), c, inner, eps_, current_cuda_stream()),
                         "BatchNormalization");
  }

 private:
  float eps_;
};

// ---- fills ----

// ConstantOfShape with a float32/float16/bfloat16 value: the shape input is read on the host.
class ConstantOfShapeKernel final : public runtime::OpKernel {
 public:
  ConstantOfShapeKernel(DType dtype, float value) : dtype_(dtype), value_(value) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* st, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> dims, host_ints(*st, "shape"));
    for (int64_t d : dims) {
      if (d < 0) return invalid_argument("[ConstantOfShape] negative dim ", d, " in ", Shape(dims).to_string());
    }
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(dtype_));
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dtype_, Shape(dims)));
    return launch_status(arithmetic_fill(t, y.raw_data(), y.numel(), value_, 0.f, current_cuda_stream()), "ConstantOfShape");
  }

 private:
  DType dtype_;
  float value_;
};

// Range of float32/float16/bfloat16: start, limit and delta are scalars read on the host.
class RangeKernel final : public runtime::OpKernel {
 public:
  Status run(runtime::OpContext& ctx) const override {
    double v[3];
    DType dtype = DType::undefined;
    for (size_t i = 0; i < 3; ++i) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* s, ctx.input_tensor(i));
      const DType d = s->dtype();
      const bool is_float = d == DType::float32 || d == DType::float16 || d == DType::bfloat16;
      if (s->numel() != 1 || !is_float || (i > 0 && d != dtype)) {
        return invalid_argument("[Range] input ", i, " must be a float scalar of the start's dtype, got ", s->description());
      }
      ORCHARD_ASSIGN_OR_RETURN(v[i], host_float_scalar(*s, "[Range] input"));
      dtype = s->dtype();
    }
    if (v[2] == 0) return invalid_argument("[Range] delta is 0");
    const double count = std::ceil((v[1] - v[0]) / v[2]);
    if (!std::isfinite(count)) return invalid_argument("[Range] ", v[0], " to ", v[1], " step ", v[2], " is not finite");
    const int64_t n = static_cast<int64_t>(std::clamp(count, 0.0, 9.0e18));
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(dtype));
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dtype, Shape{n}));
    return launch_status(arithmetic_fill(t, y.raw_data(), n, static_cast<float>(v[0]), static_cast<float>(v[2]),
                                         current_cuda_stream()),
                         "Range");
  }
};

struct PredicateName {
  const char* op;
  PredicateOp kind;
};
constexpr PredicateName kPredicates[] = {
    {"Equal", PredicateOp::equal},         {"Less", PredicateOp::less},
    {"Greater", PredicateOp::greater},     {"LessOrEqual", PredicateOp::less_equal},
    {"GreaterOrEqual", PredicateOp::greater_equal}, {"And", PredicateOp::logical_and},
    {"Or", PredicateOp::logical_or},       {"Xor", PredicateOp::logical_xor}};

}  // namespace

KernelResult create_predicate(const runtime::KernelCreateContext& ctx) {
  for (const auto& p : kPredicates) {
    if (ctx.node.op_type == p.op) return std::unique_ptr<runtime::OpKernel>(new PredicateKernel(p.kind));
  }
  return unsupported("[cuda] no comparison kernel for ", ctx.node.op_type);
}

KernelResult create_predicate_unary(const runtime::KernelCreateContext& ctx) {
  return std::unique_ptr<runtime::OpKernel>(new PredicateUnaryKernel(ctx.node.op_type == "IsNaN"));
}

KernelResult create_where(const runtime::KernelCreateContext&) {
  return std::unique_ptr<runtime::OpKernel>(new WhereKernel());
}

KernelResult create_pool(const runtime::KernelCreateContext& ctx) {
  if (ctx.node.outputs.size() > 1 && !ctx.node.outputs[1].empty()) return unsupported("[cuda] MaxPool's Indices output");
  if (ctx.node.attr_int("storage_order", 0) != 0) return unsupported("[cuda] MaxPool storage_order 1");
  return std::unique_ptr<runtime::OpKernel>(new Pool2dKernel(ctx.node.op_type == "MaxPool"));
}

KernelResult create_batch_norm(const runtime::KernelCreateContext& ctx) {
  if (ctx.node.attr_int("training_mode", 0) != 0) return unsupported("[cuda] BatchNormalization training_mode");
  for (size_t i = 1; i < ctx.node.outputs.size(); ++i) {
    if (!ctx.node.outputs[i].empty()) return unsupported("[cuda] BatchNormalization's running mean/var outputs");
  }
  return std::unique_ptr<runtime::OpKernel>(new BatchNormKernel(ctx.node.attr_float("epsilon", 1e-5f)));
}

KernelResult create_constant_of_shape(const runtime::KernelCreateContext& ctx) {
  const graph::Attribute* a = ctx.node.attr("value");
  if (!a) return std::unique_ptr<runtime::OpKernel>(new ConstantOfShapeKernel(DType::float32, 0.f));
  const Tensor& v = a->t;
  if (v.numel() != 1) return invalid_argument("[ConstantOfShape] value must be a one-element tensor, got ", v.description());
  if (v.dtype() == DType::float32 || v.dtype() == DType::float16 || v.dtype() == DType::bfloat16) {
    ORCHARD_ASSIGN_OR_RETURN(const float value, host_float_scalar(v, "[ConstantOfShape] value"));
    return std::unique_ptr<runtime::OpKernel>(new ConstantOfShapeKernel(v.dtype(), value));
  }
  return unsupported("[cuda] ConstantOfShape of ", dtype_name(v.dtype()), " (integer constants stay on the CPU)");
}

KernelResult create_range(const runtime::KernelCreateContext&) {
  return std::unique_ptr<runtime::OpKernel>(new RangeKernel());
}

}  // namespace orchard::cuda
