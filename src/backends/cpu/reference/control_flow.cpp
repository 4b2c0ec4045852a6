// Control flow: If, Loop, Scan. Subgraphs are compiled once when the kernel is created and run through
// OpContext::run_subgraph, which lets them read enclosing-scope values from the node's frame.
#include <algorithm>
#include <cstring>

#include "backends/cpu/copy_util.hpp"
#include "backends/cpu/reference/families.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/kernel_inputs.hpp"

namespace orchard::cpu::reference {

namespace {

using runtime::CompiledGraph;
using GraphPtr = std::shared_ptr<const CompiledGraph>;

// Reads a one-element tensor as a boolean condition.
Result<bool> read_condition(const Value& v, std::string_view what) {
  if (!v.is_tensor()) return invalid_argument(what, " must be a tensor, got ", v.description());
  const Tensor& t = v.tensor();
  if (t.numel() != 1) return invalid_argument(what, " must have one element, got ", t.description());
  if (t.dtype() == DType::boolean) return t.data<bool>()[0];
  if (dtype_is_integer(t.dtype())) return element_as_int(t, 0) != 0;
  if (dtype_is_float(t.dtype())) return element_as_double(t, 0) != 0.0;
  return invalid_argument(what, " must be boolean, got ", t.description());
}

// Returns element `index` of `t` along `axis` (a copy in request memory, with that axis removed; see
// make_request_tensor for `slot`).
Result<Tensor> slice_axis(const Tensor& t, int64_t axis, int64_t index, OpContext& ctx, size_t slot) {
  const AxisView v = view_around(t.shape(), axis);
  std::vector<int64_t> dims = t.shape().dims();
  dims.erase(dims.begin() + axis);
  ORCHARD_ASSIGN_OR_RETURN(Tensor out, make_request_tensor(ctx, slot, t.dtype(), Shape(dims)));
  copy_axis_range(t.dtype(), v.outer, v.inner, 1, t.raw_data(), v.n, index, out.raw_data(), 1, 0);
  return out;
}

// Stacks `items` (all of one dtype and shape) along a new `axis` of the result; item k goes to position
// k, or count-1-k when `reverse`. `empty_dtype`/`empty_shape` give the result when there are no items.
// The result is request memory allocated through output `slot`.
Result<Tensor> stack_axis(const std::vector<Tensor>& items, int64_t axis, bool reverse, OpContext& ctx, size_t slot,
                          DType empty_dtype, const Shape& empty_shape) {
  if (items.empty()) {
    std::vector<int64_t> dims = empty_shape.dims();
    axis = std::clamp<int64_t>(axis, 0, static_cast<int64_t>(dims.size()));
    dims.insert(dims.begin() + axis, 0);
    return make_request_tensor(ctx, slot, empty_dtype == DType::undefined ? DType::float32 : empty_dtype, Shape(dims));
  }
  const Tensor& first = items[0];
  for (size_t k = 1; k < items.size(); ++k) {
    if (items[k].dtype() != first.dtype() || items[k].shape() != first.shape()) {
      return invalid_argument("scan output of iteration ", k, " is ", items[k].description(), ", but iteration 0 gave ",
                              first.description(), " (all iterations must agree)");
    }
  }
  std::vector<int64_t> dims = first.shape().dims();
  if (axis < 0 || axis > static_cast<int64_t>(dims.size())) {
    return invalid_argument("scan output axis ", axis, " is out of range for rank ", dims.size() + 1);
  }
  const size_t ax = static_cast<size_t>(axis);
  const int64_t outer = dims_product(first.shape(), 0, ax), inner = dims_product(first.shape(), ax, dims.size());
  const int64_t count = static_cast<int64_t>(items.size());
  dims.insert(dims.begin() + axis, count);
  ORCHARD_ASSIGN_OR_RETURN(Tensor out, make_request_tensor(ctx, slot, first.dtype(), Shape(dims)));
  for (int64_t k = 0; k < count; ++k) {
    const int64_t pos = reverse ? count - 1 - k : k;
    copy_axis_range(first.dtype(), outer, inner, 1, items[k].raw_data(), 1, 0, out.raw_data(), count, pos);
  }
  return out;
}

// The declared element type and (when fully known) shape of graph output i, for empty scan outputs.
std::pair<DType, Shape> declared_output(const graph::Graph& g, size_t i) {
  if (i >= g.outputs.size()) return {DType::float32, Shape{}};
  const ValueInfo& info = g.outputs[i];
  Shape shape;
  if (info.has_shape) {
    for (const Dim& d : info.shape) shape.push_back(d.fixed() ? d.value : 0);
  }
  return {info.dtype, shape};
}

// The scan output of a Loop: each iteration's value is copied into one buffer of request memory that
// grows by doubling. The output is thus charged to the request's budget as it grows (a Loop that
// outgrows it fails with out_of_memory), and nothing is kept per iteration.
class GrowingStack {
 public:
  explicit GrowingStack(size_t slot) : slot_(slot) {}

