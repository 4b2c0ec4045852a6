// Sequences and optionals: Sequence*, ConcatFromSequence, SplitToSequence, SequenceMap, Optional*.
#include <algorithm>

#include "backends/cpu/copy_util.hpp"
#include "backends/cpu/reference/families.hpp"
#include "backends/cpu/element_types.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/kernel_inputs.hpp"

namespace orchard::cpu::reference {

namespace {

Result<const Value*> sequence_input(OpContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return invalid_argument("input ", i, " is missing");
  const Value& v = ctx.value(i);
  if (!v.is_sequence()) return invalid_argument("input ", i, " ('", ctx.node().inputs[i], "') must be a sequence, got ", v.description());
  return &v;
}

// Reads an optional position input (a one-element integer tensor) and checks it against
// [-size, size - 1] (or [-size, size] when `allow_end`). Returns `fallback` when absent.
Result<int64_t> position_input(OpContext& ctx, size_t i, int64_t size, bool allow_end, int64_t fallback) {
  if (!ctx.has_input(i)) return fallback;
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* p, ctx.input_tensor(i));
  if (p->numel() != 1 || !dtype_is_integer(p->dtype())) {
    return invalid_argument("position must be one integer, got ", p->description());
  }
  const int64_t pos = element_as_int(*p, 0);
  const int64_t hi = allow_end ? size : size - 1;
  if (pos < -size || pos > hi) {
    return invalid_argument("position ", pos, " is out of range [", -size, ", ", hi, "] for a sequence of ", size, " tensors");
  }
  return pos < 0 ? pos + size : pos;
}

Status check_item_dtype(const Value& seq, const Tensor& t) {
  if (seq.sequence_dtype() != DType::undefined && t.dtype() != seq.sequence_dtype()) {
    return invalid_argument("tensor ", t.description(), " does not match the sequence element type ",
                            dtype_name(seq.sequence_dtype()));
  }
  return Status::OK();
}

DType element_type(const Value& seq) {
  if (seq.sequence_dtype() != DType::undefined) return seq.sequence_dtype();
  return seq.items().empty() ? DType::undefined : seq.items()[0].dtype();
}

Status sequence_empty(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(DType dt, dtype_from_onnx_type(ctx.node().attr_int("dtype", 1)));
  ctx.set_output(0, Value::sequence({}, dt));
  return Status::OK();
}

Status sequence_construct(OpContext& ctx) {
  std::vector<Tensor> items;
  DType dt = DType::undefined;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(i));
    if (i > 0 && t->dtype() != dt) {
      return invalid_argument("input ", i, " ", t->description(), " differs in element type from input 0 (", dtype_name(dt), ")");
    }
    dt = t->dtype();
    items.push_back(*t);
  }
  if (items.empty()) return invalid_argument("SequenceConstruct needs at least one input");
  ctx.set_output(0, Value::sequence(std::move(items), dt));
  return Status::OK();
}

Status sequence_insert(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(1));
  ORCHARD_RETURN_IF_ERROR(check_item_dtype(*seq, *t));
  const int64_t n = static_cast<int64_t>(seq->items().size());
  ORCHARD_ASSIGN_OR_RETURN(int64_t pos, position_input(ctx, 2, n, true, n));
  std::vector<Tensor> items = seq->items();
  items.insert(items.begin() + pos, *t);
  ctx.set_output(0, Value::sequence(std::move(items), t->dtype()));
  return Status::OK();
}

Status sequence_at(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
  if (!ctx.has_input(1)) return invalid_argument("input 1 (position) is missing");
  const int64_t n = static_cast<int64_t>(seq->items().size());
  ORCHARD_ASSIGN_OR_RETURN(int64_t pos, position_input(ctx, 1, n, false, 0));
  ctx.set_output(0, seq->items()[pos]);
  return Status::OK();
}

Status sequence_erase(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
  const int64_t n = static_cast<int64_t>(seq->items().size());
  if (n == 0) return invalid_argument("cannot erase from an empty sequence");
  ORCHARD_ASSIGN_OR_RETURN(int64_t pos, position_input(ctx, 1, n, false, n - 1));
  std::vector<Tensor> items = seq->items();
  items.erase(items.begin() + pos);
  ctx.set_output(0, Value::sequence(std::move(items), element_type(*seq)));
  return Status::OK();
}

Status sequence_length(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
  ctx.set_output(0, Tensor::scalar<int64_t>(static_cast<int64_t>(seq->items().size())));
  return Status::OK();
}

