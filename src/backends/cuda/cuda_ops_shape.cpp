// CUDA op kernels that move data without math: the Reshape family (aliases, no copy), Transpose, Concat,
// Slice, Split, Expand (strided copies), Gather and Cast.
#include <algorithm>
#include <numeric>

#include "backends/cuda/cuda_ops.hpp"
#include "backends/cpu/shape_util.hpp"

namespace orchard::cuda {

namespace {

Result<int64_t> normalize_axis(int64_t axis, int64_t rank, const std::string& op) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) return invalid_argument("[", op, "] axis ", axis, " out of range for rank ", rank);
  return a;
}

// Reshape, Flatten, Squeeze, Unsqueeze and Identity: the output shares the input's device memory.
class AliasKernel final : public runtime::OpKernel {
 public:
  AliasKernel(std::string op, std::vector<int64_t> axes, bool axes_input, int64_t axis, bool allow_zero)
      : op_(std::move(op)), axes_(std::move(axes)), axes_input_(axes_input), axis_(axis), allow_zero_(allow_zero) {}

  Status run(runtime::OpContext& ctx) const override {
    if (op_ == "Identity") {
      ctx.set_output(0, ctx.value(0));
      return Status::OK();
    }
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(Shape shape, out_shape(ctx, *x));
    int64_t elements = 1;
    for (size_t i = 0; i < shape.rank(); ++i) {
      if (__builtin_mul_overflow(elements, shape[i], &elements)) {  // (dims come from data)
        return invalid_argument("[", op_, "] shape ", shape.to_string(), " has more elements than any tensor can hold");
      }
    }
    if (shape.numel() != x->numel()) {
      return invalid_argument("[", op_, "] cannot reshape ", x->description(), " to ", shape.to_string());
    }
    ctx.set_output(0, Value(x->reshaped(shape)));
    return Status::OK();
  }

 private:
  std::string op_;
  std::vector<int64_t> axes_;
  bool axes_input_;
  int64_t axis_;
  bool allow_zero_;

  Result<Shape> out_shape(runtime::OpContext& ctx, const Tensor& x) const {
    const int64_t rank = static_cast<int64_t>(x.rank());
    std::vector<int64_t> axes = axes_;
    if (axes_input_ && ctx.has_input(1)) {
      ORCHARD_ASSIGN_OR_RETURN(axes, host_ints(ctx.input(1), "axes"));
    }
    if (op_ == "Reshape") {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* st, ctx.input_tensor(1));
      ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> dims, host_ints(*st, "shape"));
      int64_t known = 1, infer = -1;
      for (size_t i = 0; i < dims.size(); ++i) {
        if (dims[i] == 0 && !allow_zero_) {
          if (static_cast<int64_t>(i) >= rank) return invalid_argument("[Reshape] 0 at dim ", i, " beyond input rank ", rank);
          dims[i] = x.dim(i);
        }
        if (dims[i] == -1) {
          if (infer >= 0) return invalid_argument("[Reshape] more than one -1 in shape");
          infer = static_cast<int64_t>(i);
        } else if (dims[i] < 0) {
          return invalid_argument("[Reshape] negative dim ", dims[i]);
        } else {
          known *= dims[i];
        }
      }
      if (infer >= 0) {
        if (known == 0 || x.numel() % known != 0) return invalid_argument("[Reshape] cannot infer -1 for ", x.description());
        dims[static_cast<size_t>(infer)] = x.numel() / known;
      }
      return Shape(std::move(dims));
    }
    if (op_ == "Flatten") {
      const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
      if (axis < 0 || axis > rank) return invalid_argument("[Flatten] axis ", axis_, " out of range for rank ", rank);
      int64_t outer = 1;
      for (int64_t d = 0; d < axis; ++d) outer *= x.dim(static_cast<size_t>(d));
      return Shape{outer, outer == 0 ? 0 : x.numel() / std::max<int64_t>(outer, 1)};
    }
    if (op_ == "Squeeze") {
      std::vector<bool> drop(static_cast<size_t>(rank), false);
      if (axes.empty()) {
        for (int64_t d = 0; d < rank; ++d) drop[static_cast<size_t>(d)] = x.dim(static_cast<size_t>(d)) == 1;
      }
      for (int64_t a : axes) {
        ORCHARD_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(a, rank, op_));
        if (x.dim(static_cast<size_t>(ax)) != 1) return invalid_argument("[Squeeze] dim ", a, " of ", x.description(), " is not 1");
        drop[static_cast<size_t>(ax)] = true;
      }
      std::vector<int64_t> dims;
      for (int64_t d = 0; d < rank; ++d) {
        if (!drop[static_cast<size_t>(d)]) dims.push_back(x.dim(static_cast<size_t>(d)));
      }
      return Shape(std::move(dims));
    }
    // Unsqueeze
    const int64_t out_rank = rank + static_cast<int64_t>(axes.size());
    std::vector<bool> ins(static_cast<size_t>(out_rank), false);
    for (int64_t a : axes) {
      ORCHARD_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(a, out_rank, op_));
      if (ins[static_cast<size_t>(ax)]) return invalid_argument("[Unsqueeze] axis ", a, " repeated");
      ins[static_cast<size_t>(ax)] = true;
    }
    std::vector<int64_t> dims;
    size_t k = 0;
    for (int64_t d = 0; d < out_rank; ++d) dims.push_back(ins[static_cast<size_t>(d)] ? 1 : x.dim(k++));
    return Shape(std::move(dims));
  }
};