  // Appends `item`, the value of iteration `count()`; it must match earlier iterations' dtype and shape.
  Status append(OpContext& ctx, const Tensor& item) {
    if (count_ == 0) {
      dtype_ = item.dtype();
      item_shape_ = item.shape();
    } else if (item.dtype() != dtype_ || item.shape() != item_shape_) {
      return invalid_argument("scan output of iteration ", count_, " is ", item.description(), ", but iteration 0 gave ",
                              dtype_name(dtype_), item_shape_.to_string(), " (all iterations must agree)");
    }
    if (count_ == capacity_) {
      const int64_t grown_capacity = std::max<int64_t>(4, capacity_ * 2);
      auto grown = make_request_tensor(ctx, slot_, dtype_, stacked(grown_capacity));
      if (!grown.ok()) return grown.status().with_prefix("scan output after " + std::to_string(count_) + " iterations: ");
      if (count_ > 0) copy_elements(dtype_, buffer_.raw_data(), 0, grown->raw_data(), 0, count_ * item.numel());
      buffer_ = std::move(grown).value();
      capacity_ = grown_capacity;
    }
    copy_elements(dtype_, item.raw_data(), 0, buffer_.raw_data(), count_ * item.numel(), item.numel());
    ++count_;
    return Status::OK();
  }

  // Returns the stacked values, [iterations, item dims...]; with no iteration, [0, empty_shape...].
  Result<Tensor> finish(OpContext& ctx, DType empty_dtype, const Shape& empty_shape) {
    if (count_ == 0) return stack_axis({}, 0, false, ctx, slot_, empty_dtype, empty_shape);
    if (count_ == capacity_) return std::move(buffer_);
    ORCHARD_ASSIGN_OR_RETURN(Tensor exact, make_request_tensor(ctx, slot_, dtype_, stacked(count_)));
    copy_elements(dtype_, buffer_.raw_data(), 0, exact.raw_data(), 0, exact.numel());
    buffer_ = Tensor();
    return exact;
  }

 private:
  Shape stacked(int64_t rows) const {
    std::vector<int64_t> dims = item_shape_.dims();
    dims.insert(dims.begin(), rows);
    return Shape(dims);
  }

  size_t slot_;
  DType dtype_ = DType::undefined;
  Shape item_shape_;
  Tensor buffer_;
  int64_t count_ = 0, capacity_ = 0;
};

// ---- If ----

class IfKernel final : public OpKernel {
 public:
  static Result<std::unique_ptr<OpKernel>> create(const KernelCreateContext& ctx) {
    auto k = std::make_unique<IfKernel>();
    ORCHARD_ASSIGN_OR_RETURN(k->then_, compile_graph_attr(ctx, "then_branch"));
    ORCHARD_ASSIGN_OR_RETURN(k->else_, compile_graph_attr(ctx, "else_branch"));
    return std::unique_ptr<OpKernel>(std::move(k));
  }