Status concat_from_sequence(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
  const auto& items = seq->items();
  if (items.empty()) return invalid_argument("cannot concatenate an empty sequence");
  const graph::Attribute* axis_attr = ctx.node().attr("axis");
  if (axis_attr == nullptr) return invalid_argument("attribute 'axis' is missing");
  const bool new_axis = ctx.node().attr_int("new_axis", 0) != 0;
  const Tensor& first = items[0];
  const int64_t rank = static_cast<int64_t>(first.rank());
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", 0), new_axis ? rank + 1 : rank));
  // With new_axis each item contributes one slice; otherwise its extent along `axis`.
  std::vector<int64_t> dims = first.shape().dims();
  if (new_axis) dims.insert(dims.begin() + axis, 1);
  const AxisView v = view_around(Shape(dims), axis);
  int64_t total = 0;
  std::vector<int64_t> extent(items.size());
  for (size_t k = 0; k < items.size(); ++k) {
    const Tensor& t = items[k];
    if (t.dtype() != first.dtype()) {
      return invalid_argument("tensor ", k, " ", t.description(), " differs in element type from tensor 0 ", first.description());
    }
    bool ok = static_cast<int64_t>(t.rank()) == rank;
    for (int64_t d = 0; ok && d < rank; ++d) {
      if ((new_axis || d != axis) && t.dim(d) != first.dim(d)) ok = false;
    }
    if (!ok) {
      return invalid_argument("tensor ", k, " ", t.description(), " cannot be concatenated with tensor 0 ",
                              first.description(), " along axis ", axis, new_axis ? " (new axis)" : "");
    }
    extent[k] = new_axis ? 1 : t.dim(axis);
    total += extent[k];
  }
  dims[axis] = total;
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, first.dtype(), Shape(dims)));
  int64_t offset = 0;  // position along the axis
  for (size_t k = 0; k < items.size(); ++k) {
    copy_axis_range(first.dtype(), v.outer, v.inner, extent[k], items[k].raw_data(), extent[k], 0, y.raw_data(), total,
                    offset);
    offset += extent[k];
  }
  return Status::OK();
}

Status split_to_sequence(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const int64_t rank = static_cast<int64_t>(x->rank());
  if (rank == 0) return invalid_argument("input must have rank >= 1, got ", x->description());
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", 0), rank));
  const bool keepdims = ctx.node().attr_int("keepdims", 1) != 0;
  const int64_t dim = x->dim(axis);
  std::vector<int64_t> sizes;
  bool squeeze = false;
  if (!ctx.has_input(1)) {
    sizes.assign(static_cast<size_t>(dim), 1);
    squeeze = !keepdims;
  } else {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* split, ctx.input_tensor(1));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> s, tensor_to_ints(*split, "split"));
    if (split->rank() == 0) {
      const int64_t chunk = s[0];
      if (chunk <= 0) return invalid_argument("split ", chunk, " must be positive");
      for (int64_t at = 0; at < dim; at += chunk) sizes.push_back(std::min(chunk, dim - at));
    } else if (split->rank() == 1) {
      int64_t sum = 0;
      for (int64_t v : s) {
        if (v < 0) return invalid_argument("split sizes must not be negative, got ", v);
        sum += v;
      }
      if (sum != dim) return invalid_argument("split sizes add up to ", sum, ", but axis ", axis, " has ", dim);
      sizes = std::move(s);
    } else {
      return invalid_argument("split must be a scalar or 1-D, got ", split->description());
    }
  }
  const AxisView v = view_around(x->shape(), axis);
  std::vector<Tensor> items;
  int64_t offset = 0;
  for (int64_t len : sizes) {
    std::vector<int64_t> dims = x->shape().dims();
    dims[axis] = len;
    if (squeeze) dims.erase(dims.begin() + axis);
    ORCHARD_ASSIGN_OR_RETURN(Tensor t, make_request_tensor(ctx, 0, x->dtype(), Shape(dims)));
    copy_axis_range(x->dtype(), v.outer, v.inner, len, x->raw_data(), dim, offset, t.raw_data(), len, 0);
    offset += len;
    items.push_back(std::move(t));
  }
  ctx.set_output(0, Value::sequence(std::move(items), x->dtype()));
  return Status::OK();
}

// ---- SequenceMap ----

