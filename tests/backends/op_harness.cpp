#include "backends/op_harness.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "backends/cpu/cpu_backend.hpp"
#include "orchard/thread_pool.hpp"
#include "runtime/executor.hpp"
#include "testing/test_backends.hpp"

namespace orchard::testing {

namespace {
graph::Attribute make_attr(graph::Attribute::Type type) {
  graph::Attribute a;
  a.type = type;
  return a;
}
}  // namespace

OpCase& OpCase::attr(const std::string& name, int64_t v) {
  auto a = make_attr(graph::Attribute::Type::i);
  a.i = v;
  attributes[name] = a;
  return *this;
}
OpCase& OpCase::attr(const std::string& name, float v) {
  auto a = make_attr(graph::Attribute::Type::f);
  a.f = v;
  attributes[name] = a;
  return *this;
}
OpCase& OpCase::attr(const std::string& name, const std::string& v) {
  auto a = make_attr(graph::Attribute::Type::s);
  a.s = v;
  attributes[name] = a;
  return *this;
}
OpCase& OpCase::attr(const std::string& name, std::vector<int64_t> v) {
  auto a = make_attr(graph::Attribute::Type::ints);
  a.ints = std::move(v);
  attributes[name] = a;
  return *this;
}
OpCase& OpCase::attr(const std::string& name, std::vector<float> v) {
  auto a = make_attr(graph::Attribute::Type::floats);
  a.floats = std::move(v);
  attributes[name] = a;
  return *this;
}
OpCase& OpCase::attr(const std::string& name, std::vector<std::string> v) {
  auto a = make_attr(graph::Attribute::Type::strings);
  a.strings = std::move(v);
  attributes[name] = a;
  return *this;
}
OpCase& OpCase::attr(const std::string& name, Tensor v) {
  auto a = make_attr(graph::Attribute::Type::t);
  a.t = std::move(v);
  attributes[name] = a;
  return *this;
}
OpCase& OpCase::attr(const std::string& name, std::shared_ptr<const graph::Graph> g) {
  auto a = make_attr(graph::Attribute::Type::g);
  a.g = std::move(g);
  attributes[name] = a;
  return *this;
}

namespace {

// Runs the case on `chain`; `backend_out`, when given, receives the index in the chain of the backend that ran the
// node and `declined_out` why earlier backends declined it.
Result<std::vector<Value>> run_on(const OpCase& c, const std::vector<std::shared_ptr<runtime::Backend>>& chain,
                                  int* backend_out = nullptr, std::string* declined_out = nullptr) {
  auto g = std::make_shared<graph::Graph>();
  graph::Node node;
  node.name = "under_test";
  node.op_type = c.op;
  node.domain = c.domain;
  node.opset = c.opset;
  std::vector<Value> feeds;
  for (const auto& [name, v] : c.inputs) {
    node.inputs.push_back(name);
    if (name.empty()) continue;
    if (std::find(c.constants.begin(), c.constants.end(), name) != c.constants.end()) {
      g->initializers[name] = v.tensor();
      continue;
    }
    ValueInfo info;
    info.name = name;
    info.kind = v.kind();
    if (v.is_tensor()) info.dtype = v.tensor().dtype();
    if (c.declare_shapes && v.is_tensor()) {
      info.has_shape = true;
      for (size_t d = 0; d < v.tensor().rank(); ++d) info.shape.push_back(Dim{v.tensor().dim(d), {}});
    }
    g->inputs.push_back(info);
    feeds.push_back(v);
  }
  for (int i = 0; i < c.num_outputs; ++i) {
    node.outputs.push_back("y" + std::to_string(i));
    ValueInfo info;
    info.name = node.outputs.back();
    g->outputs.push_back(info);
  }
  node.attributes = c.attributes;
  for (const auto& [key, a] : node.attributes) {
    // Subgraph attributes read outer names through implicit inputs, as the importer would compute.
    if (a.g) {
      for (const auto& in : g->inputs) node.implicit_inputs.push_back(in.name);
    }
  }
  g->nodes.push_back(std::move(node));
  ORCHARD_ASSIGN_OR_RETURN(auto compiled, runtime::CompiledGraph::compile(g, chain, nullptr));
  const runtime::Placement& placement = compiled->placement();
  if (backend_out) *backend_out = placement.node_backend.empty() ? -1 : placement.node_backend[0];
  if (declined_out && !placement.declined.empty()) {
    for (const runtime::Declined& d : placement.declined[0]) {
      *declined_out += chain[static_cast<size_t>(d.backend)]->device().name + ": " + d.reason + "; ";
    }
  }
  static ThreadPool default_pool(0);
  // Under qemu-user the tests pin ORCHARD_NUM_THREADS=1 (tests/CMakeLists.txt: a second thread makes the whole
  // emulated process ~100x slower), and a case's own thread count gives way to it.
  static const bool pinned_to_one = std::getenv("ORCHARD_NUM_THREADS") != nullptr && ThreadPool::default_threads() == 1;
  std::unique_ptr<ThreadPool> own_pool =
      c.threads > 0 && !pinned_to_one ? std::make_unique<ThreadPool>(c.threads) : nullptr;
  runtime::RunEnv env;
  env.pool = own_pool ? own_pool.get() : &default_pool;
  env.allocator = &default_allocator();
  return compiled->run(feeds, env, nullptr);
}

// Returns element k of a float32, float16 or bfloat16 tensor as double.
double float_at(const Tensor& t, int64_t k) {
  switch (t.dtype()) {
    case DType::float16: return static_cast<double>(static_cast<float>(t.data<float16>()[k]));
    case DType::bfloat16: return static_cast<double>(static_cast<float>(t.data<bfloat16>()[k]));
    default: return static_cast<double>(t.data<float>()[k]);
  }
}

// The tolerance of an accelerator's float outputs, relative to the output's scale: bfloat16 keeps 8 significant
// bits (a rounding step of 2^-8 = 0.4%), float16 11, float32 24.
double relative_tolerance(DType t) {
  switch (t) {
    case DType::float16: return 1e-2;
    case DType::bfloat16: return 2e-2;
    default: return 1e-4;
  }
}

// Expects another backend's run of one case to agree with the CPU's: same success, same shapes and dtypes,
// strings and integers equal. Floats: bit for bit (NaNs match NaNs) when `exact` (the test backends run the
// CPU's own kernels); otherwise within a tolerance relative to the output's scale (largest |value|, at least
// 1): float32 1e-4, float16 1e-2, bfloat16 2e-2 (an accelerator's kernels round differently from the reference).
void expect_agrees(const OpCase& c, const std::string& backend, const Result<std::vector<Value>>& got,
                   const Result<std::vector<Value>>& want, bool exact) {
  const std::string what = c.op + " on " + backend;
  ASSERT_EQ(got.ok(), want.ok()) << what << ": " << (got.ok() ? want.status() : got.status()).to_string();
  if (!want.ok()) return;
  ASSERT_EQ(got->size(), want->size()) << what;
  for (size_t i = 0; i < want->size(); ++i) {
    const Value& g = (*got)[i];
    const Value& w = (*want)[i];
    ASSERT_EQ(g.kind(), w.kind()) << what << " output " << i;
    if (!w.is_tensor()) continue;
    const Tensor& gt = g.tensor();
    const Tensor& wt = w.tensor();
    ASSERT_TRUE(gt.place().host_visible()) << what << ": output " << i << " left on " << gt.place().to_string();
    ASSERT_EQ(gt.description(), wt.description()) << what << " output " << i;
    if (wt.dtype() == DType::string) {
      for (int64_t k = 0; k < wt.numel(); ++k) EXPECT_EQ(gt.data<std::string>()[k], wt.data<std::string>()[k]) << what;
      continue;
    }
    const bool is_float = wt.dtype() == DType::float32 || wt.dtype() == DType::float16 || wt.dtype() == DType::bfloat16;
    if (wt.nbytes() == 0 || std::memcmp(gt.raw_data(), wt.raw_data(), wt.nbytes()) == 0) continue;
    if (!is_float) {
      ADD_FAILURE() << what << ": output " << i << " differs from the CPU reference";
      continue;
    }
    double tol = 0;  // exact: equal values, NaN payloads aside
    if (!exact) {
      double scale = 1;
      for (int64_t k = 0; k < wt.numel(); ++k) {
        const double v = std::fabs(float_at(wt, k));
        if (std::isfinite(v)) scale = std::max(scale, v);
      }
      tol = relative_tolerance(wt.dtype()) * scale;
    }
    int64_t bad = 0;
    for (int64_t k = 0; k < wt.numel(); ++k) {
      const double x = float_at(gt, k), y = float_at(wt, k);
      const bool ok = std::isnan(y) ? std::isnan(x) : (std::isinf(y) ? x == y : std::fabs(x - y) <= tol);
      if (!ok && bad++ < 3) ADD_FAILURE() << what << ": output " << i << " at " << k << ": " << x << " vs CPU " << y;
    }
    EXPECT_EQ(bad, 0) << what << ": output " << i << " has " << bad << " elements beyond " << tol;
  }
}

// True when the CPU kernel table has a variant besides the reference kernel for the case's op (the
// comparison with the reference is then meaningful; else both runs are the same code, which for the
// random-number ops would not even give the same values).
bool has_optimized_variant(const OpCase& c) {
  for (const runtime::KernelDef& k : cpu::all_kernels()) {
    if (k.domain == c.domain && k.op == c.op && k.since <= c.opset && c.opset <= k.until &&
        (k.priority != 0 || k.cpu_features != 0)) {
      return true;
    }
  }
  return false;
}

}  // namespace

Result<std::vector<Value>> run_op(const OpCase& c) {
  const auto chain = runtime::available_backends(SessionOptions{});
  const std::shared_ptr<runtime::Backend> cpu = chain.back();
  // The oracle: the reference kernels alone. The CPU's best variants (optimized kernels chosen by CPU
  // features) must agree with it within tolerances; when the reference is the best variant they are equal.
  auto want = run_on(c, {cpu});
  const auto reference = has_optimized_variant(c) ? run_on(c, {cpu::CpuBackend::reference_only(SessionOptions{})}) : want;
  if (has_optimized_variant(c)) expect_agrees(c, "cpu (best variants) vs cpu-reference", want, reference, /*exact=*/false);
  // The same case on every other backend that takes the op, with the CPU taking nothing else.
  for (const char* name : {"simdev", "testcompile"}) {
    auto backend = make_test_backend(name);
    if (!backend->has_op(c.domain, c.op, c.opset)) continue;
    expect_agrees(c, name, run_on(c, {backend, cpu}), want, /*exact=*/true);
  }
  // And on the compiled-in accelerators present on this machine (CUDA with a GPU), within tolerances.
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    if (!chain[i]->has_op(c.domain, c.op, c.opset)) continue;
    const std::string& name = chain[i]->device().name;
    int ran_on = -1;
    std::string declined;
    auto got = run_on(c, {chain[i], cpu}, &ran_on, &declined);
    if (c.accelerated && got.ok()) {
      EXPECT_EQ(ran_on, 0) << c.op << " was left to the CPU, not run on " << name << ": " << declined;
    }
    expect_agrees(c, name, got, reference, /*exact=*/false);
  }
  return want;
}

