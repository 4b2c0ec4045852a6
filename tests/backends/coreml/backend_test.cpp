// The Core ML backend in a Session (Runtime v2): placement with the converter's reasons, outputs of the
// simulated executor (convert → ML Program → MIL reader → CPU kernels) against the CPU backend, compile
// failover, concurrent runs, and the registry's rule (named only, off Apple platforms).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "backends/coreml/coreml_backend.hpp"
#include "backends/coreml/onnx_bridge.hpp"
#include "backends/coreml/op_builder.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "onnx/proto_convert.hpp"
#include "orchard/io.hpp"
#include "orchard/manager.hpp"
#include "orchard/session.hpp"
#include "testing/model_builder.hpp"

namespace orchard::coreml {
namespace {

namespace fs = std::filesystem;
using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

std::shared_ptr<CoreMlBackend> backend(Precision p = Precision::fp16) {
  BackendOptions o;
  o.convert.precision = p;
  return std::make_shared<CoreMlBackend>(o);
}

std::unique_ptr<Session> load(const std::string& bytes, std::shared_ptr<runtime::Backend> b, int threads = 0) {
  SessionOptions so;
  so.intra_op_threads = threads;
  if (b) {
    so.custom_backends = {b};
    so.backend_preference = {b->device().name, "cpu"};
  } else {
    so.backend_preference = {"cpu"};
  }
  auto s = Session::load_from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), so);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? std::move(s).value() : nullptr;
}

void weight(ModelBuilder& b, const std::string& name, std::vector<int64_t> dims, uint32_t seed) {
  std::mt19937 rng(seed);
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  std::normal_distribution<float> nd(0.0f, 0.5f);
  for (auto& x : v) x = nd(rng);
  onnx_import::tensor_to_proto(Tensor::from_vector<float>(Shape(dims), v), name, *b.proto().mutable_graph()->add_initializer());
}

// x[1,2,8,8] → Conv → Relu → CumSum (no Core ML builder) → Conv → Sigmoid → y.
std::string conv_cumsum_conv(bool symbolic_batch = false) {
  ModelBuilder b;
  if (symbolic_batch) {
    b.input("x", F, {"N", 2, 8, 8}).output("y", F, {"N", 3, 8, 8});
  } else {
    b.input("x", F, {1, 2, 8, 8}).output("y", F, {1, 3, 8, 8});
  }
  weight(b, "w1", {4, 2, 3, 3}, 1);
  weight(b, "w2", {3, 4, 1, 1}, 2);
  onnx_import::tensor_to_proto(Tensor::scalar<int64_t>(3), "axis", *b.proto().mutable_graph()->add_initializer());
  auto& c1 = b.node("Conv", {"x", "w1"}, {"c1"});
  auto* pads = c1.add_attribute();
  pads->set_name("pads");
  pads->set_type(onnx::AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) pads->add_ints(1);
  b.node("Relu", {"c1"}, {"r"});
  b.node("CumSum", {"r", "axis"}, {"s"});
  b.node("Conv", {"s", "w2"}, {"c2"});
  b.node("Sigmoid", {"c2"}, {"y"});
  return b.bytes();
}

