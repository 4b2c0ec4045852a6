// The arena memory planner (runtime/memory_planner.hpp): planned runs (second and later runs of an input-shape
// signature) must give exactly the outputs of unplanned ones, returned outputs must survive later runs, and the
// plan itself must place values by lifetime and in place.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <random>

#include "orchard/io.hpp"
#include "onnx/importer.hpp"
#include "orchard/session.hpp"
#include "orchard/thread_pool.hpp"
#include "runtime/memory_planner.hpp"
#include "testing/model_builder.hpp"

namespace orchard {
namespace {

using testing::ModelBuilder;
constexpr int kFloat = onnx::TensorProto::FLOAT;

std::unique_ptr<Session> load_bytes(const ModelBuilder& b, bool planned) {
  if (!planned) setenv("ORCHARD_MEMORY_PLAN", "0", 1);
  const std::string bytes = b.bytes();
  SessionOptions o;
  o.intra_op_threads = 1;
  o.backend_preference = {"cpu"};
  auto s = Session::load_from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), o);
  unsetenv("ORCHARD_MEMORY_PLAN");
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? std::move(*s) : nullptr;
}

Tensor random_tensor(Shape shape, uint32_t seed) {
  Tensor t = Tensor::empty(DType::float32, shape);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

void expect_equal(const NamedValues& got, const NamedValues& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t o = 0; o < want.size(); ++o) {
    if (!want[o].second.is_tensor()) continue;
    const Tensor& w = want[o].second.tensor();
    const Tensor& g = got[o].second.tensor();
    ASSERT_EQ(g.shape(), w.shape()) << what << " output " << want[o].first;
    ASSERT_EQ(g.nbytes(), w.nbytes());
    if (w.dtype() == DType::string) continue;
    EXPECT_EQ(std::memcmp(g.raw_data(), w.raw_data(), w.nbytes()), 0) << what << " output " << want[o].first;
  }
}

// x [n, 8] → a chain of elementwise ops, a Reshape alias, a MatMul and a Softmax → y [n, 2, 4] and z (an alias
// of an intermediate that is also a graph output).
ModelBuilder chain_model() {
  ModelBuilder b;
  b.input("x", kFloat, {"n", 8}).output("y", kFloat, {"n", 2, 4}).output("z", kFloat, {"n", 8});
  auto* w = b.proto().mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(8);
  w->add_dims(8);
  std::vector<float> wv(64);
  for (size_t i = 0; i < wv.size(); ++i) wv[i] = 0.05f * static_cast<float>(i % 7) - 0.1f;
  w->set_raw_data(wv.data(), wv.size() * sizeof(float));
  auto* shape = b.proto().mutable_graph()->add_initializer();
  shape->set_name("shape");
  shape->set_data_type(onnx::TensorProto::INT64);
  shape->add_dims(3);
  const int64_t sv[3] = {0, 2, 4};
  shape->set_raw_data(sv, sizeof(sv));
  b.node("Relu", {"x"}, {"a"});
  b.node("Sigmoid", {"a"}, {"b"});   // in place over a
  b.node("Add", {"b", "x"}, {"c"});  // in place over b
  b.node("MatMul", {"c", "w"}, {"d"});
  b.node("Tanh", {"d"}, {"e"});
  b.node("Identity", {"e"}, {"z"});  // an alias that is a graph output: e stays out of the arena
  b.node("Mul", {"e", "c"}, {"f"});
  b.node("Reshape", {"f", "shape"}, {"g"});  // alias of f, read after f's own last reader
  b.node("Exp", {"g"}, {"h"});
  b.node("Softmax", {"h"}, {"y"});
  return b;
}

TEST(MemoryPlan, PlannedRunsMatchUnplannedOnesAcrossShapes) {
  const ModelBuilder b = chain_model();
  auto planned = load_bytes(b, true);
  auto plain = load_bytes(b, false);
  ASSERT_TRUE(planned && plain);
  std::vector<NamedValues> kept;  // outputs held across later runs must not change
  std::vector<NamedValues> kept_want;
  uint32_t seed = 1;
  for (int64_t n : {3, 3, 3, 17, 3, 17, 1}) {
    const NamedValues in = {{"x", Value(random_tensor({n, 8}, seed++))}};
    auto want = plain->run(in);
    auto got = planned->run(in);
    ASSERT_TRUE(want.ok() && got.ok());
    expect_equal(*got, *want, "n=" + std::to_string(n));
    kept.push_back(*got);
    kept_want.push_back(*want);
  }
  for (size_t i = 0; i < kept.size(); ++i) expect_equal(kept[i], kept_want[i], "kept output " + std::to_string(i));
}

