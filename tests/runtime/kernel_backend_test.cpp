// KernelBackend: variants chosen by priority, CPU features and dtype; create -> reshape -> run with the
// shape-dependent state computed once per input shape.
#include <gtest/gtest.h>

#include <atomic>

#include "orchard/session.hpp"
#include "runtime/kernel_backend.hpp"
#include "testing/model_builder.hpp"

namespace orchard {
namespace {

using testing::ModelBuilder;
constexpr int kFloat = onnx::TensorProto::FLOAT;

std::atomic<int> g_reshapes{0};
std::atomic<int> g_runs_fast{0};
std::atomic<int> g_runs_plain{0};

struct CountState final : runtime::KernelState {
  int64_t numel = 0;
};

// Identity that records which variant ran and checks it got the state of its input's shape.
template <bool Fast>
class CountingIdentity final : public runtime::OpKernel {
 public:
  bool has_reshape() const override { return true; }
  Result<std::shared_ptr<const runtime::KernelState>> reshape(std::span<const Shape> shapes) const override {
    g_reshapes.fetch_add(1);
    auto s = std::make_shared<CountState>();
    s->numel = shapes[0].numel();
    return std::shared_ptr<const runtime::KernelState>(std::move(s));
  }
  Status run(runtime::OpContext& ctx) const override {
    const auto* s = ctx.state<CountState>();
    if (s == nullptr || s->numel != ctx.input(0).numel()) return internal_error("stale or missing state");
    (Fast ? g_runs_fast : g_runs_plain).fetch_add(1);
    ctx.set_output(0, ctx.value(0));
    return Status::OK();
  }
};

template <bool Fast>
Result<std::unique_ptr<runtime::OpKernel>> make_identity(const runtime::KernelCreateContext&) {
  return std::unique_ptr<runtime::OpKernel>(new CountingIdentity<Fast>());
}
Result<std::unique_ptr<runtime::OpKernel>> refuse(const runtime::KernelCreateContext&) {
  return unsupported("this variant declines the node");
}

constexpr uint32_t kMissingFeature = 1u << 31;  // a CPU feature no machine here reports

std::shared_ptr<runtime::Backend> backend_of(std::span<const runtime::KernelDef> table) {
  runtime::DeviceInfo info;
  info.name = "variants";
  return std::make_shared<runtime::KernelBackend>(info, table, /*available_features=*/0);
}

std::unique_ptr<Session> load(std::shared_ptr<runtime::Backend> b, DType input = DType::float32) {
  ModelBuilder m;
  m.input("x", input == DType::float32 ? kFloat : onnx::TensorProto::DOUBLE, {"n"})
      .output("y", input == DType::float32 ? kFloat : onnx::TensorProto::DOUBLE, {"n"});
  m.node("Identity", {"x"}, {"y"});
  SessionOptions o;
  o.backend_preference = {b->device().name, "cpu"};  // not an accelerator the test machine may have
  o.custom_backends = {std::move(b)};
  const std::string bytes = m.bytes();
  auto s = Session::load_from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), o);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? std::move(s).value() : nullptr;
}

void reset() {
  g_reshapes = 0;
  g_runs_fast = 0;
  g_runs_plain = 0;
}

TEST(KernelBackend, HighestPriorityVariantRunsAndReshapeRunsPerShape) {
  static const runtime::KernelDef table[] = {
      {"", "Identity", 1, runtime::kVerifiedOpset, make_identity<false>},
      {"", "Identity", 1, runtime::kVerifiedOpset, make_identity<true>, runtime::DTypeSet::all(), 0, 0, 5},
  };
  reset();
  auto s = load(backend_of(table));
  ASSERT_TRUE(s);
  for (int64_t n : {4, 4, 4, 7, 7, 4}) {
    auto out = s->run({{"x", Value(Tensor::zeros(DType::float32, {n}))}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
  }
  EXPECT_EQ(g_runs_fast.load(), 6);
  EXPECT_EQ(g_runs_plain.load(), 0);
  EXPECT_EQ(g_reshapes.load(), 3) << "once for 4, once for 7, once for 4 again";
}

TEST(KernelBackend, FailedOrUnavailableVariantsFallToTheNext) {
  static const runtime::KernelDef table[] = {
      {"", "Identity", 1, runtime::kVerifiedOpset, make_identity<false>},
      {"", "Identity", 1, runtime::kVerifiedOpset, refuse, runtime::DTypeSet::all(), 0, 0, 9},
      {"", "Identity", 1, runtime::kVerifiedOpset, make_identity<true>, runtime::DTypeSet::all(), 0, kMissingFeature, 7},
  };
  reset();
  auto s = load(backend_of(table));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->backends(), std::vector<std::string>{"variants"}) << "the node stays on its backend";
  ASSERT_TRUE(s->run({{"x", Value(Tensor::zeros(DType::float32, {3}))}}).ok());
  EXPECT_EQ(g_runs_plain.load(), 1);
  EXPECT_EQ(g_runs_fast.load(), 0);
}

TEST(KernelBackend, DtypeConstraintDeclinesAtLoadWithAReason) {
  static const runtime::KernelDef table[] = {
      {"", "Identity", 1, runtime::kVerifiedOpset, make_identity<false>, {DType::float32}},
  };
  auto s = load(backend_of(table), DType::float64);
  ASSERT_TRUE(s);
  const PlacementInfo p = s->placement();
  ASSERT_EQ(p.fallbacks.size(), 1u);
  EXPECT_EQ(p.fallbacks[0].backend, "cpu");
  ASSERT_EQ(p.fallbacks[0].declined.size(), 1u);
  EXPECT_EQ(p.fallbacks[0].declined[0].second, "Identity has no kernel for dtype float64");
  EXPECT_EQ(s->failover_count(), 0) << "a dtype the backend lacks is not a failure";
}

}  // namespace
}  // namespace orchard