  Status run(OpContext& ctx) const override {
    if (!ctx.has_input(0)) return invalid_argument("input 0 (cond) is missing");
    ORCHARD_ASSIGN_OR_RETURN(bool cond, read_condition(ctx.value(0), "cond"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<Value> outs, ctx.run_subgraph(cond ? *then_ : *else_, {}));
    if (outs.size() < ctx.num_outputs()) {
      return invalid_argument(cond ? "then" : "else", "_branch has ", outs.size(), " outputs, but the node has ",
                              ctx.num_outputs());
    }
    for (size_t i = 0; i < ctx.num_outputs(); ++i) ctx.set_output(i, std::move(outs[i]));
    return Status::OK();
  }

 private:
  GraphPtr then_, else_;
};

// ---- Loop ----

class LoopKernel final : public OpKernel {
 public:
  static Result<std::unique_ptr<OpKernel>> create(const KernelCreateContext& ctx) {
    auto k = std::make_unique<LoopKernel>();
    ORCHARD_ASSIGN_OR_RETURN(k->decl_, graph_attr(ctx.node, "body"));
    const size_t carried = ctx.node.inputs.size() < 2 ? 0 : ctx.node.inputs.size() - 2;
    if (k->decl_->inputs.size() != carried + 2) {
      return invalid_argument("body has ", k->decl_->inputs.size(), " inputs; expected ", carried + 2,
                              " (iteration number, condition and ", carried, " loop-carried values)");
    }
    if (k->decl_->outputs.size() < carried + 1) {
      return invalid_argument("body has ", k->decl_->outputs.size(), " outputs; expected at least ", carried + 1,
                              " (condition and ", carried, " loop-carried values)");
    }
    ORCHARD_ASSIGN_OR_RETURN(k->body_, compile_graph_attr(ctx, "body"));
    return std::unique_ptr<OpKernel>(std::move(k));
  }

  Status run(OpContext& ctx) const override {
    const size_t n_carried = ctx.num_inputs() < 2 ? 0 : ctx.num_inputs() - 2;
    const size_t n_scan = decl_->outputs.size() - 1 - n_carried;
    if (ctx.num_outputs() > n_carried + n_scan) {
      return invalid_argument("the node has ", ctx.num_outputs(), " outputs, but the body gives only ", n_carried,
                              " loop-carried values and ", n_scan, " scan outputs");
    }
    int64_t max_trips = -1;  // -1: no limit
    if (ctx.has_input(0)) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* m, ctx.input_tensor(0));
      if (m->numel() != 1 || !dtype_is_integer(m->dtype())) {
        return invalid_argument("trip count M must be one integer, got ", m->description());
      }
      max_trips = std::max<int64_t>(element_as_int(*m, 0), 0);
    }
    bool cond = true;
    if (ctx.has_input(1)) {
      ORCHARD_ASSIGN_OR_RETURN(cond, read_condition(ctx.value(1), "cond"));
    }

    std::vector<Value> body_in(n_carried + 2);
    for (size_t i = 0; i < n_carried; ++i) {
      if (ctx.has_input(i + 2)) body_in[i + 2] = ctx.value(i + 2);
    }
    std::vector<GrowingStack> scans;
    for (size_t k = 0; k < n_scan; ++k) scans.emplace_back(n_carried + k);
    for (int64_t it = 0; cond && (max_trips < 0 || it < max_trips); ++it) {
      ORCHARD_RETURN_IF_ERROR(ctx.check_abort());
      body_in[0] = Tensor::scalar<int64_t>(it);
      body_in[1] = Tensor::scalar<bool>(cond);
      ORCHARD_ASSIGN_OR_RETURN(std::vector<Value> outs, ctx.run_subgraph(*body_, body_in));
      if (outs.size() != 1 + n_carried + n_scan) {
        return internal_error("body returned ", outs.size(), " values, expected ", 1 + n_carried + n_scan);
      }
      ORCHARD_ASSIGN_OR_RETURN(cond, read_condition(outs[0], "body output 0 (condition)"));
      for (size_t i = 0; i < n_carried; ++i) body_in[i + 2] = std::move(outs[1 + i]);
      for (size_t k = 0; k < n_scan; ++k) {
        const Value& v = outs[1 + n_carried + k];
        if (!v.is_tensor()) return invalid_argument("scan output ", k, " must be a tensor, got ", v.description());
        if (ctx.has_output(n_carried + k)) ORCHARD_RETURN_IF_ERROR(scans[k].append(ctx, v.tensor()));
      }
    }
    for (size_t i = 0; i < n_carried; ++i) ctx.set_output(i, std::move(body_in[i + 2]));
    for (size_t k = 0; k < n_scan; ++k) {
      if (!ctx.has_output(n_carried + k)) continue;
      auto [dt, shape] = declared_output(*decl_, 1 + n_carried + k);
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, scans[k].finish(ctx, dt, shape));
      ctx.set_output(n_carried + k, std::move(t));
    }
    return Status::OK();
  }