class TransposeKernel final : public runtime::OpKernel {
 public:
  explicit TransposeKernel(std::vector<int64_t> perm) : perm_(std::move(perm)) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    const size_t rank = x->rank();
    std::vector<int64_t> perm = perm_;
    if (perm.empty()) {
      for (size_t d = rank; d-- > 0;) perm.push_back(static_cast<int64_t>(d));
    }
    std::vector<bool> seen(rank, false);
    if (perm.size() != rank) return invalid_argument("[Transpose] perm of size ", perm.size(), " for ", x->description());
    for (int64_t p : perm) {
      if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) {
        return invalid_argument("[Transpose] perm entry ", p, " invalid for ", x->description());
      }
      seen[static_cast<size_t>(p)] = true;
    }
    std::vector<int64_t> dims;
    for (int64_t p : perm) dims.push_back(x->dim(static_cast<size_t>(p)));
    Shape shape(dims);
    ORCHARD_ASSIGN_OR_RETURN(Layout l, layout_over(shape, "Transpose"));
    const auto in_strides = contiguous_strides(x->shape());
    const auto out_strides = contiguous_strides(shape);
    for (size_t d = 0; d < rank; ++d) {
      l.stride[0][d] = in_strides[static_cast<size_t>(perm[d])];
      l.stride[1][d] = out_strides[d];
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), shape));
    return launch_status(strided_copy(x->raw_data(), y.raw_data(), dtype_size(x->dtype()), l, current_cuda_stream()),
                         "Transpose");
  }

 private:
  std::vector<int64_t> perm_;
};

class ConcatKernel final : public runtime::OpKernel {
 public:
  explicit ConcatKernel(int64_t axis) : axis_(axis) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* first, ctx.input_tensor(0));
    const int64_t rank = static_cast<int64_t>(first->rank());
    ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(axis_, rank, "Concat"));
    std::vector<int64_t> dims = first->shape().dims();
    dims[static_cast<size_t>(axis)] = 0;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(i));
      bool ok = t->rank() == first->rank() && t->dtype() == first->dtype();
      for (int64_t d = 0; ok && d < rank; ++d) ok = d == axis || t->dim(static_cast<size_t>(d)) == first->dim(static_cast<size_t>(d));
      if (!ok) return invalid_argument("[Concat] input ", i, " ", t->description(), " does not match ", first->description());
      dims[static_cast<size_t>(axis)] += t->dim(static_cast<size_t>(axis));
    }
    const Shape shape(dims);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, first->dtype(), shape));
    const auto out_strides = contiguous_strides(shape);
    int64_t offset = 0;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& t = ctx.input(i);
      ORCHARD_ASSIGN_OR_RETURN(Layout l, layout_over(t.shape(), "Concat"));
      const auto in_strides = contiguous_strides(t.shape());
      for (int64_t d = 0; d < rank; ++d) {
        l.stride[0][d] = in_strides[static_cast<size_t>(d)];
        l.stride[1][d] = out_strides[static_cast<size_t>(d)];
      }
      l.offset[1] = offset * out_strides[static_cast<size_t>(axis)];
      ORCHARD_RETURN_IF_ERROR(launch_status(
          strided_copy(t.raw_data(), y.raw_data(), dtype_size(t.dtype()), l, current_cuda_stream()), "Concat"));
      offset += t.dim(static_cast<size_t>(axis));
    }
    return Status::OK();
  }

 private:
  int64_t axis_;
};