Result<std::vector<Value>> run_op_on(const OpCase& c, const std::vector<std::shared_ptr<runtime::Backend>>& chain,
                                     int* ran_on) {
  return run_on(c, chain, ran_on);
}

Tensor random_float_tensor(Shape s, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  Tensor t = Tensor::empty(DType::float32, std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

void expect_tensor_near(const Tensor& got, const Tensor& want, double rtol, double atol) {
  ASSERT_EQ(got.dtype(), want.dtype()) << got.description() << " vs " << want.description();
  ASSERT_EQ(got.shape(), want.shape()) << got.description() << " vs " << want.description();
  for (int64_t i = 0; i < want.numel(); ++i) {
    double g = 0, w = 0;
    switch (want.dtype()) {
      case DType::float32: g = got.data<float>()[i]; w = want.data<float>()[i]; break;
      case DType::float64: g = got.data<double>()[i]; w = want.data<double>()[i]; break;
      case DType::float16: g = static_cast<float>(got.data<float16>()[i]); w = static_cast<float>(want.data<float16>()[i]); break;
      case DType::bfloat16:
        g = static_cast<float>(got.data<bfloat16>()[i]);
        w = static_cast<float>(want.data<bfloat16>()[i]);
        break;
      case DType::int32: g = got.data<int32_t>()[i]; w = want.data<int32_t>()[i]; break;
      case DType::int64: g = static_cast<double>(got.data<int64_t>()[i]); w = static_cast<double>(want.data<int64_t>()[i]); break;
      case DType::int8: g = got.data<int8_t>()[i]; w = want.data<int8_t>()[i]; break;
      case DType::uint8: g = got.data<uint8_t>()[i]; w = want.data<uint8_t>()[i]; break;
      case DType::boolean: g = got.data<bool>()[i]; w = want.data<bool>()[i]; break;
      case DType::string: EXPECT_EQ(got.data<std::string>()[i], want.data<std::string>()[i]) << "at " << i; continue;
      default: FAIL() << "expect_tensor_near: dtype " << dtype_name(want.dtype()) << " not handled";
    }
    if (std::isnan(w)) {
      EXPECT_TRUE(std::isnan(g)) << "at " << i;
      continue;
    }
    EXPECT_LE(std::fabs(g - w), atol + rtol * std::fabs(w)) << "at " << i << ": got " << g << ", want " << w;
  }
}

}  // namespace orchard::testing