 private:
  const graph::Graph* decl_ = nullptr;  // owned by the node's attribute
  GraphPtr body_;
};

// ---- Scan ----

// Normalises per-input axes/direction lists of `count` entries (absent: zeros).
Result<std::vector<int64_t>> list_attr(const graph::Node& node, std::string_view name, size_t count) {
  std::vector<int64_t> v = node.attr_ints(name);
  if (v.empty()) return std::vector<int64_t>(count, 0);
  if (v.size() != count) return invalid_argument("attribute '", name, "' has ", v.size(), " entries; expected ", count);
  return v;
}

class ScanKernel final : public OpKernel {
 public:
  static Result<std::unique_ptr<OpKernel>> create(const KernelCreateContext& ctx) {
    auto k = std::make_unique<ScanKernel>();
    const graph::Node& node = ctx.node;
    ORCHARD_ASSIGN_OR_RETURN(k->decl_, graph_attr(node, "body"));
    k->v8_ = node.opset < 9;
    const int64_t m = node.attr_int("num_scan_inputs", -1);
    const size_t first = k->v8_ ? 1 : 0;  // opset 8 starts with sequence_lens
    const size_t n_inputs = node.inputs.size();
    if (m < 1 || static_cast<size_t>(m) + first > n_inputs) {
      return invalid_argument("num_scan_inputs ", m, " is invalid for a node with ", n_inputs, " inputs");
    }
    k->n_scan_in_ = static_cast<size_t>(m);
    k->n_state_ = n_inputs - first - k->n_scan_in_;
    if (k->decl_->inputs.size() != k->n_state_ + k->n_scan_in_) {
      return invalid_argument("body has ", k->decl_->inputs.size(), " inputs; expected ", k->n_state_ + k->n_scan_in_);
    }
    if (k->decl_->outputs.size() < k->n_state_) {
      return invalid_argument("body has ", k->decl_->outputs.size(), " outputs; expected at least ", k->n_state_);
    }
    k->n_scan_out_ = k->decl_->outputs.size() - k->n_state_;
    if (k->v8_) {
      ORCHARD_ASSIGN_OR_RETURN(k->in_dirs_, list_attr(node, "directions", k->n_scan_in_));
      k->in_axes_.assign(k->n_scan_in_, 0);
      k->out_axes_.assign(k->n_scan_out_, 0);
      k->out_dirs_.assign(k->n_scan_out_, 0);
    } else {
      ORCHARD_ASSIGN_OR_RETURN(k->in_axes_, list_attr(node, "scan_input_axes", k->n_scan_in_));
      ORCHARD_ASSIGN_OR_RETURN(k->in_dirs_, list_attr(node, "scan_input_directions", k->n_scan_in_));
      ORCHARD_ASSIGN_OR_RETURN(k->out_axes_, list_attr(node, "scan_output_axes", k->n_scan_out_));
      ORCHARD_ASSIGN_OR_RETURN(k->out_dirs_, list_attr(node, "scan_output_directions", k->n_scan_out_));
    }
    ORCHARD_ASSIGN_OR_RETURN(k->body_, compile_graph_attr(ctx, "body"));
    return std::unique_ptr<OpKernel>(std::move(k));
  }

