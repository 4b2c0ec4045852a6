// The partitioner and the device-aware executor on small graphs: expected partitions, copies at their
// edges, cheap-node moves, convex grouping for compiling backends, fallback rules and failover.
#include <gtest/gtest.h>

#include <cstring>

#include "orchard/session.hpp"
#include "testing/model_builder.hpp"
#include "testing/test_backends.hpp"

namespace orchard {
namespace {

using testing::ModelBuilder;
constexpr int kFloat = onnx::TensorProto::FLOAT;

std::unique_ptr<Session> load(const ModelBuilder& b, std::vector<std::shared_ptr<runtime::Backend>> backends,
                              std::vector<std::string> preference = {}, bool profiling = false) {
  SessionOptions o;
  // The chain is the given backends and the CPU (not an accelerator the test machine may have).
  if (preference.empty()) {
    for (const auto& b : backends) preference.push_back(b->device().name);
    preference.push_back("cpu");
  }
  o.custom_backends = std::move(backends);
  o.backend_preference = std::move(preference);
  o.intra_op_threads = 1;
  o.profiling = profiling;
  const std::string bytes = b.bytes();
  auto s = Session::load_from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), o);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::vector<std::string> backends_of(const PlacementInfo& p) {
  std::vector<std::string> v;
  for (const auto& part : p.partitions) v.push_back(part.backend);
  return v;
}

Tensor input23() { return Tensor::from_vector<float>({2, 3}, {-1.f, 2.f, -3.f, 4.f, -5.f, 6.f}); }

// A float32[64,128] (32 KiB: too large to count as a cheap node) of -1, 2, -3, 4, ...
constexpr int64_t kBig = 64 * 128;
Tensor big_input() {
  Tensor t = Tensor::empty(DType::float32, {64, 128});
  for (int64_t i = 0; i < kBig; ++i) t.data<float>()[i] = static_cast<float>(i % 2 ? i + 1 : -(i + 1));
  return t;
}

// x -> Relu -> Dropout -> Neg -> y: the simulated device runs Relu and Neg but not Dropout.
ModelBuilder device_cpu_device() {
  ModelBuilder b;
  b.input("x", kFloat, {64, 128}).output("y", kFloat, {64, 128});
  b.node("Relu", {"x"}, {"a"});
  b.node("Dropout", {"a"}, {"b"});
  b.node("Neg", {"b"}, {"y"});
  return b;
}

TEST(Partitioner, CopiesAtEveryEdgeBetweenDeviceAndHost) {
  auto sim = std::make_shared<testing::SimDeviceBackend>();
  auto s = load(device_cpu_device(), {sim});
  ASSERT_TRUE(s);
  const PlacementInfo p = s->placement();
  EXPECT_EQ(backends_of(p), (std::vector<std::string>{"simdev", "cpu", "simdev"}));
  ASSERT_EQ(p.fallbacks.size(), 1u);
  EXPECT_EQ(p.fallbacks[0].op, "Dropout");
  ASSERT_EQ(p.fallbacks[0].declined.size(), 1u);
  EXPECT_EQ(p.fallbacks[0].declined[0].first, "simdev");
  EXPECT_NE(p.fallbacks[0].declined[0].second.find("no kernel for Dropout"), std::string::npos);
  EXPECT_EQ(p.partitions[1].copied_bytes, 4 * kBig) << "a float32[64,128] comes back from the device";
  EXPECT_EQ(p.partitions[2].copied_bytes, 4 * kBig);

  auto out = s->run({{"x", Value(big_input())}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = (*out)[0].second.tensor();
  EXPECT_TRUE(y.place().host_visible()) << "outputs come back to the host";
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], i % 2 ? -(i + 1.f) : 0.f);
  // x up, a down, b up, y down.
  EXPECT_EQ(sim->sim_transfer().to_device.load(), 2 * 4 * kBig);
  EXPECT_EQ(sim->sim_transfer().to_host.load(), 2 * 4 * kBig);
  EXPECT_EQ(s->bytes_copied(), 4 * 4 * kBig);
  EXPECT_EQ(sim->streams_made(), 1) << "one stream per run on the device";
}

TEST(Partitioner, DeviceOutputsStayOnTheDevice) {
  auto sim = std::make_shared<testing::SimDeviceBackend>();
  ModelBuilder b;
  b.input("x", kFloat, {2, 3}).output("y", kFloat, {2, 3});
  b.node("Relu", {"x"}, {"y"});
  auto s = load(b, {sim});
  ASSERT_TRUE(s);
  RunOptions ro;
  ro.device_outputs = true;
  auto out = s->run({{"x", Value(input23())}}, ro);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].second.tensor().place(), (MemoryPlace{MemoryKind::device, 1}));
  EXPECT_EQ(sim->sim_transfer().to_host.load(), 0);
}