class SequenceMapKernel final : public OpKernel {
 public:
  static Result<std::unique_ptr<OpKernel>> create(const KernelCreateContext& ctx) {
    auto k = std::make_unique<SequenceMapKernel>();
    ORCHARD_ASSIGN_OR_RETURN(k->decl_, graph_attr(ctx.node, "body"));
    if (k->decl_->inputs.size() != ctx.node.inputs.size()) {
      return invalid_argument("body has ", k->decl_->inputs.size(), " inputs, but the node has ", ctx.node.inputs.size());
    }
    if (k->decl_->outputs.size() != ctx.node.outputs.size()) {
      return invalid_argument("body has ", k->decl_->outputs.size(), " outputs, but the node has ", ctx.node.outputs.size());
    }
    ORCHARD_ASSIGN_OR_RETURN(k->body_, compile_graph_attr(ctx, "body"));
    return std::unique_ptr<OpKernel>(std::move(k));
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
    const size_t n = seq->items().size();
    for (size_t i = 1; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) return invalid_argument("input ", i, " is missing");
      const Value& v = ctx.value(i);
      if (v.is_sequence() && v.items().size() != n) {
        return invalid_argument("input ", i, " is a sequence of ", v.items().size(), " tensors, but input 0 has ", n);
      }
      if (!v.is_sequence() && !v.is_tensor()) return invalid_argument("input ", i, " must be a tensor or sequence, got ", v.description());
    }
    const size_t n_out = decl_->outputs.size();
    std::vector<std::vector<Tensor>> results(n_out);
    std::vector<Value> body_in(ctx.num_inputs());
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      if (!ctx.value(i).is_sequence()) body_in[i] = ctx.value(i);
    }
    for (size_t e = 0; e < n; ++e) {
      ORCHARD_RETURN_IF_ERROR(ctx.check_abort());
      for (size_t i = 0; i < ctx.num_inputs(); ++i) {
        if (ctx.value(i).is_sequence()) body_in[i] = ctx.value(i).items()[e];
      }
      ORCHARD_ASSIGN_OR_RETURN(std::vector<Value> outs, ctx.run_subgraph(*body_, body_in));
      for (size_t k = 0; k < n_out && k < outs.size(); ++k) {
        if (!outs[k].is_tensor()) return invalid_argument("body output ", k, " must be a tensor, got ", outs[k].description());
        results[k].push_back(std::move(outs[k].tensor()));
      }
    }
    for (size_t k = 0; k < n_out; ++k) {
      DType dt = decl_->outputs[k].dtype;
      if (!results[k].empty()) dt = results[k][0].dtype();
      for (const Tensor& t : results[k]) {
        if (t.dtype() != dt) return invalid_argument("body output ", k, " changes element type between elements");
      }
      ctx.set_output(k, Value::sequence(std::move(results[k]), dt));
    }
    return Status::OK();
  }

 private:
  const graph::Graph* decl_ = nullptr;  // owned by the node's attribute
  std::shared_ptr<const runtime::CompiledGraph> body_;
};

// ---- Optional ----

Status optional_make(OpContext& ctx) {
  if (ctx.has_input(0)) {
    const Value& v = ctx.value(0);
    if (v.is_optional()) return invalid_argument("input must be a tensor or sequence, got ", v.description());
    ctx.set_output(0, Value::optional(v));
    return Status::OK();
  }
  if (ctx.node().attr("type") == nullptr) return invalid_argument("an empty Optional needs the 'type' attribute");
  ctx.set_output(0, Value::optional_none());
  return Status::OK();
}

Status optional_has_element(OpContext& ctx) {
  bool has = false;
  if (ctx.has_input(0)) {
    const Value& v = ctx.value(0);
    has = v.is_optional() ? v.has_element() : true;
  }
  ctx.set_output(0, Tensor::scalar<bool>(has));
  return Status::OK();
}

Status optional_get_element(OpContext& ctx) {
  if (!ctx.has_input(0)) return invalid_argument("input 0 is missing");
  const Value& v = ctx.value(0);
  if (!v.is_optional()) {
    ctx.set_output(0, v);  // a tensor or sequence is its own element
    return Status::OK();
  }
  if (!v.has_element()) return invalid_argument("the optional input is empty");
  ctx.set_output(0, v.element());
  return Status::OK();
}

constexpr KernelDef kKernels[] = {
    {"", "SequenceEmpty", 11, kVerifiedOpset, stateless<sequence_empty>},
    {"", "SequenceConstruct", 11, kVerifiedOpset, stateless<sequence_construct>},
    {"", "SequenceInsert", 11, kVerifiedOpset, stateless<sequence_insert>},
    {"", "SequenceAt", 11, kVerifiedOpset, stateless<sequence_at>},
    {"", "SequenceErase", 11, kVerifiedOpset, stateless<sequence_erase>},
    {"", "SequenceLength", 11, kVerifiedOpset, stateless<sequence_length>},
    {"", "ConcatFromSequence", 11, kVerifiedOpset, stateless<concat_from_sequence>},
    {"", "SplitToSequence", 11, kVerifiedOpset, stateless<split_to_sequence>},
    {"", "SequenceMap", 17, kVerifiedOpset, SequenceMapKernel::create},
    {"", "Optional", 15, kVerifiedOpset, stateless<optional_make>},
    {"", "OptionalHasElement", 15, kVerifiedOpset, stateless<optional_has_element>},
    {"", "OptionalGetElement", 15, kVerifiedOpset, stateless<optional_get_element>},
};

}  // namespace

std::span<const KernelDef> sequence_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