// The plan itself, through the runtime: values in place, the arena below the one-by-one peak, graph outputs and
// their aliases left out, a second run of the same shapes planned and one of other shapes recording.
TEST(MemoryPlan, PlacesValuesByLifetimeAndInPlace) {
  const ModelBuilder b = chain_model();
  const std::string bytes = b.bytes();
  auto model = onnx_import::import_model_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), {}, {});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const std::vector<std::shared_ptr<runtime::Backend>> cpu = {runtime::available_backends(SessionOptions{}).back()};
  auto cg = runtime::CompiledGraph::compile(model->graph, cpu, nullptr);
  ASSERT_TRUE(cg.ok()) << cg.status().to_string();
  runtime::ArenaPlanner planner(**cg);
  ThreadPool pool(1);
  auto run = [&](const std::vector<Value>& in, runtime::RunArena* arena) {
    runtime::RunEnv env;
    env.pool = &pool;
    env.allocator = &default_allocator();
    env.arena = arena;
    auto out = (*cg)->run(in, env, nullptr);
    EXPECT_TRUE(out.ok()) << out.status().to_string();
  };
  const std::vector<Value> in = {Value(random_tensor({6, 8}, 1))};
  auto rec = planner.begin(in, nullptr);
  ASSERT_TRUE(rec && !rec->planned());
  run(in, rec.get());
  planner.end(std::move(rec), true);
  auto plan = planner.plan_for(in);
  ASSERT_NE(plan, nullptr);
  EXPECT_GE(plan->in_place, 3);  // b over a, c over b, f over c, h over f/g
  EXPECT_GT(plan->planned, 4);
  // At most two 6x8 floats are alive at once (c and d at the MatMul): the arena holds exactly that.
  EXPECT_EQ(plan->size, 2 * 6 * 8 * 4);
  EXPECT_LE(plan->size, plan->unplanned_peak);
  const int e = (*cg)->slot_of("e"), z = (*cg)->slot_of("z"), y = (*cg)->slot_of("y"), g = (*cg)->slot_of("g");
  EXPECT_EQ(plan->offset[static_cast<size_t>(e)], -1);  // aliased by the graph output z
  EXPECT_EQ(plan->offset[static_cast<size_t>(z)], -1);
  EXPECT_EQ(plan->offset[static_cast<size_t>(y)], -1);
  EXPECT_GE(plan->offset[static_cast<size_t>(g)], 0);  // the Reshape alias shares f's place
  EXPECT_EQ(plan->offset[static_cast<size_t>(g)], plan->offset[static_cast<size_t>((*cg)->slot_of("f"))]);
  auto planned = planner.begin(in, nullptr);
  ASSERT_TRUE(planned && planned->planned());
  run(in, planned.get());
  EXPECT_FALSE(planned->broken());
  planner.end(std::move(planned), true);
  const std::vector<Value> small = {Value(random_tensor({2, 8}, 1))};
  auto other = planner.begin(small, nullptr);
  ASSERT_TRUE(other && !other->planned());
}

TEST(MemoryPlan, PlanKeepsGraphOutputsAndTheirAliasesOutOfTheArena) {
  const ModelBuilder b = chain_model();
  auto planned = load_bytes(b, true);
  ASSERT_TRUE(planned);
  const NamedValues in = {{"x", Value(random_tensor({4, 8}, 5))}};
  auto first = planned->run(in);
  auto second = planned->run(in);
  ASSERT_TRUE(first.ok() && second.ok());
  // Outputs of the planned run own their memory: a third run must not write over them.
  const Tensor z = (*second)[1].second.tensor().clone();
  auto third = planned->run({{"x", Value(random_tensor({4, 8}, 6))}});
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(std::memcmp(z.raw_data(), (*second)[1].second.tensor().raw_data(), z.nbytes()), 0);
}

// Every real model of tests/models: run its test inputs three times planned, compare with an unplanned session.
TEST(MemoryPlan, RealModelsGiveTheSameOutputsPlannedAndUnplanned) {
  const std::filesystem::path root = std::filesystem::path(ORCHARD_TEST_DATA_DIR).parent_path() / "models";
  int models = 0;
  for (const auto& dir : std::filesystem::directory_iterator(root)) {
    const auto model = dir.path() / "model.onnx";
    if (!std::filesystem::exists(model)) continue;
    SessionOptions o;
    o.intra_op_threads = 0;  // every core natively (kernels split work); one under qemu, where threads crawl
    o.backend_preference = {"cpu"};
    auto planned = Session::load(model, o);
    setenv("ORCHARD_MEMORY_PLAN", "0", 1);
    auto plain = Session::load(model, o);
    unsetenv("ORCHARD_MEMORY_PLAN");
    ASSERT_TRUE(planned.ok() && plain.ok()) << model;
    NamedValues in;
    const auto& infos = (*planned)->inputs();
    for (size_t k = 0; k < infos.size(); ++k) {
      auto v = load_value_pb(dir.path() / "test_data_set_0" / ("input_" + std::to_string(k) + ".pb"), infos[k].kind);
      ASSERT_TRUE(v.ok()) << v.status().to_string();
      in.emplace_back(infos[k].name, *v);
    }
    auto want = (*plain)->run(in);
    ASSERT_TRUE(want.ok()) << want.status().to_string();
    for (int r = 0; r < 3; ++r) {
      auto got = (*planned)->run(in);
      ASSERT_TRUE(got.ok()) << model << ": " << got.status().to_string();
      expect_equal(*got, *want, model.string() + " run " + std::to_string(r));
    }
    ++models;
  }
  EXPECT_GE(models, 10);
}

}  // namespace
}  // namespace orchard