TEST(Partitioner, ConstantsAreUploadedOnceAtLoad) {
  auto sim = std::make_shared<testing::SimDeviceBackend>();
  ModelBuilder b;
  b.input("x", kFloat, {1, 256}).output("y", kFloat, {1, 256});
  b.initializer("w", {1, 256}, 0.5f);
  b.node("Add", {"x", "w"}, {"y"});
  auto s = load(b, {sim});
  ASSERT_TRUE(s);
  EXPECT_EQ(sim->sim_transfer().to_device.load(), 1024) << "w uploaded at load";
  for (int i = 0; i < 3; ++i) {
    auto out = s->run({{"x", Value(Tensor::zeros(DType::float32, {1, 256}))}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_FLOAT_EQ((*out)[0].second.tensor().data<float>()[255], 0.5f);
  }
  EXPECT_EQ(sim->sim_transfer().to_device.load(), 1024 + 3 * 1024) << "only x moves per run";
}

TEST(Partitioner, CheapNodeBetweenCpuNodesMovesToTheCpu) {
  auto sim = std::make_shared<testing::SimDeviceBackend>();
  ModelBuilder b;
  b.input("x", kFloat, {2, 3}).output("y", kFloat, {3, 2});
  b.node("Dropout", {"x"}, {"a"});
  b.node("Transpose", {"a"}, {"t"});  // simdev runs it, but both its neighbours are on the CPU
  b.node("Dropout", {"t"}, {"y"});
  auto s = load(b, {sim});
  ASSERT_TRUE(s);
  const PlacementInfo p = s->placement();
  EXPECT_EQ(backends_of(p), (std::vector<std::string>{"cpu"}));
  EXPECT_EQ(p.moved_nodes, 1);
  ASSERT_TRUE(s->run({{"x", Value(input23())}}).ok());
  EXPECT_EQ(s->bytes_copied(), 0);
}

TEST(Partitioner, ExpensiveNodeIsNotMoved) {
  auto sim = std::make_shared<testing::SimDeviceBackend>();
  ModelBuilder b;
  b.input("x", kFloat, {64, 128}).output("y", kFloat, {64, 128});
  b.node("Dropout", {"x"}, {"a"});
  b.node("Relu", {"a"}, {"r"});  // 8192 outputs: worth its copies
  b.node("Dropout", {"r"}, {"y"});
  auto s = load(b, {sim});
  ASSERT_TRUE(s);
  EXPECT_EQ(backends_of(s->placement()), (std::vector<std::string>{"cpu", "simdev", "cpu"}));
}

// Relu -> {Dropout, Add}; Dropout -> Add. The test compiler claims Relu and Add, which cannot form one
// partition: Relu -> Dropout -> Add leaves it and comes back.
TEST(Partitioner, CompilingBackendGetsConvexPartitionsOnly) {
  auto tc = std::make_shared<testing::TestCompileBackend>();
  ModelBuilder b;
  b.input("x", kFloat, {2, 3}).output("y", kFloat, {2, 3});
  b.node("Relu", {"x"}, {"a"});
  b.node("Dropout", {"a"}, {"d"});
  b.node("Add", {"a", "d"}, {"y"});
  auto s = load(b, {tc});
  ASSERT_TRUE(s);
  EXPECT_EQ(backends_of(s->placement()), (std::vector<std::string>{"testcompile", "cpu", "testcompile"}));
  auto out = s->run({{"x", Value(input23())}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_FLOAT_EQ((*out)[0].second.tensor().data<float>()[1], 4.f);
  EXPECT_EQ(tc->compiled(), 2);
}

TEST(Partitioner, CompilingBackendTakesAConnectedChainWhole) {
  auto tc = std::make_shared<testing::TestCompileBackend>();
  ModelBuilder b;
  b.input("x", kFloat, {2, 3}).output("y", kFloat, {2, 3});
  b.node("Relu", {"x"}, {"a"});
  b.node("Neg", {"a"}, {"n"});
  b.node("Add", {"a", "n"}, {"s"});
  b.node("Sigmoid", {"s"}, {"y"});
  auto s = load(b, {tc});
  ASSERT_TRUE(s);
  const PlacementInfo p = s->placement();
  ASSERT_EQ(backends_of(p), (std::vector<std::string>{"testcompile"}));
  EXPECT_EQ(p.partitions[0].nodes.size(), 4u);
  EXPECT_EQ(tc->compiled(), 1);
  auto out = s->run({{"x", Value(input23())}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_FLOAT_EQ((*out)[0].second.tensor().data<float>()[1], 0.5f);
}

TEST(Partitioner, DisabledFallbackNamesTheNodesThatWouldLeave) {
  SessionOptions o;
  o.custom_backends = {std::make_shared<testing::SimDeviceBackend>()};
  o.backend_preference = {"simdev"};
  o.disable_fallback = true;
  const std::string bytes = device_cpu_device().bytes();
  auto s = Session::load_from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("Dropout"), std::string::npos) << s.status().to_string();
  EXPECT_NE(s.status().message().find("fallback is disabled"), std::string::npos) << s.status().to_string();
}

TEST(Partitioner, PreferenceWithoutTheCpuStillFallsBackToIt) {
  auto s = load(device_cpu_device(), {std::make_shared<testing::SimDeviceBackend>()}, {"simdev"});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->backends(), (std::vector<std::string>{"simdev", "cpu"}));
}

TEST(Partitioner, CompileFailureMovesOnlyTheFailingNode) {
  auto faulty = std::make_shared<testing::FaultyBackend>();
  ModelBuilder b;
  b.input("x", kFloat, {64, 128}).output("y", kFloat, {64, 128});
  b.node("Relu", {"x"}, {"r"});
  b.node("Sigmoid", {"r"}, {"y"});
  auto s = load(b, {faulty});
  ASSERT_TRUE(s);
  EXPECT_EQ(backends_of(s->placement()), (std::vector<std::string>{"faulty", "cpu"}));
  EXPECT_EQ(s->failover_count(), 1);
  auto out = s->run({{"x", Value(big_input())}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_FLOAT_EQ((*out)[0].second.tensor().data<float>()[0], 0.5f) << "Relu failed over to the CPU at run time";
  EXPECT_EQ(s->failover_count(), 2);
  EXPECT_EQ(faulty->runs(), 1);
  ASSERT_TRUE(s->run({{"x", Value(big_input())}}).ok());
  EXPECT_EQ(faulty->runs(), 1) << "the failover is remembered";
}

TEST(Partitioner, ProfileHasPartitionCopyAndKernelSpans) {
  auto sim = std::make_shared<testing::SimDeviceBackend>();
  auto s = load(device_cpu_device(), {sim}, {}, /*profiling=*/true);
  ASSERT_TRUE(s);
  std::vector<NodeProfile> profile;
  RunOptions ro;
  ro.profile = &profile;
  ASSERT_TRUE(s->run({{"x", Value(big_input())}}, ro).ok());
  int kernels = 0, partitions = 0, copies = 0;
  for (const auto& p : profile) {
    kernels += p.category == "kernel";
    partitions += p.category == "partition";
    copies += p.category == "copy";
  }
  EXPECT_EQ(kernels, 3);
  EXPECT_EQ(partitions, 3);
  EXPECT_EQ(copies, 4);
}

TEST(Partitioner, HostInputsOfDeviceKernelsAreReadOnTheHost) {
  auto sim = std::make_shared<testing::SimDeviceBackend>();
  ModelBuilder b;
  b.input("x", kFloat, {2, 3}).input("shape", onnx::TensorProto::INT64, {2}).output("y", kFloat, {3, 2});
  b.node("Relu", {"x"}, {"r"});
  b.node("Reshape", {"r", "shape"}, {"y"});
  auto s = load(b, {sim});
  ASSERT_TRUE(s);
  EXPECT_EQ(backends_of(s->placement()), (std::vector<std::string>{"simdev"}));
  auto out = s->run({{"x", Value(input23())}, {"shape", Value(Tensor::from_vector<int64_t>({2}, {3, 2}))}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].second.tensor().shape(), (Shape{3, 2}));
  // x up, y down; the shape, a host tensor only read on the host, stays there (no upload, no download back).
  EXPECT_EQ(sim->sim_transfer().to_device.load(), 24);
  EXPECT_EQ(sim->sim_transfer().to_host.load(), 24);
}

TEST(Partitioner, MetadataKernelsReadNoDataAndTheirHostOutputsMoveOnlyWhenReadAsData) {
  auto sim = std::make_shared<testing::SimDeviceBackend>();
  ModelBuilder b;
  b.input("x", kFloat, {64, 128}).output("y", kFloat, {64, 128}).output("d", kFloat, {2});
  b.node("Relu", {"x"}, {"r"});
  b.node("Shape", {"r"}, {"s"});               // metadata only: r is not downloaded
  b.node("Reshape", {"r", "s"}, {"y"});        // s is a host input of Reshape: read where it is
  auto& cast = b.node("Cast", {"s"}, {"d"});  // s read as data: uploaded
  auto* to = cast.add_attribute();
  to->set_name("to");
  to->set_type(onnx::AttributeProto::INT);
  to->set_i(kFloat);
  auto s = load(b, {sim});
  ASSERT_TRUE(s);
  EXPECT_EQ(backends_of(s->placement()), (std::vector<std::string>{"simdev"}));
  auto out = s->run({{"x", Value(big_input())}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].second.tensor().shape(), (Shape{64, 128}));
  const Tensor& d = (*out)[1].second.tensor();
  ASSERT_EQ(d.numel(), 2);
  EXPECT_FLOAT_EQ(d.data<float>()[0], 64.f);
  EXPECT_FLOAT_EQ(d.data<float>()[1], 128.f);
  // x and s up (s for Cast); y and d down. Without the metadata flag r would come down for Shape, and s
  // would come down again for Reshape.
  EXPECT_EQ(sim->sim_transfer().to_device.load(), 4 * kBig + 16);
  EXPECT_EQ(sim->sim_transfer().to_host.load(), 4 * kBig + 8);
}

TEST(Partitioner, ConstantHostInputsStayOnTheHost) {
  auto sim = std::make_shared<testing::SimDeviceBackend>();
  ModelBuilder b;
  b.input("x", kFloat, {2, 3}).output("y", kFloat, {3, 2});
  auto* shape = b.proto().mutable_graph()->add_initializer();
  shape->set_name("shape");
  shape->set_data_type(onnx::TensorProto::INT64);
  shape->add_dims(2);
  shape->add_int64_data(3);
  shape->add_int64_data(2);
  b.node("Relu", {"x"}, {"r"});
  b.node("Reshape", {"r", "shape"}, {"y"});
  auto s = load(b, {sim});
  ASSERT_TRUE(s);
  EXPECT_EQ(backends_of(s->placement()), (std::vector<std::string>{"simdev"}));
  EXPECT_EQ(sim->sim_transfer().to_device.load(), 0) << "the shape, read on the host, is not uploaded at load";
  for (int i = 0; i < 2; ++i) {
    auto out = s->run({{"x", Value(input23())}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_EQ((*out)[0].second.tensor().shape(), (Shape{3, 2}));
  }
  // Per run: x up, y down; the shape never moves (no download, no stream wait).
  EXPECT_EQ(sim->sim_transfer().to_device.load(), 2 * 24);
  EXPECT_EQ(sim->sim_transfer().to_host.load(), 2 * 24);
}

}  // namespace
}  // namespace orchard