Tensor random_tensor(Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Tensor t = Tensor::empty(DType::float32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// Largest |a - b| over float outputs, and the largest |b| (the scale a relative tolerance refers to).
struct Diff {
  double max_abs = 0, max_ref = 0;
};
Diff compare(const NamedValues& got, const NamedValues& want) {
  Diff d;
  EXPECT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const Tensor& g = got[i].second.tensor();
    const Tensor& w = want[i].second.tensor();
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_EQ(g.shape(), w.shape()) << want[i].first;
    EXPECT_EQ(g.dtype(), w.dtype()) << want[i].first;
    if (g.shape() != w.shape() || g.dtype() != w.dtype()) continue;
    for (int64_t k = 0; k < g.numel(); ++k) {
      double a = 0, b = 0;
      if (w.dtype() == DType::float32) {
        a = g.data<float>()[k], b = w.data<float>()[k];
      } else if (w.dtype() == DType::int64) {
        a = static_cast<double>(g.data<int64_t>()[k]), b = static_cast<double>(w.data<int64_t>()[k]);
      } else {
        ADD_FAILURE() << "unexpected dtype " << dtype_name(w.dtype());
        return d;
      }
      d.max_abs = std::max(d.max_abs, std::fabs(a - b));
      d.max_ref = std::max(d.max_ref, std::fabs(b));
    }
  }
  return d;
}

TEST(CoreMLBackend, PlacementKeepsUnconvertibleNodeOnCpuWithReason) {
  const std::string model = conv_cumsum_conv();
  auto b = backend();
  auto s = load(model, b);
  ASSERT_TRUE(s);
  const PlacementInfo p = s->placement();
  ASSERT_EQ(p.partitions.size(), 3u);
  EXPECT_EQ(p.partitions[0].backend, "coreml");
  EXPECT_EQ(p.partitions[0].nodes.size(), 2u);  // Conv, Relu
  EXPECT_EQ(p.partitions[1].backend, "cpu");
  EXPECT_EQ(p.partitions[1].nodes.size(), 1u);  // CumSum
  EXPECT_EQ(p.partitions[2].backend, "coreml");
  EXPECT_EQ(p.partitions[2].nodes.size(), 2u);  // Conv, Sigmoid
  ASSERT_EQ(p.fallbacks.size(), 1u);
  EXPECT_EQ(p.fallbacks[0].op, "CumSum");
  ASSERT_EQ(p.fallbacks[0].declined.size(), 1u);
  EXPECT_EQ(p.fallbacks[0].declined[0].first, "coreml");
  EXPECT_NE(p.fallbacks[0].declined[0].second.find("no Core ML builder for CumSum"), std::string::npos)
      << p.fallbacks[0].declined[0].second;
  EXPECT_EQ(b->compiled(), 2);
  EXPECT_GT(b->mil_operations(), 4);
  EXPECT_EQ(s->failover_count(), 0);
  // Where the device runs each partition's operations: the verification executor says the CPU, simulated; the
  // CPU backend's partition says nothing.
  for (size_t i : {0u, 2u}) {
    ASSERT_EQ(p.partitions[i].device_units.size(), 1u) << i;
    EXPECT_EQ(p.partitions[i].device_units[0].first, "cpu-simulated");
    EXPECT_GE(p.partitions[i].device_units[0].second, 2) << "at least the Conv and its activation";
  }
  EXPECT_TRUE(p.partitions[1].device_units.empty());
}

// The Manager exports what the device reports per compute unit, per model and backend.
TEST(CoreMLBackend, ManagerExportsOperationsPerComputeUnit) {
  const fs::path path = fs::path(::testing::TempDir()) / "coreml_units_model.onnx";
  const std::string model = conv_cumsum_conv();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(model.data(), 1, model.size(), f), model.size());
    std::fclose(f);
  }
  ManagerConfig config;
  config.intra_op_threads = 1;
  auto m = Manager::create(config);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  LoadOptions load;
  load.name = "units";
  load.session.backend_preference = {"coreml", "cpu"};
  ASSERT_TRUE((*m)->load_model(path, load).ok());
  const std::string text = (*m)->metrics_text();
  EXPECT_NE(text.find("orchard_model_device_operations{backend=\"coreml\",model=\"units\",unit=\"cpu-simulated\"}"),
            std::string::npos)
      << text;
  fs::remove(path);
}

// A compute plan's per-operation devices become counts per compute unit, ANE first (what `orchard inspect
// --placement` prints and the Manager's orchard_model_device_operations gauge exports on macOS 14.4+).
TEST(CoreMLBackend, ComputePlanDevicesAreCountedPerUnit) {
  using Units = std::vector<std::pair<std::string, int>>;
  EXPECT_EQ(coreml::count_units({"cpu", "ane", "ane", "", "gpu", "ane", "cpu"}), (Units{{"ane", 3}, {"gpu", 1}, {"cpu", 2}}));
  EXPECT_EQ(coreml::count_units({"cpu", "cpu"}), (Units{{"cpu", 2}}));
  EXPECT_EQ(coreml::count_units({"npu2", "ane"}), (Units{{"ane", 1}, {"npu2", 1}}));
  EXPECT_TRUE(coreml::count_units({}).empty());
}