// Slice-10+: starts, ends, axes and steps are inputs read on the host.
class SliceKernel final : public runtime::OpKernel {
 public:
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    const int64_t rank = static_cast<int64_t>(x->rank());
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* st, ctx.input_tensor(1));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* en, ctx.input_tensor(2));
    ORCHARD_ASSIGN_OR_RETURN(auto starts, host_ints(*st, "starts"));
    ORCHARD_ASSIGN_OR_RETURN(auto ends, host_ints(*en, "ends"));
    std::vector<int64_t> axes(starts.size()), steps(starts.size(), 1);
    std::iota(axes.begin(), axes.end(), 0);
    if (ctx.has_input(3)) {
      ORCHARD_ASSIGN_OR_RETURN(axes, host_ints(ctx.input(3), "axes"));
    }
    if (ctx.has_input(4)) {
      ORCHARD_ASSIGN_OR_RETURN(steps, host_ints(ctx.input(4), "steps"));
    }
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
      return invalid_argument("[Slice] starts/ends/axes/steps lengths differ");
    }
    std::vector<int64_t> begin(static_cast<size_t>(rank), 0), step(static_cast<size_t>(rank), 1);
    std::vector<int64_t> dims = x->shape().dims();
    std::vector<bool> seen(static_cast<size_t>(rank), false);
    for (size_t i = 0; i < starts.size(); ++i) {
      ORCHARD_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(axes[i], rank, "Slice"));
      if (seen[static_cast<size_t>(ax)]) return invalid_argument("[Slice] axis ", axes[i], " repeated");
      seen[static_cast<size_t>(ax)] = true;
      const int64_t n = x->dim(static_cast<size_t>(ax)), s = steps[i];
      if (s == 0) return invalid_argument("[Slice] step 0 on axis ", axes[i]);
      int64_t b = starts[i] < 0 ? starts[i] + n : starts[i];
      int64_t e = ends[i] < 0 ? ends[i] + n : ends[i];
      if (s > 0) {
        b = std::clamp<int64_t>(b, 0, n);
        e = std::clamp<int64_t>(e, 0, n);
      } else {
        b = std::clamp<int64_t>(b, -1, n - 1);
        e = std::clamp<int64_t>(e, -1, n - 1);
      }
      const int64_t len = s > 0 ? (e > b ? (e - b + s - 1) / s : 0) : (b > e ? (b - e + (-s) - 1) / (-s) : 0);
      begin[static_cast<size_t>(ax)] = len > 0 ? b : 0;
      step[static_cast<size_t>(ax)] = s;
      dims[static_cast<size_t>(ax)] = len;
    }
    const Shape shape(dims);
    ORCHARD_ASSIGN_OR_RETURN(Layout l, layout_over(shape, "Slice"));
    const auto in_strides = contiguous_strides(x->shape());
    const auto out_strides = contiguous_strides(shape);
    for (int64_t d = 0; d < rank; ++d) {
      const size_t k = static_cast<size_t>(d);
      l.stride[0][d] = in_strides[k] * step[k];
      l.stride[1][d] = out_strides[k];
      l.offset[0] += begin[k] * in_strides[k];
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), shape));
    return launch_status(strided_copy(x->raw_data(), y.raw_data(), dtype_size(x->dtype()), l, current_cuda_stream()),
                         "Slice");
  }
};

