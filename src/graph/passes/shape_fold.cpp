// Shape-subgraph folding: Shape of a value whose dims are statically known becomes a constant, and so do
// Gather and Slice of the known dims of a Shape whose other dims are not (the batch dim of an exported
// transformer stays symbolic, its hidden size does not). Constant folding then collapses the
// Gather/Unsqueeze/Concat chains that feed Reshape.
#include <algorithm>

#include "graph/passes/pass.hpp"
#include "graph/passes/pass_util.hpp"

namespace orchard::graph::passes {

namespace {

// The dims of Shape node `n`'s output (its start/end attributes applied), when its input's rank is known.
std::optional<std::vector<Dim>> shape_output(const Graph& g, const Node& n) {
  auto dims = declared_shape(g, n.inputs[0]);
  if (!dims) return std::nullopt;
  const auto rank = static_cast<int64_t>(dims->size());
  auto clamp = [rank](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  const int64_t start = clamp(n.attr_int("start", 0));
  const int64_t end = clamp(n.attr_int("end", rank));
  if (start >= end) return std::vector<Dim>{};
  return std::vector<Dim>(dims->begin() + start, dims->begin() + end);
}

// The elements of `dims` selected by Gather (axis 0) with constant `indices`; nullopt when unknown.
std::optional<Tensor> gather_dims(const std::vector<Dim>& dims, const Tensor& indices) {
  const auto n = static_cast<int64_t>(dims.size());
  std::vector<int64_t> out;
  for (int64_t k = 0; k < indices.numel(); ++k) {
    int64_t idx = indices.dtype() == DType::int64 ? indices.data<int64_t>()[k] : indices.data<int32_t>()[k];
    if (idx < -n || idx >= n) return std::nullopt;  // out of range: leave the error to the kernel
    if (idx < 0) idx += n;
    if (!dims[static_cast<size_t>(idx)].fixed()) return std::nullopt;
    out.push_back(dims[static_cast<size_t>(idx)].value);
  }
  return Tensor::from_vector(indices.shape(), out);
}

// The elements of `dims` selected by a Slice with constant starts/ends (one axis, step 1 or absent).
std::optional<Tensor> slice_dims(const Graph& g, const Node& n, const std::vector<Dim>& dims) {
  if (n.num_inputs() < 3) return std::nullopt;
  auto starts = int_constant(g, n.inputs[1]);
  auto ends = int_constant(g, n.inputs[2]);
  if (!starts || !ends || starts->size() != 1 || ends->size() != 1) return std::nullopt;
  if (n.has_input(3)) {
    auto axes = int_constant(g, n.inputs[3]);
    if (!axes || axes->size() != 1 || ((*axes)[0] != 0 && (*axes)[0] != -1)) return std::nullopt;
  }
  if (n.has_input(4)) {
    auto steps = int_constant(g, n.inputs[4]);
    if (!steps || steps->size() != 1 || (*steps)[0] != 1) return std::nullopt;
  }
  const auto len = static_cast<int64_t>(dims.size());
  auto clamp = [len](int64_t v) { return std::clamp(v < 0 ? v + len : v, int64_t{0}, len); };
  const int64_t start = clamp((*starts)[0]);
  const int64_t end = clamp((*ends)[0]);
  std::vector<int64_t> out;
  for (int64_t k = start; k < end; ++k) {
    if (!dims[static_cast<size_t>(k)].fixed()) return std::nullopt;
    out.push_back(dims[static_cast<size_t>(k)].value);
  }
  return Tensor::from_vector(Shape{static_cast<int64_t>(out.size())}, out);
}

// Replaces node i by initializer `value` under the name of its output.
bool to_constant(Graph& g, const GraphUses& uses, size_t i, Tensor value) {
  const std::string& out = g.nodes[i].outputs[0];
  if (uses.read_outside(out)) return false;  // graph outputs and subgraph reads stay computed
  g.initializers[out] = std::move(value);
  g.value_info.erase(out);
  mark_removed(g, i);
  return true;
}

bool try_fold(Graph& g, const GraphUses& uses, size_t i) {
  const Node& n = g.nodes[i];
  if (n.outputs.size() != 1 || n.inputs.empty() || n.inputs[0].empty()) return false;
  if (is_op(n, "Shape")) {
    auto dims = shape_output(g, n);
    if (!dims) return false;
    std::vector<int64_t> values;
    for (const Dim& d : *dims) {
      if (!d.fixed()) return false;
      values.push_back(d.value);
    }
    return to_constant(g, uses, i, Tensor::from_vector(Shape{static_cast<int64_t>(values.size())}, values));
  }
  if (!is_op(n, "Gather") && !is_op(n, "Slice")) return false;
  const int p = uses.producer(n.inputs[0]);
  if (p < 0 || !is_op(g.nodes[static_cast<size_t>(p)], "Shape")) return false;
  auto dims = shape_output(g, g.nodes[static_cast<size_t>(p)]);
  if (!dims) return false;
  std::optional<Tensor> value;
  if (is_op(n, "Gather")) {
    const Tensor* indices = n.num_inputs() == 2 ? constant(g, n.inputs[1]) : nullptr;
    if (!indices || (indices->dtype() != DType::int64 && indices->dtype() != DType::int32)) return false;
    const int64_t axis = n.attr_int("axis", 0);
    if (axis != 0 && axis != -1) return false;
    value = gather_dims(*dims, *indices);
  } else {
    value = slice_dims(g, n, *dims);
  }
  return value && to_constant(g, uses, i, std::move(*value));
}

}  // namespace

Result<int> fold_shapes(Graph& g, const PassContext& /*ctx*/) { return rewrite_each(g, try_fold); }

}  // namespace orchard::graph::passes