TEST(CoreMLBackend, OutputsMatchCpuWithinFp16AndFp32Tolerance) {
  const std::string model = conv_cumsum_conv();
  auto cpu = load(model, nullptr);
  ASSERT_TRUE(cpu);
  const NamedValues in{{"x", Value(random_tensor({1, 2, 8, 8}, 5))}};
  auto want = cpu->run(in);
  ASSERT_TRUE(want.ok()) << want.status().to_string();
  for (Precision p : {Precision::fp16, Precision::fp32}) {
    auto s = load(model, backend(p));
    ASSERT_TRUE(s);
    auto got = s->run(in);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    const Diff d = compare(*got, *want);
    // fp16: weights and activations rounded to 11 significant bits; fp32: the same arithmetic reordered.
    const double tol = p == Precision::fp16 ? 1e-2 : 1e-4;
    EXPECT_LE(d.max_abs, tol * std::max(1.0, d.max_ref)) << (p == Precision::fp16 ? "fp16" : "fp32");
    if (p == Precision::fp16) {
      EXPECT_GT(d.max_abs, 0.0) << "an fp16 program that matches fp32 exactly computed in fp32";
    }
  }
}

TEST(CoreMLBackend, SymbolicDimsAreDeclinedWithTheirReason) {
  auto s = load(conv_cumsum_conv(true), backend());
  ASSERT_TRUE(s);
  const PlacementInfo p = s->placement();
  ASSERT_EQ(p.partitions.size(), 1u);
  EXPECT_EQ(p.partitions[0].backend, "cpu");
  ASSERT_EQ(p.fallbacks.size(), 5u);
  const auto& why = p.fallbacks[0].declined.at(0).second;
  EXPECT_NE(why.find("symbolic shape float32[N,2,8,8]"), std::string::npos) << why;
}

TEST(CoreMLBackend, CompileFailureFailsOverToCpu) {
  const std::string model = conv_cumsum_conv();
  BackendOptions o;
  int calls = 0;
  o.on_package = [&calls](const Converted& c) -> Status {
    ++calls;
    // The second partition (Conv, Sigmoid) fails, as a Core ML compile error would.
    if (calls == 2) return unavailable("[coreml] injected compile failure of ", c.outputs.at(0));
    return Status::OK();
  };
  auto b = std::make_shared<CoreMlBackend>(o);
  auto s = load(model, b);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->failover_count(), 1);
  const PlacementInfo p = s->placement();
  ASSERT_EQ(p.partitions.size(), 2u);
  EXPECT_EQ(p.partitions[0].backend, "coreml");
  EXPECT_EQ(p.partitions[1].backend, "cpu");
  EXPECT_EQ(p.partitions[1].nodes.size(), 3u);  // CumSum and the two nodes whose compile failed
  bool reason_seen = false;
  for (const auto& f : p.fallbacks) {
    for (const auto& [backend_name, why] : f.declined) reason_seen |= why.find("injected compile failure") != std::string::npos;
  }
  EXPECT_TRUE(reason_seen);
  const NamedValues in{{"x", Value(random_tensor({1, 2, 8, 8}, 6))}};
  auto got = s->run(in);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  auto want = load(model, nullptr)->run(in);
  ASSERT_TRUE(want.ok());
  const Diff d = compare(*got, *want);
  EXPECT_LE(d.max_abs, 1e-2 * std::max(1.0, d.max_ref));
}