  Status run(OpContext& ctx) const override { return v8_ ? run_v8(ctx) : run_v9(ctx); }

 private:
  // Returns scan_output_axes[k] normalised for a stacked output of rank `out_rank`.
  Result<int64_t> output_axis(size_t k, int64_t out_rank) const {
    const int64_t axis = out_axes_[k];
    if (axis < -out_rank || axis >= out_rank) {
      return invalid_argument("scan_output_axes[", k, "] = ", axis, " is out of range for rank ", out_rank);
    }
    return axis < 0 ? axis + out_rank : axis;
  }

  // Runs the body over `length` iterations. `scan_in` have their scan axis already at `in_axes[i]`.
  // Returns the final states followed by the stacked scan outputs. Each scan output is allocated whole
  // (request memory, charged to its budget) once iteration 0 gives its item shape, and every iteration
  // is copied into place: nothing is held per iteration.
  Result<std::vector<Value>> scan_loop(OpContext& ctx, std::vector<Value> states, const std::vector<Tensor>& scan_in,
                                       const std::vector<int64_t>& in_axes, int64_t length) const {
    std::vector<Tensor> stacked(n_scan_out_);
    std::vector<Shape> item_shapes(n_scan_out_);
    std::vector<int64_t> axes(n_scan_out_);
    std::vector<Value> body_in(n_state_ + n_scan_in_);
    for (size_t i = 0; i < n_state_; ++i) body_in[i] = std::move(states[i]);
    for (int64_t t = 0; t < length; ++t) {
      ORCHARD_RETURN_IF_ERROR(ctx.check_abort());
      for (size_t j = 0; j < n_scan_in_; ++j) {
        const int64_t idx = in_dirs_[j] ? length - 1 - t : t;
        ORCHARD_ASSIGN_OR_RETURN(Tensor s, slice_axis(scan_in[j], in_axes[j], idx, ctx, 0));
        body_in[n_state_ + j] = std::move(s);
      }
      ORCHARD_ASSIGN_OR_RETURN(std::vector<Value> outs, ctx.run_subgraph(*body_, body_in));
      if (outs.size() != n_state_ + n_scan_out_) {
        return internal_error("body returned ", outs.size(), " values, expected ", n_state_ + n_scan_out_);
      }
      for (size_t i = 0; i < n_state_; ++i) body_in[i] = std::move(outs[i]);
      for (size_t k = 0; k < n_scan_out_; ++k) {
        const Value& v = outs[n_state_ + k];
        if (!v.is_tensor()) return invalid_argument("scan output ", k, " must be a tensor, got ", v.description());
        const Tensor& item = v.tensor();
        if (t == 0) {
          ORCHARD_ASSIGN_OR_RETURN(axes[k], output_axis(k, static_cast<int64_t>(item.rank()) + 1));
          std::vector<int64_t> dims = item.shape().dims();
          dims.insert(dims.begin() + axes[k], length);
          auto y = make_request_tensor(ctx, n_state_ + k, item.dtype(), Shape(dims));
          if (!y.ok()) return y.status().with_prefix("scan output " + std::to_string(k) + ": ");
          stacked[k] = std::move(y).value();
          item_shapes[k] = item.shape();
        } else if (item.dtype() != stacked[k].dtype() || item.shape() != item_shapes[k]) {
          return invalid_argument("scan output ", k, " of iteration ", t, " is ", item.description(), ", but iteration 0 gave ",
                                  dtype_name(stacked[k].dtype()), item_shapes[k].to_string(), " (all iterations must agree)");
        }
        const size_t ax = static_cast<size_t>(axes[k]);
        const int64_t outer = dims_product(item.shape(), 0, ax), inner = dims_product(item.shape(), ax, item.rank());
        const int64_t pos = out_dirs_[k] != 0 ? length - 1 - t : t;
        copy_axis_range(item.dtype(), outer, inner, 1, item.raw_data(), 1, 0, stacked[k].raw_data(), length, pos);
      }
    }
    std::vector<Value> result;
    for (size_t i = 0; i < n_state_; ++i) result.push_back(std::move(body_in[i]));
    for (size_t k = 0; k < n_scan_out_; ++k) {
      if (length == 0) {
        auto [dt, shape] = declared_output(*decl_, n_state_ + k);
        ORCHARD_ASSIGN_OR_RETURN(int64_t axis, output_axis(k, static_cast<int64_t>(shape.rank()) + 1));
        ORCHARD_ASSIGN_OR_RETURN(stacked[k], stack_axis({}, axis, false, ctx, n_state_ + k, dt, shape));
      }
      result.emplace_back(std::move(stacked[k]));
    }
    return result;
  }