// Expand-8+: the shape input is read on the host.
class ExpandKernel final : public runtime::OpKernel {
 public:
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* st, ctx.input_tensor(1));
    ORCHARD_ASSIGN_OR_RETURN(auto dims, host_ints(*st, "shape"));
    ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes(x->shape(), Shape(dims), "Expand"));
    ORCHARD_ASSIGN_OR_RETURN(Layout l, layout_over(shape, "Expand"));
    set_broadcast_operand(l, 0, x->shape());
    set_broadcast_operand(l, 1, shape);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), shape));
    return launch_status(strided_copy(x->raw_data(), y.raw_data(), dtype_size(x->dtype()), l, current_cuda_stream()),
                         "Expand");
  }
};

// Gather: the indices (int32 or int64) are read on the device, so token ids never visit the host and a CUDA graph
// serves any of them; an index out of range is reported through the stream's fault record and fails the run
// when it synchronizes.
class GatherKernel final : public runtime::OpKernel {
 public:
  explicit GatherKernel(int64_t axis) : axis_(axis) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* it, ctx.input_tensor(1));
    if (it->dtype() != DType::int64 && it->dtype() != DType::int32) {
      return invalid_argument("[Gather] indices of ", dtype_name(it->dtype()), " (int32 or int64 expected)");
    }
    const int64_t rank = static_cast<int64_t>(x->rank());
    ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(axis_, rank, "Gather"));
    const int64_t n = x->dim(static_cast<size_t>(axis));
    std::vector<int64_t> dims;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) {
      dims.push_back(x->dim(static_cast<size_t>(d)));
      outer *= x->dim(static_cast<size_t>(d));
    }
    for (int64_t d : it->shape()) dims.push_back(d);
    for (int64_t d = axis + 1; d < rank; ++d) {
      dims.push_back(x->dim(static_cast<size_t>(d)));
      inner *= x->dim(static_cast<size_t>(d));
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), Shape(dims)));
    if (y.numel() == 0) return Status::OK();
    CudaStream* s = current_stream();
    DeviceFault* fault = s ? s->fault_record() : nullptr;
    if (!fault) return internal_error("[cuda] Gather outside a run or without pinned memory for its fault record");
    return launch_status(gather(x->raw_data(), it->raw_data(), it->dtype() == DType::int64, y.raw_data(),
                                dtype_size(x->dtype()), outer, n, it->numel(), inner, fault, s->get()),
                         "Gather");
  }

 private:
  int64_t axis_;
};

// Split: the sizes come from the attribute (before opset 13) or the host input, else equal parts.
class SplitKernel final : public runtime::OpKernel {
 public:
  SplitKernel(int64_t axis, std::vector<int64_t> split) : axis_(axis), split_(std::move(split)) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    const int64_t rank = static_cast<int64_t>(x->rank());
    ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(axis_, rank, "Split"));
    const int64_t n = x->dim(static_cast<size_t>(axis));
    const int64_t parts = static_cast<int64_t>(ctx.num_outputs());
    std::vector<int64_t> sizes = split_;
    if (ctx.has_input(1)) {
      ORCHARD_ASSIGN_OR_RETURN(sizes, host_ints(ctx.input(1), "split"));
    }
    if (sizes.empty()) {
      if (parts == 0 || n % parts != 0) return invalid_argument("[Split] axis of size ", n, " does not split into ", parts, " equal parts");
      sizes.assign(static_cast<size_t>(parts), n / parts);
    }
    int64_t total = 0;
    for (int64_t v : sizes) {
      if (v < 0) return invalid_argument("[Split] negative size ", v);
      total += v;
    }
    if (static_cast<int64_t>(sizes.size()) != parts || total != n) {
      return invalid_argument("[Split] sizes ", Shape(sizes).to_string(), " for ", parts, " outputs and axis size ", n);
    }
    const auto in_strides = contiguous_strides(x->shape());
    int64_t offset = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      std::vector<int64_t> dims = x->shape().dims();
      dims[static_cast<size_t>(axis)] = sizes[k];
      const Shape shape(dims);
      ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(k, x->dtype(), shape));
      ORCHARD_ASSIGN_OR_RETURN(Layout l, layout_over(shape, "Split"));
      const auto out_strides = contiguous_strides(shape);
      for (int64_t d = 0; d < rank; ++d) {
        l.stride[0][d] = in_strides[static_cast<size_t>(d)];
        l.stride[1][d] = out_strides[static_cast<size_t>(d)];
      }
      l.offset[0] = offset * in_strides[static_cast<size_t>(axis)];
      ORCHARD_RETURN_IF_ERROR(launch_status(
          strided_copy(x->raw_data(), y.raw_data(), dtype_size(x->dtype()), l, current_cuda_stream()), "Split"));
      offset += sizes[k];
    }
    return Status::OK();
  }

 private:
  int64_t axis_;
  std::vector<int64_t> split_;
};

