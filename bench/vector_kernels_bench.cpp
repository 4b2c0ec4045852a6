// The vectorised float32 CPU kernels (src/backends/cpu/opt/*_vec.cpp) against the reference kernels, one
// node at a time through the CPU backend, on shapes from the standard models: Softmax of BERT's attention
// (12x128x128), LayerNorm (128x768), GELU (128x3072, com.orchard Gelu and the Erf op), Add with a bias
// broadcast ([128, 3072] + [3072]) and a channel broadcast, Sigmoid, resnet50's 3x3/2 MaxPool. Bytes
// processed are inputs + output.
// One thread (the session pool with no workers) unless the name says /threads:2.
//   ./build/release/bench/orchard_bench --benchmark_filter=Vec
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.hpp"
#include "orchard/thread_pool.hpp"
#include "runtime/executor.hpp"

namespace orchard {
namespace {

struct NodeSpec {
  std::string op;
  int opset;
  std::string domain;
  std::vector<Shape> inputs;
  std::map<std::string, graph::Attribute, std::less<>> attributes;
};

Tensor random_input(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-4, 4);
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (float& f : v) f = dist(rng);
  return Tensor::from_vector<float>(shape, v);
}

// Runs one node on the CPU backend (best variants, or the reference kernels alone) per iteration.
void run_node(benchmark::State& state, const NodeSpec& spec, bool reference, int threads) {
  auto g = std::make_shared<graph::Graph>();
  graph::Node node;
  node.name = "bench";
  node.op_type = spec.op;
  node.domain = spec.domain;
  node.opset = spec.opset;
  node.attributes = spec.attributes;
  std::vector<Value> feeds;
  int64_t bytes = 0;
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    ValueInfo info;
    info.name = "x" + std::to_string(i);
    info.kind = Value::Kind::tensor;
    info.dtype = DType::float32;
    g->inputs.push_back(info);
    node.inputs.push_back(info.name);
    feeds.emplace_back(random_input(spec.inputs[i], static_cast<uint32_t>(i + 1)));
    bytes += spec.inputs[i].numel() * 4;
  }
  node.outputs.push_back("y");
  ValueInfo out;
  out.name = "y";
  g->outputs.push_back(out);
  g->nodes.push_back(std::move(node));
  std::shared_ptr<runtime::Backend> cpu =
      reference ? std::shared_ptr<runtime::Backend>(cpu::CpuBackend::reference_only(SessionOptions{}))
                : std::make_shared<cpu::CpuBackend>(SessionOptions{});
  auto compiled = runtime::CompiledGraph::compile(g, {cpu}, nullptr);
  if (!compiled.ok()) {
    state.SkipWithError(compiled.status().to_string().c_str());
    return;
  }
  ThreadPool pool(threads);
  runtime::RunEnv env;
  env.pool = &pool;
  env.allocator = &default_allocator();
  int64_t out_bytes = 0;
  for (auto _ : state) {
    auto y = (*compiled)->run(feeds, env, nullptr);
    if (!y.ok()) {
      state.SkipWithError(y.status().to_string().c_str());
      return;
    }
    out_bytes = static_cast<int64_t>((*y)[0].tensor().nbytes());
    benchmark::DoNotOptimize(y);
  }
  state.SetBytesProcessed(state.iterations() * (bytes + out_bytes));
}

graph::Attribute int_attr(int64_t v) {
  graph::Attribute a;
  a.type = graph::Attribute::Type::i;
  a.i = v;
  return a;
}
graph::Attribute string_attr(const std::string& v) {
  graph::Attribute a;
  a.type = graph::Attribute::Type::s;
  a.s = v;
  return a;
}

const NodeSpec kSoftmax{"Softmax", 13, "", {Shape{1, 12, 128, 128}}, {{"axis", int_attr(-1)}}};
const NodeSpec kLayerNorm{
    "LayerNormalization", 17, "", {Shape{128, 768}, Shape{768}, Shape{768}}, {{"axis", int_attr(-1)}}};
const NodeSpec kGelu{"Gelu", 1, "com.orchard", {Shape{128, 3072}}, {{"approximate", string_attr("none")}}};
const NodeSpec kGeluTanh{"Gelu", 1, "com.orchard", {Shape{128, 3072}}, {{"approximate", string_attr("tanh")}}};
const NodeSpec kErf{"Erf", 13, "", {Shape{128, 3072}}, {}};
const NodeSpec kAddBias{"Add", 14, "", {Shape{128, 3072}, Shape{3072}}, {}};
const NodeSpec kAddChannel{"Add", 14, "", {Shape{1, 96, 56, 56}, Shape{1, 96, 1, 1}}, {}};
const NodeSpec kMulSame{"Mul", 14, "", {Shape{1, 96, 56, 56}, Shape{1, 96, 56, 56}}, {}};
const NodeSpec kSigmoid{"Sigmoid", 13, "", {Shape{1, 96, 56, 56}}, {}};
graph::Attribute ints_attr(std::vector<int64_t> v) {
  graph::Attribute a;
  a.type = graph::Attribute::Type::ints;
  a.ints = std::move(v);
  return a;
}
const NodeSpec kMaxPool{
    "MaxPool",
    12,
    "",
    {Shape{1, 64, 112, 112}},
    {{"kernel_shape", ints_attr({3, 3})}, {"strides", ints_attr({2, 2})}, {"pads", ints_attr({1, 1, 1, 1})}}};

#define ORCHARD_VEC_BENCH(name, spec)                                                 \
  void BM_Vec_##name(benchmark::State& s) { run_node(s, spec, false, 1); }            \
  void BM_Ref_##name(benchmark::State& s) { run_node(s, spec, true, 1); }             \
  void BM_Vec_##name##_threads2(benchmark::State& s) { run_node(s, spec, false, 2); } \
  void BM_Ref_##name##_threads2(benchmark::State& s) { run_node(s, spec, true, 2); }  \
  BENCHMARK(BM_Vec_##name)->Unit(benchmark::kMicrosecond);                            \
  BENCHMARK(BM_Ref_##name)->Unit(benchmark::kMicrosecond);                            \
  BENCHMARK(BM_Vec_##name##_threads2)->Unit(benchmark::kMicrosecond)->UseRealTime();  \
  BENCHMARK(BM_Ref_##name##_threads2)->Unit(benchmark::kMicrosecond)->UseRealTime();

ORCHARD_VEC_BENCH(Softmax_12x128x128, kSoftmax)
ORCHARD_VEC_BENCH(LayerNorm_128x768, kLayerNorm)
ORCHARD_VEC_BENCH(Gelu_128x3072, kGelu)
ORCHARD_VEC_BENCH(GeluTanh_128x3072, kGeluTanh)
ORCHARD_VEC_BENCH(Erf_128x3072, kErf)
ORCHARD_VEC_BENCH(AddBias_128x3072, kAddBias)
ORCHARD_VEC_BENCH(AddChannel_96x56x56, kAddChannel)
ORCHARD_VEC_BENCH(MulSame_96x56x56, kMulSame)
ORCHARD_VEC_BENCH(Sigmoid_96x56x56, kSigmoid)
ORCHARD_VEC_BENCH(MaxPool3x3s2_64x112x112, kMaxPool)

}  // namespace
}  // namespace orchard