  Status run_v9(OpContext& ctx) const {
    std::vector<Value> states(n_state_);
    for (size_t i = 0; i < n_state_; ++i) {
      if (!ctx.has_input(i)) return invalid_argument("state input ", i, " is missing");
      states[i] = ctx.value(i);
    }
    std::vector<Tensor> scan_in;
    std::vector<int64_t> axes(n_scan_in_);
    int64_t length = -1;
    for (size_t j = 0; j < n_scan_in_; ++j) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(n_state_ + j));
      ORCHARD_ASSIGN_OR_RETURN(axes[j], normalize_axis(in_axes_[j], static_cast<int64_t>(x->rank()), "scan_input_axes"));
      const int64_t len = x->dim(axes[j]);
      if (length >= 0 && len != length) {
        return invalid_argument("scan input ", j, " ", x->description(), " has ", len, " steps along axis ", axes[j],
                                ", but earlier scan inputs have ", length);
      }
      length = len;
      scan_in.push_back(*x);
    }
    ORCHARD_ASSIGN_OR_RETURN(std::vector<Value> outs, scan_loop(ctx, std::move(states), scan_in, axes, length));
    for (size_t i = 0; i < outs.size() && i < ctx.num_outputs(); ++i) ctx.set_output(i, std::move(outs[i]));
    return Status::OK();
  }

  // Opset 8: every input has a leading batch axis; scan inputs are [batch, sequence, ...].
  Status run_v8(OpContext& ctx) const {
    std::vector<const Tensor*> states(n_state_), scans(n_scan_in_);
    int64_t batch = -1, max_len = -1;
    auto check_batch = [&](const Tensor* t, std::string_view what, size_t i, size_t min_rank) -> Status {
      if (t->rank() < min_rank) return invalid_argument(what, " ", i, " ", t->description(), " must have rank >= ", min_rank);
      if (batch >= 0 && t->dim(0) != batch) {
        return invalid_argument(what, " ", i, " ", t->description(), " has batch ", t->dim(0), ", expected ", batch);
      }
      batch = t->dim(0);
      return Status::OK();
    };
    for (size_t i = 0; i < n_state_; ++i) {
      ORCHARD_ASSIGN_OR_RETURN(states[i], ctx.input_tensor(1 + i));
      ORCHARD_RETURN_IF_ERROR(check_batch(states[i], "state input", i, 1));
    }
    for (size_t j = 0; j < n_scan_in_; ++j) {
      ORCHARD_ASSIGN_OR_RETURN(scans[j], ctx.input_tensor(1 + n_state_ + j));
      ORCHARD_RETURN_IF_ERROR(check_batch(scans[j], "scan input", j, 2));
      if (max_len >= 0 && scans[j]->dim(1) != max_len) {
        return invalid_argument("scan input ", j, " ", scans[j]->description(), " has ", scans[j]->dim(1),
                                " steps, but earlier scan inputs have ", max_len);
      }
      max_len = scans[j]->dim(1);
    }
    std::vector<int64_t> lens(static_cast<size_t>(batch), max_len);
    if (ctx.has_input(0)) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* sl, ctx.input_tensor(0));
      if (!dtype_is_integer(sl->dtype()) || sl->numel() != batch) {
        return invalid_argument("sequence_lens must hold ", batch, " integers, got ", sl->description());
      }
      for (int64_t b = 0; b < batch; ++b) {
        lens[b] = element_as_int(*sl, b);
        if (lens[b] < 0 || lens[b] > max_len) {
          return invalid_argument("sequence_lens[", b, "] = ", lens[b], " is outside [0, ", max_len, "]");
        }
      }
    }
    // Per batch entry: the final states and the scan outputs (padded with zeros past its length).
    std::vector<std::vector<Tensor>> per_out(n_state_ + n_scan_out_);
    const std::vector<int64_t> axes(n_scan_in_, 0);
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<Value> st(n_state_);
      for (size_t i = 0; i < n_state_; ++i) {
        ORCHARD_ASSIGN_OR_RETURN(Tensor s, slice_axis(*states[i], 0, b, ctx, 0));
        st[i] = std::move(s);
      }
      std::vector<Tensor> sc(n_scan_in_);
      for (size_t j = 0; j < n_scan_in_; ++j) {
        ORCHARD_ASSIGN_OR_RETURN(Tensor s, slice_axis(*scans[j], 0, b, ctx, 0));
        if (lens[b] < max_len) {
          // Keep only the first lens[b] steps, so reverse scans start at the last valid step.
          std::vector<int64_t> d = s.shape().dims();
          const int64_t inner = d[0] ? s.numel() / d[0] : 0;
          d[0] = lens[b];
          ORCHARD_ASSIGN_OR_RETURN(Tensor cut, make_request_tensor(ctx, 0, s.dtype(), Shape(d)));
          copy_elements(s.dtype(), s.raw_data(), 0, cut.raw_data(), 0, lens[b] * inner);
          s = std::move(cut);
        }
        sc[j] = std::move(s);
      }
      ORCHARD_ASSIGN_OR_RETURN(std::vector<Value> outs, scan_loop(ctx, std::move(st), sc, axes, lens[b]));
      for (size_t k = 0; k < outs.size(); ++k) {
        if (!outs[k].is_tensor()) return invalid_argument("output ", k, " must be a tensor, got ", outs[k].description());
        Tensor t = std::move(outs[k].tensor());
        if (k >= n_state_ && t.rank() >= 1 && t.dim(0) < max_len) {
          std::vector<int64_t> d = t.shape().dims();
          d[0] = max_len;
          ORCHARD_ASSIGN_OR_RETURN(Tensor padded, make_request_tensor(ctx, k, t.dtype(), Shape(d)));
          if (t.dtype() != DType::string) std::memset(padded.raw_data(), 0, padded.nbytes());
          copy_elements(t.dtype(), t.raw_data(), 0, padded.raw_data(), 0, t.numel());
          t = std::move(padded);
        }
        per_out[k].push_back(std::move(t));
      }
    }
    for (size_t k = 0; k < per_out.size() && k < ctx.num_outputs(); ++k) {
      auto [dt, shape] = declared_output(*decl_, k);
      if (k >= n_state_ && shape.rank() > 0) shape.dims().insert(shape.dims().begin(), max_len);
      ORCHARD_ASSIGN_OR_RETURN(Tensor y, stack_axis(per_out[k], 0, false, ctx, k, dt, shape));
      ctx.set_output(k, std::move(y));
    }
    return Status::OK();
  }

  const graph::Graph* decl_ = nullptr;  // owned by the node's attribute
  GraphPtr body_;
  bool v8_ = false;
  size_t n_state_ = 0, n_scan_in_ = 0, n_scan_out_ = 0;
  std::vector<int64_t> in_axes_, in_dirs_, out_axes_, out_dirs_;
};

constexpr KernelDef kKernels[] = {
    {"", "If", 1, kVerifiedOpset, IfKernel::create},
    {"", "Loop", 1, kVerifiedOpset, LoopKernel::create},
    {"", "Scan", 8, kVerifiedOpset, ScanKernel::create},
};

}  // namespace

std::span<const KernelDef> control_flow_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
