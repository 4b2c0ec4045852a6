// Helpers of the graph-pass tests: build a model, optimize it, count its ops, and hold a Session with
// OptimizationLevel::extended to one with none on random inputs of random sizes.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernel_registry.hpp"
#include "core/cpu_features.hpp"
#include "graph/passes/pass.hpp"
#include "runtime/kernel_backend.hpp"
#include "onnx/importer.hpp"
#include "orchard/session.hpp"
#include "runtime/graph_optimizer.hpp"
#include "testing/model_builder.hpp"

namespace orchard::graph::passes::testing {

using orchard::testing::ModelBuilder;
constexpr int kFloat = onnx::TensorProto::FLOAT;

// Adds a float initializer of `dims` with seeded normal values (mean `mean`, std `std`).
inline void random_init(ModelBuilder& b, const std::string& name, std::vector<int64_t> dims, uint32_t seed,
                        float mean = 0.f, float std = 1.f) {
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  int64_t n = 1;
  for (int64_t d : dims) {
    t->add_dims(d);
    n *= d;
  }
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, std);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  t->set_raw_data(v.data(), v.size() * sizeof(float));
}

// Adds a float initializer with exactly `values` (shape `dims`).
inline void values_init(ModelBuilder& b, const std::string& name, std::vector<int64_t> dims, std::vector<float> values) {
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(values.data(), values.size() * sizeof(float));
}

inline void int_init(ModelBuilder& b, const std::string& name, std::vector<int64_t> dims, std::vector<int64_t> values) {
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(values.data(), values.size() * sizeof(int64_t));
}

inline void attr_ints(onnx::NodeProto& n, const std::string& name, std::vector<int64_t> v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
inline void attr_int(onnx::NodeProto& n, const std::string& name, int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
inline void attr_float(onnx::NodeProto& n, const std::string& name, float v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

// Imports `b`'s model (with shape inference) and returns its main graph.
inline std::shared_ptr<Graph> import(const ModelBuilder& b) {
  const std::string bytes = b.bytes();
  auto model = onnx_import::import_model_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), {}, {});
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  return model.ok() ? model->graph : std::make_shared<Graph>();
}

// Runs shape folding and every rewrite pass on `g`, allowing every fusion; returns the rewrites.
inline int run_passes(Graph& g, const PassContext& ctx = {}) {
  auto shapes = fold_shapes(g, ctx);
  EXPECT_TRUE(shapes.ok());
  int n = shapes.ok() ? *shapes : 0;
  for (const auto& p : rewrite_passes()) {
    auto r = p.fn(g, ctx);
    EXPECT_TRUE(r.ok()) << p.name << ": " << r.status().to_string();
    if (r.ok()) n += *r;
  }
  return n;
}

// Returns op type (prefixed "com.orchard." for Orchard's ops) → count.
inline std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> ops;
  for (const auto& n : g.nodes) ++ops[n.domain.empty() ? n.op_type : n.domain + "." + n.op_type];
  return ops;
}

// The CPU's kernels under a backend of another name that asks for channels-last convolutions or not (the CPU
// backend itself asks where oneDNN is built in; a fusion test that counts ops wants NCHW, layout_test.cpp the
// rewrite whatever the build).
class CpuKernels final : public runtime::KernelBackend {
 public:
  CpuKernels(std::string name, bool channels_last)
      : KernelBackend(info(std::move(name)), cpu::all_kernels(), cpu_features()), channels_last_(channels_last) {}
  bool prefers_channels_last() const override { return channels_last_; }

 private:
  static runtime::DeviceInfo info(std::string name) {
    runtime::DeviceInfo d;
    d.name = std::move(name);
    d.kind = runtime::DeviceKind::cpu;
    d.description = "the CPU kernels";
    return d;
  }
  bool channels_last_;
};

