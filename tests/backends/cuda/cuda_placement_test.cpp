// Where the CUDA kernel table places graphs, computed without a GPU: a backend made of the CUDA kernel table
// and its declines (device memory simulated) ahead of the CPU, through the real partitioner. Counts the
// partitions and the points where the host must wait for the device (a CPU partition or a host input reading
// data computed on the device). With ORCHARD_STD_MODELS=DIR (filled standard models) it prints the counts
// per model, with this table and with the table less the kernels added in the second CUDA session.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/cuda_test_util.hpp"
#include "onnx/importer.hpp"
#include "orchard/session.hpp"
#include "runtime/graph_optimizer.hpp"
#include "runtime/partitioner.hpp"
#include "testing/model_builder.hpp"
#include "testing/test_backends.hpp"

namespace orchard::testing {
namespace {

// The table as the first CUDA session left it: this one less the ops added since and the metadata-only kernels.
std::vector<runtime::KernelDef> first_session_table() {
  static const std::set<std::string_view> added = {"Split", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
                                                   "And", "Or", "Xor", "Not", "IsNaN", "Where", "MaxPool",
                                                   "AveragePool", "BatchNormalization", "ConstantOfShape", "Range"};
  std::vector<runtime::KernelDef> t;
  for (const auto& k : cuda::cuda_kernels()) {
    if (!added.count(k.op) && !k.metadata_only) t.push_back(k);
  }
  return t;
}

struct Counts {
  int partitions = 0, cuda_partitions = 0, cuda_nodes = 0, nodes = 0;
  int host_waits = 0;  // values computed on the device that the host reads, per run
};

Counts count(const graph::Graph& g, std::span<const runtime::KernelDef> table) {
  auto cuda = std::make_shared<CudaTableBackend>(table);
  auto cpu = runtime::available_backends(SessionOptions{}).back();
  auto placement = runtime::place_graph(g, {cuda, cpu}, {});
  EXPECT_TRUE(placement.ok()) << placement.status().to_string();
  Counts c;
  if (!placement.ok()) return c;
  const bool verbose = std::getenv("ORCHARD_PLACEMENT_VERBOSE") != nullptr;  // name each host wait
  c.nodes = static_cast<int>(g.nodes.size());
  const runtime::GraphView view(g, {});
  // Values whose bytes live on the device: outputs of CUDA nodes other than the metadata-only ones.
  auto on_device = [&](const std::string& name) {
    const int p = view.producer(name);
    if (p < 0 || placement->node_backend[static_cast<size_t>(p)] != 0) return false;
    const std::string& op = g.nodes[static_cast<size_t>(p)].op_type;
    return op != "Shape" && op != "Size";
  };
  for (const auto& part : placement->partitions) {
    ++c.partitions;
    if (part.backend == 0) {
      ++c.cuda_partitions;
      c.cuda_nodes += static_cast<int>(part.spec.nodes.size());
      // Host inputs (Reshape's shape, ...) of CUDA nodes that were computed on the device.
      for (int n : part.spec.nodes) {
        const graph::Node& node = g.nodes[static_cast<size_t>(n)];
        std::string why;
        const auto variants = cuda->variants(view, node, &why);
        if (variants.empty()) continue;
        for (size_t i = 0; i < node.inputs.size() && i < 32; ++i) {
          if (((variants.front()->host_inputs >> i) & 1u) && !node.inputs[i].empty() && on_device(node.inputs[i])) {
            ++c.host_waits;
            if (verbose) std::cout << "  host input " << node.inputs[i] << " of " << node.label() << "\n";
          }
        }
      }
    } else {
      for (const auto& in : part.spec.inputs) {
        if (!on_device(in)) continue;
        ++c.host_waits;
        if (verbose) std::cout << "  CPU partition reads " << in << " (" << g.nodes[static_cast<size_t>(view.producer(in))].op_type << ")\n";
      }
    }
  }
  return c;
}

std::string describe(const Counts& c) {
  return std::to_string(c.partitions) + " partitions (" + std::to_string(c.cuda_partitions) + " CUDA, " +
         std::to_string(c.cuda_nodes) + "/" + std::to_string(c.nodes) + " nodes), " + std::to_string(c.host_waits) +
         " host waits";
}

void add_int64_initializer(ModelBuilder& b, const std::string& name, const std::vector<int64_t>& values) {
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t->add_int64_data(v);
}

void add_ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
  auto* a = n.add_attribute();
  a->set_name(name);
  if (values.size() == 1 && name == "axis") {
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(values[0]);
    return;
  }
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

// A transformer block's exported attention glue: shape arithmetic on the CPU feeding a Reshape, a causal mask,
// and the Where(IsNaN) after Softmax. Float work must stay in one CUDA partition and the host never wait.
TEST(CudaPlacement, AttentionGlueStaysOnTheDevice) {
  constexpr int kFloat = onnx::TensorProto::FLOAT;
  ModelBuilder b;
  b.input("x", kFloat, {"N", 8, 16}).input("mask", onnx::TensorProto::BOOL, {1, 8, 8}).output("y", kFloat, {"N", 8, 16});
  b.initializer("w", {16, 16}, 0.01f);
  b.initializer("fill", {1}, -1e4f);
  b.initializer("zero", {1}, 0.f);
  b.node("MatMul", {"x", "w"}, {"q"});
  b.node("Shape", {"q"}, {"qs"});
  add_int64_initializer(b, "i0", {0});
  b.node("Gather", {"qs", "i0"}, {"n"});
  add_int64_initializer(b, "rest", {8, 16});
  add_ints(b.node("Concat", {"n", "rest"}, {"shape"}), "axis", {0});
  add_ints(b.node("Transpose", {"x"}, {"xt"}), "perm", {0, 2, 1});
  b.node("MatMul", {"q", "xt"}, {"s"});
  b.node("Where", {"mask", "s", "fill"}, {"sm"});
  b.node("Softmax", {"sm"}, {"p"});
  b.node("IsNaN", {"p"}, {"nan"});
  b.node("Where", {"nan", "zero", "p"}, {"pz"});
  b.node("MatMul", {"pz", "q"}, {"o"});
  b.node("Reshape", {"o", "shape"}, {"y"});
  const std::string bytes = b.bytes();
  auto model = onnx_import::import_model_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), {}, {});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Counts now = count(*model->graph, cuda::cuda_kernels());
  EXPECT_EQ(now.host_waits, 0) << describe(now);
  EXPECT_EQ(now.cuda_partitions, 2) << describe(now) << ": the shape arithmetic splits the float work once";
  const auto old_table = first_session_table();
  const Counts before = count(*model->graph, old_table);
  EXPECT_GT(before.host_waits, 0) << describe(before);
  std::cout << "attention glue: " << describe(before) << " -> " << describe(now) << "\n";
}

