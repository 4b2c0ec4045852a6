#include "backends/cpu/kernel_inputs.hpp"

#include <string>
#include <utility>

namespace orchard::cpu {

Result<const graph::Graph*> graph_attr(const graph::Node& node, std::string_view name) {
  const graph::Attribute* a = node.attr(name);
  if (a == nullptr || a->g == nullptr) return invalid_argument("graph attribute '", name, "' is missing");
  return a->g.get();
}

Result<std::shared_ptr<const runtime::CompiledGraph>> compile_graph_attr(const runtime::KernelCreateContext& ctx,
                                                                        std::string_view name) {
  ORCHARD_ASSIGN_OR_RETURN(const graph::Graph* g, graph_attr(ctx.node, name));
  auto compiled = ctx.compile_subgraph(*g);
  if (!compiled.ok()) return compiled.status().with_prefix(std::string("subgraph '") + std::string(name) + "': ");
  return std::move(compiled).value();
}

double element_as_double(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::float32: return t.data<float>()[i];
    case DType::float64: return t.data<double>()[i];
    case DType::float16: return static_cast<float>(t.data<float16>()[i]);
    case DType::bfloat16: return static_cast<float>(t.data<bfloat16>()[i]);
    case DType::int8: return t.data<int8_t>()[i];
    case DType::int16: return t.data<int16_t>()[i];
    case DType::int32: return t.data<int32_t>()[i];
    case DType::int64: return static_cast<double>(t.data<int64_t>()[i]);
    case DType::uint8: return t.data<uint8_t>()[i];
    case DType::uint16: return t.data<uint16_t>()[i];
    case DType::uint32: return t.data<uint32_t>()[i];
    case DType::uint64: return static_cast<double>(t.data<uint64_t>()[i]);
    case DType::boolean: return t.data<bool>()[i] ? 1.0 : 0.0;
    default: return 0.0;
  }
}

int64_t element_as_int(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::int8: return t.data<int8_t>()[i];
    case DType::int16: return t.data<int16_t>()[i];
    case DType::int32: return t.data<int32_t>()[i];
    case DType::int64: return t.data<int64_t>()[i];
    case DType::uint8: return t.data<uint8_t>()[i];
    case DType::uint16: return t.data<uint16_t>()[i];
    case DType::uint32: return t.data<uint32_t>()[i];
    case DType::uint64: return static_cast<int64_t>(t.data<uint64_t>()[i]);
    case DType::boolean: return t.data<bool>()[i] ? 1 : 0;
    default: return static_cast<int64_t>(element_as_double(t, i));
  }
}

Result<std::vector<int64_t>> tensor_to_ints(const Tensor& t, std::string_view what) {
  if (!dtype_is_integer(t.dtype())) return invalid_argument(what, " must be an integer tensor, got ", t.description());
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = element_as_int(t, i);
  return v;
}

}  // namespace orchard::cpu