// Returns options whose first backend is the CPU's kernels as "nhwc" (asking for channels last) or "nchw" (not).
inline SessionOptions cpu_kernels_options(bool channels_last) {
  SessionOptions o;
  o.custom_backends = {std::make_shared<CpuKernels>(channels_last ? "nhwc" : "nchw", channels_last)};
  o.backend_preference = {channels_last ? "nhwc" : "nchw", "cpu"};
  return o;
}
inline SessionOptions nchw_cpu_options() { return cpu_kernels_options(false); }

// Returns the model's main graph after runtime::optimize_graph at `level` with the CPU's kernels as the only
// backend, in NCHW (an accelerator in the chain, such as CUDA on a GPU machine, would rightly keep ops it takes
// unfused).
inline std::shared_ptr<Graph> optimized(const ModelBuilder& b, OptimizationLevel level = OptimizationLevel::extended) {
  auto g = import(b);
  const std::vector<std::shared_ptr<runtime::Backend>> cpu_only = {std::make_shared<CpuKernels>("nchw", false)};
  auto stats = runtime::optimize_graph(*g, cpu_only, level);
  EXPECT_TRUE(stats.ok()) << stats.status().to_string();
  return g;
}

inline std::unique_ptr<Session> load(const ModelBuilder& b, OptimizationLevel level, SessionOptions o = {}) {
  const std::string bytes = b.bytes();
  o.optimization = level;
  o.intra_op_threads = 1;
  // The CPU alone unless the test names its chain (see optimized()).
  if (o.backend_preference.empty() && o.custom_backends.empty()) o.backend_preference = {"cpu"};
  auto s = Session::load_from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), o);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? std::move(*s) : nullptr;
}

// Runs the model with extended and with none optimization on `trials` random inputs (each symbolic dim
// a random size in [1, 6]) and expects the outputs to agree within 1e-4 relative (1e-5 absolute near 0).
inline void expect_same_outputs(const ModelBuilder& b, int trials = 3, uint32_t seed = 1) {
  auto plain = load(b, OptimizationLevel::none);
  auto fast = load(b, OptimizationLevel::extended);
  ASSERT_TRUE(plain && fast);
  std::mt19937 rng(seed);
  for (int trial = 0; trial < trials; ++trial) {
    std::map<std::string, int64_t> sizes;
    NamedValues inputs;
    for (const auto& info : plain->inputs()) {
      Shape shape;
      for (const auto& d : info.shape) {
        if (d.fixed()) {
          shape.push_back(d.value);
        } else {
          if (!sizes.count(d.symbol)) sizes[d.symbol] = std::uniform_int_distribution<int64_t>(1, 6)(rng);
          shape.push_back(sizes[d.symbol]);
        }
      }
      Tensor t = Tensor::empty(info.dtype, shape);
      std::normal_distribution<float> dist(0.f, 1.f);
      for (int64_t k = 0; k < t.numel(); ++k) {
        if (info.dtype == DType::boolean) t.data<bool>()[k] = (rng() & 1) != 0;
        else t.data<float>()[k] = dist(rng);
      }
      inputs.emplace_back(info.name, Value(t));
    }
    auto want = plain->run(inputs);
    auto got = fast->run(inputs);
    ASSERT_TRUE(want.ok()) << want.status().to_string();
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    ASSERT_EQ(want->size(), got->size());
    for (size_t o = 0; o < want->size(); ++o) {
      const Tensor& w = (*want)[o].second.tensor();
      const Tensor& x = (*got)[o].second.tensor();
      ASSERT_EQ(w.shape(), x.shape()) << "output " << (*want)[o].first;
      for (int64_t k = 0; k < w.numel(); ++k) {
        const float a = w.data<float>()[k], c = x.data<float>()[k];
        ASSERT_LE(std::fabs(a - c), 1e-5f + 1e-4f * std::fabs(a))
            << "output " << (*want)[o].first << " element " << k << " trial " << trial;
      }
    }
  }
}

}  // namespace orchard::graph::passes::testing
