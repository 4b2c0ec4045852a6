// The CUDA backend's kernel table: one line per op and opset range (ending at kVerifiedOpset), with the
// dtypes the kernel takes and the inputs it reads on the host. Ops absent here run on the CPU.
#include <set>
#include <string_view>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cuda/cuda_ops.hpp"

namespace orchard::cuda {

namespace {

using runtime::KernelDef;
constexpr int kLast = runtime::kVerifiedOpset;
// Float kernels take bfloat16 as float16: 16-bit data, float32 math (the flash attention kernel excepted).
const runtime::DTypeSet kFloat = {DType::float32, DType::float16, DType::bfloat16};
const runtime::DTypeSet kCastable = {DType::float32, DType::float16, DType::bfloat16, DType::int32, DType::int64,
                                     DType::boolean};
// Data movement takes float tensors, masks, and integer tensors that carry the model's input data (token ids on
// their way to an embedding Gather): integer shape arithmetic (Shape -> Gather -> Concat -> Reshape) stays on the
// CPU, where its consumers read it, instead of bouncing to the GPU and back (cuda_declines tells them apart).
const runtime::DTypeSet kMoved = {DType::float32, DType::float16, DType::bfloat16, DType::boolean, DType::int32,
                                  DType::int64};
const runtime::DTypeSet kBool = {DType::boolean};
const runtime::DTypeSet kShapeInput = {DType::int64};

const KernelDef kTable[] = {
    // elementwise (cuda_ops_math.cpp)
    {"", "Add", 7, kLast, create_binary, kFloat},
    {"", "Sub", 7, kLast, create_binary, kFloat},
    {"", "Mul", 7, kLast, create_binary, kFloat},
    {"", "Div", 7, kLast, create_binary, kFloat},
    {"", "Pow", 7, kLast, create_binary, kFloat},
    {"", "Max", 8, kLast, create_binary, kFloat},
    {"", "Min", 8, kLast, create_binary, kFloat},
    {"", "Relu", 6, kLast, create_unary, kFloat},
    {"", "Sigmoid", 6, kLast, create_unary, kFloat},
    {"", "Tanh", 6, kLast, create_unary, kFloat},
    {"", "Erf", 9, kLast, create_unary, kFloat},
    {"", "Exp", 6, kLast, create_unary, kFloat},
    {"", "Log", 6, kLast, create_unary, kFloat},
    {"", "Sqrt", 6, kLast, create_unary, kFloat},
    {"", "Neg", 6, kLast, create_unary, kFloat},
    {"", "Abs", 6, kLast, create_unary, kFloat},
    {"", "Reciprocal", 6, kLast, create_unary, kFloat},
    {"", "Softplus", 1, kLast, create_unary, kFloat},
    {"", "Softsign", 1, kLast, create_unary, kFloat},
    {"", "LeakyRelu", 6, kLast, create_unary, kFloat},
    {"", "Elu", 6, kLast, create_unary, kFloat},
    {"", "Selu", 6, kLast, create_unary, kFloat},
    {"", "HardSigmoid", 6, kLast, create_unary, kFloat},
    {"", "HardSwish", 14, kLast, create_unary, kFloat},
    {"", "Clip", 6, 10, create_unary, kFloat},
    {"", "Clip", 11, kLast, create_unary, kFloat, 0, 0, 0, 0b110},
    {"", "Sin", 7, kLast, create_unary, kFloat},
    {"", "Cos", 7, kLast, create_unary, kFloat},
    {"", "Floor", 6, kLast, create_unary, kFloat},
    {"", "Ceil", 6, kLast, create_unary, kFloat},
    {"com.orchard", "Gelu", 1, 1, create_unary, kFloat},
    // linear algebra, normalization, reductions (cuda_ops_math.cpp)
    {"", "MatMul", 1, kLast, create_matmul, kFloat},
    {"", "Gemm", 7, kLast, create_gemm, kFloat},
    {"com.orchard", "FusedMatMul", 1, 1, create_matmul, kFloat},
    // Version 2: the layout attribute (bshd, bs3hd), every operand read in place.
    {"com.orchard", "FusedAttention", 1, 2, create_fused_attention, kFloat},  // cuda_ops_fused.cpp
    {"", "Softmax", 1, kLast, create_softmax, kFloat},
    {"", "LogSoftmax", 1, kLast, create_softmax, kFloat},
    {"", "LayerNormalization", 17, kLast, create_layer_norm, kFloat},
    {"", "ReduceMean", 1, kLast, create_reduce, kFloat},
    {"", "ReduceMax", 1, kLast, create_reduce, kFloat},
    {"", "ReduceMin", 1, kLast, create_reduce, kFloat},
    {"", "ReduceSumSquare", 1, kLast, create_reduce, kFloat},
    {"", "GlobalAveragePool", 1, kLast, create_global_pool, kFloat},
    {"", "GlobalMaxPool", 1, kLast, create_global_pool, kFloat},
#if ORCHARD_CUDA_CUDNN
    {"", "Conv", 1, kLast, create_conv, kFloat},  // cuda_conv.cpp
    {"com.orchard", "FusedConv", 1, 1, create_conv, kFloat},
#endif
    {"", "ReduceSum", 1, 12, create_reduce, kFloat},
    {"", "ReduceSum", 13, kLast, create_reduce, kFloat, 0, 0, 0, 0b10},
    // data movement (cuda_ops_shape.cpp)
    {"", "Identity", 1, kLast, create_reshape, kMoved},
    {"", "Reshape", 5, kLast, create_reshape, kMoved, 0, 0, 0, 0b10},
    {"", "Flatten", 1, kLast, create_reshape, kMoved},
    {"", "Squeeze", 1, 12, create_reshape, kMoved},
    {"", "Squeeze", 13, kLast, create_reshape, kMoved, 0, 0, 0, 0b10},
    {"", "Unsqueeze", 1, 12, create_reshape, kMoved},
    {"", "Unsqueeze", 13, kLast, create_reshape, kMoved, 0, 0, 0, 0b10},
    {"", "Transpose", 1, kLast, create_transpose, kMoved},
    {"", "Concat", 4, kLast, create_concat, kMoved},
    {"", "Slice", 10, kLast, create_slice, kMoved, 0, 0, 0, 0b11110},
    {"", "Expand", 8, kLast, create_expand, kMoved, 0, 0, 0, 0b10},
    {"", "Gather", 1, kLast, create_gather, kMoved},  // indices read on the device
    {"", "Cast", 6, kLast, create_cast, kCastable},
    {"", "Split", 2, 12, create_split, kMoved},
    {"", "Split", 13, kLast, create_split, kMoved, 0, 0, 0, 0b10},
    // masks, selection, pooling, fills (cuda_ops_select.cpp)
    {"", "Equal", 11, kLast, create_predicate, kFloat},
    {"", "Less", 7, kLast, create_predicate, kFloat},
    {"", "Greater", 7, kLast, create_predicate, kFloat},
    {"", "LessOrEqual", 12, kLast, create_predicate, kFloat},
    {"", "GreaterOrEqual", 12, kLast, create_predicate, kFloat},
    {"", "And", 7, kLast, create_predicate, kBool},
    {"", "Or", 7, kLast, create_predicate, kBool},
    {"", "Xor", 7, kLast, create_predicate, kBool},
    {"", "Not", 1, kLast, create_predicate_unary, kBool},
    {"", "IsNaN", 9, kLast, create_predicate_unary, kFloat},
    {"", "Where", 9, kLast, create_where, kMoved, 1},
    {"", "MaxPool", 1, kLast, create_pool, kFloat},
    {"", "AveragePool", 1, kLast, create_pool, kFloat},
    {"", "BatchNormalization", 9, kLast, create_batch_norm, kFloat},
    {"", "ConstantOfShape", 9, kLast, create_constant_of_shape, kShapeInput, 0, 0, 0, 0b1},
    {"", "Range", 11, kLast, create_range, kFloat, 0, 0, 0, 0b111},
};

// The table above, and the CPU's Shape and Size kernels marked metadata-only: they read only the input's
// shape, which the host knows for a device tensor, so they run here with no copy and leave their small
// integer outputs in host memory, where the shape arithmetic reading them runs.
std::vector<runtime::KernelDef> make_table() {
  std::vector<runtime::KernelDef> table(std::begin(kTable), std::end(kTable));
  for (const runtime::KernelDef& k : cpu::all_kernels()) {
    if (!k.domain.empty() || (k.op != "Shape" && k.op != "Size")) continue;
    runtime::KernelDef d = k;
    d.dtypes = runtime::DTypeSet::all();
    d.metadata_only = true;
    table.push_back(d);
  }
  return table;
}

}  // namespace

std::span<const runtime::KernelDef> cuda_kernels() {
  static const std::vector<runtime::KernelDef> table = make_table();
  return table;
}

namespace {

bool is_integer(DType t) { return t == DType::int32 || t == DType::int64; }

// Returns whether `name` is computed from a graph input through ops other than Shape and Size (the model's data,
// such as token ids or an attention mask), as opposed to shape arithmetic made of Shape/Size outputs and
// constants. `seen` keeps the walk linear in the graph's size.
bool carries_input_data(const runtime::GraphView& view, const std::string& name, std::set<std::string>& seen) {
  if (name.empty() || !seen.insert(name).second) return false;
  const int p = view.producer(name);
  if (p < 0) {
    if (view.constant(name)) return false;
    for (const auto& in : view.graph().inputs) {
      if (in.name == name) return true;
    }
    return false;
  }
  const graph::Node& n = view.node(p);
  if (n.op_type == "Shape" || n.op_type == "Size") return false;
  for (const std::string& in : n.inputs) {
    if (carries_input_data(view, in, seen)) return true;
  }
  return false;
}

// The inputs of a data-movement op whose bytes it moves (the others are shapes, axes, indices or a condition).
std::vector<size_t> moved_inputs(const graph::Node& node) {
  if (node.op_type == "Concat") {
    std::vector<size_t> all(node.inputs.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
  }
  if (node.op_type == "Where") return {1, 2};
  return {0};
}

const std::set<std::string_view> kDataMovement = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose",
                                                  "Concat", "Slice", "Expand", "Gather", "Split", "Where"};

}  // namespace

std::string cuda_declines(const runtime::GraphView& view, const graph::Node& node) {
  const std::string& op = node.op_type;
  if (node.domain.empty() && kDataMovement.count(op)) {
    for (size_t i : moved_inputs(node)) {
      if (i >= node.inputs.size() || node.inputs[i].empty() || !is_integer(view.type_of(node.inputs[i]).dtype)) continue;
      std::set<std::string> seen;
      if (!carries_input_data(view, node.inputs[i], seen)) {
        return op + " of integer shape arithmetic stays on the CPU with its readers";
      }
    }
  }
  if ((op == "Max" || op == "Min") && node.inputs.size() != 2) {
    return op + " with " + std::to_string(node.inputs.size()) + " inputs (the CUDA kernel takes two)";
  }
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow" || op == "Max" || op == "Min") {
    const DType a = view.type_of(node.inputs[0]).dtype, b = view.type_of(node.inputs[1]).dtype;
    if (a != DType::undefined && b != DType::undefined && a != b) {
      return op + " of " + std::string(dtype_name(a)) + " and " + std::string(dtype_name(b));
    }
  }
  if (op == "LayerNormalization") {
    for (size_t i = 1; i < node.outputs.size(); ++i) {
      if (!node.outputs[i].empty()) return "LayerNormalization's Mean/InvStdDev outputs have no CUDA kernel";
    }
  }
  if (op == "Gelu") {
    const std::string approx = node.attr_string("approximate", "none");
    if (approx != "none" && approx != "tanh") return "Gelu with approximate '" + approx + "'";
  }
  if (op == "FusedMatMul" || op == "FusedConv") {
    auto act = fused_epilogue(node);
    if (!act.ok()) return op + ": " + act.status().message();
  }
  if (op == "FusedAttention") {
    const DType q = view.type_of(node.inputs[0]).dtype;
    for (size_t i = 1; i < node.inputs.size(); ++i) {
      const DType t = node.inputs[i].empty() ? DType::undefined : view.type_of(node.inputs[i]).dtype;
      if (q != DType::undefined && t != DType::undefined && t != q) return "FusedAttention with inputs of two dtypes";
    }
  }
  if (op == "Conv" || op == "FusedConv") {
    const runtime::ValueType& x = view.type_of(node.inputs[0]);
    if (x.dtype == DType::undefined) return "Conv input without a declared dtype";
    if (x.has_shape && x.shape.size() != 4 && x.shape.size() != 3) {
      return op + " of rank " + std::to_string(x.shape.size()) + " (CUDA: 1-D and 2-D only)";
    }
    const auto pads = node.attr_ints("pads");
    if (pads.size() == 4 && (pads[0] != pads[2] || pads[1] != pads[3])) return "Conv with asymmetric pads";
    if (pads.size() == 2 && pads[0] != pads[1]) return "Conv with asymmetric pads";
  }
  if (op == "MaxPool" || op == "AveragePool") {
    if (node.outputs.size() > 1 && !node.outputs[1].empty()) return "MaxPool's Indices output has no CUDA kernel";
    if (node.attr_int("storage_order", 0) != 0) return "MaxPool storage_order 1 has no CUDA kernel";
    const runtime::ValueType& x = view.type_of(node.inputs[0]);
    if (x.has_shape && x.shape.size() != 4) return op + " of rank " + std::to_string(x.shape.size()) + " (CUDA: 2-D only)";
  }
  if (op == "BatchNormalization") {
    if (node.attr_int("training_mode", 0) != 0) return "BatchNormalization in training mode has no CUDA kernel";
    for (size_t i = 1; i < node.outputs.size(); ++i) {
      if (!node.outputs[i].empty()) return "BatchNormalization's running mean/var outputs have no CUDA kernel";
    }
    const DType x = view.type_of(node.inputs[0]).dtype;
    for (size_t i = 1; i < node.inputs.size(); ++i) {
      const DType p = view.type_of(node.inputs[i]).dtype;
      if (p != DType::undefined && p != x) return "BatchNormalization with parameters of another dtype than X";
    }
  }
  if (op == "ConstantOfShape") {
    const graph::Attribute* a = node.attr("value");
    const DType v = a ? a->t.dtype() : DType::float32;
    if (v != DType::float32 && v != DType::float16 && v != DType::bfloat16) {
      return "ConstantOfShape of " + std::string(dtype_name(v)) + " stays with the shape arithmetic on the CPU";
    }
  }
  if (op == "Split" && node.attr("num_outputs")) return "Split's num_outputs has no CUDA kernel";
  if (op == "Cast") {
    const int64_t to = node.attr_int("to", 0);
    const bool to_float = to == 1 || to == 10 || to == 16;  // float32, float16, bfloat16
    if (!to_float && to != 6 && to != 7 && to != 9) return "Cast to ONNX type " + std::to_string(to);
    const DType from = view.type_of(node.inputs[0]).dtype;
    if (!to_float && from != DType::float32 && from != DType::float16 && from != DType::bfloat16) {
      return "Cast between integer/boolean types stays with the shape arithmetic on the CPU";
    }
  }
  return "";
}

runtime::Capability drop_declined(runtime::Capability cap, const runtime::GraphView& view) {
  std::vector<std::vector<int>> kept;
  for (auto& part : cap.partitions) {
    std::string why;
    for (int n : part) {
      why = cuda_declines(view, view.node(n));
      if (!why.empty()) {
        cap.rejected.push_back({n, why});
        break;
      }
    }
    if (why.empty()) kept.push_back(std::move(part));
  }
  cap.partitions = std::move(kept);
  return cap;
}

}  // namespace orchard::cuda