TEST(CoreMLBackend, TwoThreadsShareOneSession) {
  const std::string model = conv_cumsum_conv();
  auto s = load(model, backend(Precision::fp32), 2);
  auto cpu = load(model, nullptr, 1);
  ASSERT_TRUE(s && cpu);
  std::vector<NamedValues> inputs, wants;
  for (uint32_t k = 0; k < 8; ++k) {
    inputs.push_back({{"x", Value(random_tensor({1, 2, 8, 8}, 100 + k))}});
    auto w = cpu->run(inputs.back());
    ASSERT_TRUE(w.ok());
    wants.push_back(std::move(*w));
  }
  std::vector<double> worst(2, 0.0);
  std::vector<int> failures(2, 0);
  auto work = [&](int t) {
    for (int rep = 0; rep < 5; ++rep) {
      for (size_t k = static_cast<size_t>(t); k < inputs.size(); k += 2) {
        auto got = s->run(inputs[k]);
        if (!got.ok()) {
          ++failures[static_cast<size_t>(t)];
          continue;
        }
        const Tensor& g = (*got)[0].second.tensor();
        const Tensor& w = wants[k][0].second.tensor();
        for (int64_t i = 0; i < g.numel() && i < w.numel(); ++i) {
          worst[static_cast<size_t>(t)] = std::max(worst[static_cast<size_t>(t)], static_cast<double>(std::fabs(g.data<float>()[i] - w.data<float>()[i])));
        }
      }
    }
  };
  std::thread a(work, 0), b(work, 1);
  a.join();
  b.join();
  EXPECT_EQ(failures[0] + failures[1], 0);
  EXPECT_LE(std::max(worst[0], worst[1]), 1e-4);
}

TEST(CoreMLBackend, RegistryOffersItOnlyWhenNamedOffApple) {
  auto names = [](const std::vector<std::shared_ptr<runtime::Backend>>& chain) {
    std::vector<std::string> n;
    for (const auto& b : chain) n.push_back(b->device().name);
    return n;
  };
  const auto plain = names(runtime::available_backends(SessionOptions{}));
  SessionOptions named;
  named.backend_preference = {"coreml", "cpu"};
  const auto chain = runtime::available_backends(named);
  ASSERT_FALSE(chain.empty());
  if (native_available()) {  // Apple platforms: Core ML heads the chain
    EXPECT_EQ(plain.front(), "coreml");
    return;
  }
  EXPECT_EQ(std::count(plain.begin(), plain.end(), "coreml"), 0);
  auto it = std::find_if(chain.begin(), chain.end(), [](const auto& b) { return b->device().name == "coreml"; });
  ASSERT_NE(it, chain.end());
  EXPECT_EQ((*it)->device().kind, runtime::DeviceKind::npu);
  EXPECT_NE((*it)->device().description.find("simulated on the CPU"), std::string::npos) << (*it)->device().description;
  // Named through SessionOptions, the registry's backend runs the model.
  const std::string model = conv_cumsum_conv();
  auto s = Session::load_from_bytes(std::as_bytes(std::span(model.data(), model.size())), named);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ((*s)->backends(), (std::vector<std::string>{"coreml", "cpu"}));
}

// Failover needs a CPU kernel for every node Core ML may give back, and has_op keeps the importer from
// expanding a function op that some backend runs: so every (op, opset) the converter takes has a CPU kernel.
TEST(CoreMLBackend, EveryConvertedOpHasACpuKernel) {
  const cpu::CpuBackend cpu(SessionOptions{});
  const CoreMlBackend coreml(BackendOptions{});
  size_t checked = 0;
  for (const OpBuilder& b : op_builders()) {
    for (int opset = b.since; opset <= std::min(b.until, 17); ++opset) {
      EXPECT_TRUE(coreml.has_op("", b.op, opset)) << b.op << " at opset " << opset;
      EXPECT_TRUE(cpu.has_op("", b.op, opset)) << b.op << " at opset " << opset << " has no CPU kernel";
      ++checked;
    }
  }
  EXPECT_GT(checked, 80u);
  EXPECT_FALSE(coreml.has_op("", "CumSum", 17));
}

// ---- tests/models, made static at the shapes of their first data set ----

struct ModelCase {
  const char* dir;
  size_t min_converted;  // nodes the backend must take, at least
};

// The exporter-style models the converter takes (notes/issue-10.md); GRU/LSTM models stay out with reasons.
const ModelCase kModels[] = {
    {"cnn_resnet_block", 10},       {"mobilenet_v3_block", 10},     {"wide_mlp", 4},
    {"conv1d_audio", 10},           {"mlp_legacy_export", 4},       {"unet_small", 10},
    {"transformer_encoder_ln", 40}, {"transformer_encoder_decomposed", 40},
};

struct StaticModel {
  std::string bytes;
  NamedValues inputs;
};