class CastKernel final : public runtime::OpKernel {
 public:
  explicit CastKernel(DType to) : to_(to) {}
  Status run(runtime::OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    if (x->dtype() == to_) {
      ctx.set_output(0, ctx.value(0));
      return Status::OK();
    }
    ORCHARD_ASSIGN_OR_RETURN(Elem from, elem_of(x->dtype()));
    ORCHARD_ASSIGN_OR_RETURN(Elem to, elem_of(to_));
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, to_, x->shape()));
    return launch_status(cast(from, to, x->raw_data(), y.raw_data(), x->numel(), current_cuda_stream()), "Cast");
  }

 private:
  DType to_;
};

// ONNX TensorProto element type codes of the dtypes Cast takes here.
Result<DType> onnx_dtype(int64_t code) {
  switch (code) {
    case 1: return DType::float32;
    case 6: return DType::int32;
    case 7: return DType::int64;
    case 9: return DType::boolean;
    case 10: return DType::float16;
    case 16: return DType::bfloat16;
    default: return unsupported("[cuda] Cast to ONNX type ", code);
  }
}

}  // namespace

KernelResult create_reshape(const runtime::KernelCreateContext& ctx) {
  const auto& n = ctx.node;
  const bool axes_input = (n.op_type == "Squeeze" || n.op_type == "Unsqueeze") && n.opset >= 13;
  return std::unique_ptr<runtime::OpKernel>(new AliasKernel(n.op_type, n.attr_ints("axes"), axes_input,
                                                            n.attr_int("axis", 1), n.attr_int("allowzero", 0) != 0));
}

KernelResult create_transpose(const runtime::KernelCreateContext& ctx) {
  return std::unique_ptr<runtime::OpKernel>(new TransposeKernel(ctx.node.attr_ints("perm")));
}

KernelResult create_concat(const runtime::KernelCreateContext& ctx) {
  if (!ctx.node.attr("axis")) return invalid_argument("[Concat] attribute 'axis' is required");
  return std::unique_ptr<runtime::OpKernel>(new ConcatKernel(ctx.node.attr_int("axis", 0)));
}

KernelResult create_slice(const runtime::KernelCreateContext&) {
  return std::unique_ptr<runtime::OpKernel>(new SliceKernel());
}

KernelResult create_gather(const runtime::KernelCreateContext& ctx) {
  return std::unique_ptr<runtime::OpKernel>(new GatherKernel(ctx.node.attr_int("axis", 0)));
}

KernelResult create_split(const runtime::KernelCreateContext& ctx) {
  if (ctx.node.attr("num_outputs")) return unsupported("[cuda] Split's num_outputs (opset 18)");
  return std::unique_ptr<runtime::OpKernel>(new SplitKernel(ctx.node.attr_int("axis", 0), ctx.node.attr_ints("split")));
}

KernelResult create_cast(const runtime::KernelCreateContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(DType to, onnx_dtype(ctx.node.attr_int("to", 0)));
  return std::unique_ptr<runtime::OpKernel>(new CastKernel(to));
}

KernelResult create_expand(const runtime::KernelCreateContext&) {
  return std::unique_ptr<runtime::OpKernel>(new ExpandKernel());
}

}  // namespace orchard::cuda