// GPT-2's embedding: the token ids (int64, a graph input) are reshaped by a shape computed from Shape and read by
// the embedding Gather. The ids' Reshape and the Gather run on the GPU (the ids never visit the host); the
// integer shape arithmetic stays on the CPU; the host never waits for the device.
TEST(CudaPlacement, TokenIdsStayOnTheDeviceAndShapeArithmeticOnTheHost) {
  constexpr int kFloat = onnx::TensorProto::FLOAT, kInt64 = onnx::TensorProto::INT64;
  ModelBuilder b;
  b.input("ids", kInt64, {"N", "S"}).output("y", kFloat, {"N", "S", 16});
  b.initializer("emb", {50, 16}, 0.01f);
  b.initializer("pos", {1, 16}, 0.5f);
  add_int64_initializer(b, "one", {1});
  add_int64_initializer(b, "minus_one", {-1});
  b.node("Shape", {"ids"}, {"shape"});
  add_ints(b.node("Gather", {"shape", "one"}, {"s"}), "axis", {0});
  add_ints(b.node("Concat", {"minus_one", "s"}, {"new_shape"}), "axis", {0});
  b.node("Reshape", {"ids", "new_shape"}, {"ids2"});
  add_ints(b.node("Gather", {"emb", "ids2"}, {"e"}), "axis", {0});
  b.node("Add", {"e", "pos"}, {"y"});
  const std::string bytes = b.bytes();
  auto model = onnx_import::import_model_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), {}, {});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const graph::Graph& g = *model->graph;
  auto cuda = std::make_shared<CudaTableBackend>(cuda::cuda_kernels());
  auto cpu = runtime::available_backends(SessionOptions{}).back();
  auto placement = runtime::place_graph(g, {cuda, cpu}, {});
  ASSERT_TRUE(placement.ok()) << placement.status().to_string();
  auto backend_of = [&](const std::string& output) {
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      if (!g.nodes[n].outputs.empty() && g.nodes[n].outputs[0] == output) return placement->node_backend[n];
    }
    ADD_FAILURE() << "no node makes " << output;
    return -1;
  };
  EXPECT_EQ(backend_of("ids2"), 0) << "the ids' Reshape runs on the GPU";
  EXPECT_EQ(backend_of("e"), 0) << "the embedding Gather runs on the GPU";
  EXPECT_EQ(backend_of("s"), 1) << "the Gather of a shape stays on the CPU";
  EXPECT_EQ(backend_of("new_shape"), 1) << "the Concat of a shape stays on the CPU";
  const Counts now = count(g, cuda::cuda_kernels());
  EXPECT_EQ(now.host_waits, 0) << describe(now);
}

TEST(CudaPlacement, StandardModels) {
  const char* dir = std::getenv("ORCHARD_STD_MODELS");
  if (!dir) GTEST_SKIP() << "set ORCHARD_STD_MODELS to a folder of filled standard models (fill_weights.py)";
  const auto old_table = first_session_table();
  auto cpu = runtime::available_backends(SessionOptions{}).back();
  int seen = 0;
  for (const char* name : {"resnet50", "mobilenet_v2", "efficientnet_b0", "convnext_tiny", "bert_base", "gpt2",
                           "vit_b_16", "whisper_tiny_encoder"}) {
    const std::filesystem::path path = std::filesystem::path(dir) / (std::string(name) + ".onnx");
    if (!std::filesystem::exists(path)) continue;
    ++seen;
    onnx_import::ImportOptions o;
    auto cuda = std::make_shared<CudaTableBackend>(cuda::cuda_kernels());
    o.has_kernel = [&](const std::string& d, const std::string& op, int opset) {
      return cuda->has_op(d, op, opset) || cpu->has_op(d, op, opset);
    };
    auto model = onnx_import::import_model_file(path, o);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    ASSERT_TRUE(runtime::optimize_graph(*model->graph, {cpu}).ok());  // the session's folding
    const Counts before = count(*model->graph, old_table), now = count(*model->graph, cuda::cuda_kernels());
    std::cout << name << ": before " << describe(before) << "; now " << describe(now) << "\n";
    EXPECT_LE(now.host_waits, before.host_waits) << name;
  }
  EXPECT_GT(seen, 0) << "no standard model in " << dir;
}

}  // namespace
}  // namespace orchard::testing