StaticModel static_model(const std::string& dir) {
  const fs::path root = fs::path(ORCHARD_TEST_DATA_DIR).parent_path() / "models" / dir;
  StaticModel m;
  std::map<std::string, std::vector<int64_t>> shapes;
  for (int k = 0;; ++k) {
    const fs::path f = root / "test_data_set_0" / ("input_" + std::to_string(k) + ".pb");
    if (!fs::exists(f)) break;
    std::string name;
    auto v = load_value_pb(f, Value::Kind::tensor, &name);
    EXPECT_TRUE(v.ok()) << v.status().to_string();
    if (!v.ok()) return m;
    shapes[name] = v->tensor().shape().dims();
    m.inputs.emplace_back(name, std::move(*v));
  }
  std::ifstream in(root / "model.onnx", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto s = specialize_onnx(bytes, shapes, {});
  EXPECT_TRUE(s.ok()) << dir << ": " << s.status().to_string();
  if (s.ok()) m.bytes = std::move(*s);
  return m;
}

size_t nodes_on(const PlacementInfo& p, const std::string& backend_name) {
  size_t n = 0;
  for (const auto& part : p.partitions) {
    if (part.backend == backend_name) n += part.nodes.size();
  }
  return n;
}

TEST(CoreMLBackend, TestModelsMatchCpuInFp16AndFp32) {
  for (const ModelCase& c : kModels) {
    SCOPED_TRACE(c.dir);
    const StaticModel m = static_model(c.dir);
    ASSERT_FALSE(m.bytes.empty());
    auto cpu = load(m.bytes, nullptr);
    ASSERT_TRUE(cpu);
    auto want = cpu->run(m.inputs);
    ASSERT_TRUE(want.ok()) << want.status().to_string();
    for (Precision p : {Precision::fp16, Precision::fp32}) {
      auto b = backend(p);
      auto s = load(m.bytes, b);
      ASSERT_TRUE(s);
      const PlacementInfo placement = s->placement();
      EXPECT_GE(nodes_on(placement, "coreml"), c.min_converted);
      EXPECT_LE(std::count_if(placement.partitions.begin(), placement.partitions.end(),
                              [](const auto& part) { return part.backend == "coreml"; }),
                2);
      for (const auto& f : placement.fallbacks) {
        ASSERT_FALSE(f.declined.empty()) << f.node;
        EXPECT_FALSE(f.declined[0].second.empty()) << f.node;
      }
      auto got = s->run(m.inputs);
      ASSERT_TRUE(got.ok()) << got.status().to_string();
      const Diff d = compare(*got, *want);
      const double tol = p == Precision::fp16 ? 2e-2 : 1e-4;
      EXPECT_LE(d.max_abs, tol * std::max(1.0, d.max_ref)) << (p == Precision::fp16 ? "fp16" : "fp32");
      EXPECT_EQ(s->failover_count(), 0);
      size_t all = 0;
      for (const auto& part : placement.partitions) all += part.nodes.size();
      std::printf("  %-32s %s: %zu / %zu nodes on coreml, max abs error %.2g (max |ref| %.3g)\n", c.dir,
                  p == Precision::fp16 ? "fp16" : "fp32", nodes_on(placement, "coreml"), all, d.max_abs, d.max_ref);
    }
  }
}

TEST(CoreMLBackend, RecurrentModelKeepsItsRnnOnCpuWithReason) {
  const StaticModel m = static_model("gru_classifier");
  ASSERT_FALSE(m.bytes.empty());
  auto s = load(m.bytes, backend());
  ASSERT_TRUE(s);
  const PlacementInfo p = s->placement();
  int grus = 0;
  for (const auto& f : p.fallbacks) {
    if (f.op != "GRU") continue;
    ++grus;
    EXPECT_EQ(f.backend, "cpu");
    EXPECT_NE(f.declined.at(0).second.find("no Core ML builder for GRU"), std::string::npos) << f.declined.at(0).second;
  }
  EXPECT_EQ(grus, 2);
  auto got = s->run(m.inputs);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  auto want = load(m.bytes, nullptr)->run(m.inputs);
  ASSERT_TRUE(want.ok());
  const Diff d = compare(*got, *want);
  EXPECT_LE(d.max_abs, 2e-2 * std::max(1.0, d.max_ref));
}

}  // namespace
}  // namespace orchard::coreml
