// Kernel-level benchmarks of the optimized CPU kernels (issue 9): the float32 GEMM core on shapes of the
// standard models, and single Conv / MatMul nodes (weights as initializers, so pre-packed at load) run
// through the CPU backend's best variants. Counters: GFLOP/s and, on x86-64, % of this machine's FMA peak per thread,
// measured once at start by a register-only FMA loop of the widest ISA the CPU has (the clock moves between sessions
// on a shared VM: 238 GFLOP/s when issue 9 was written, 176-192 in session 9; the peak in use is printed to stderr).
// Second argument: threads.
//   ./build/release/bench/orchard_bench --benchmark_filter='Gemm|Conv|MatMul' --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.hpp"
#include "backends/cpu/opt/gemm_f32.hpp"
#include "core/cpu_features.hpp"
#include "orchard/thread_pool.hpp"
#include "runtime/executor.hpp"

namespace orchard {
namespace {

#if defined(__x86_64__)
// FLOP/s of `reps` rounds of 16 independent FMA chains on AVX-512 / AVX2 registers (registers only: the FMA units'
// throughput, what a GEMM micro-kernel can at best reach). Intrinsics, since ISO C++ mode does not contract a * b + c.
__attribute__((target("avx512f,fma"))) double fma_peak_avx512(int64_t reps) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < reps; ++r) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float lanes[16], sink = 0;
  for (int i = 0; i < 16; ++i) {
    _mm512_storeu_ps(lanes, acc[i]);
    for (float v : lanes) sink += v;
  }
  benchmark::DoNotOptimize(sink);
  return 2.0 * 16 * 16 * static_cast<double>(reps) / s;
}

__attribute__((target("avx2,fma"))) double fma_peak_avx2(int64_t reps) {
  // Twelve independent chains and the two operands fill 14 of the 16 ymm registers: sixteen chains spilled to the
  // stack at every step, which measured half the peak on an AMD EPYC (session 13).
  constexpr int kChains = 12;
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < reps; ++r) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float lanes[8], sink = 0;
  for (int i = 0; i < kChains; ++i) {
    _mm256_storeu_ps(lanes, acc[i]);
    for (float v : lanes) sink += v;
  }
  benchmark::DoNotOptimize(sink);
  return 2.0 * 8 * kChains * static_cast<double>(reps) / s;
}
#endif

// The FMA peak of one thread, FLOP/s: the best of five runs of 16 x 2^20 vector FMAs of the widest ISA
// cpu_features() allows; 0 where there is no such loop (then %peak is not reported).
double peak_per_thread() {
  static const double peak = [] {
    double best = 0;
#if defined(__x86_64__)
    const uint32_t f = cpu_features();
    for (int i = 0; i < 5 && (f & (kCpuAvx512 | kCpuAvx2)); ++i) {
      best = std::max(best, (f & kCpuAvx512) ? fma_peak_avx512(1 << 20) : fma_peak_avx2(1 << 20));
    }
    if (best > 0) {
      std::fprintf(stderr, "kernels_bench: FMA peak %.1f GFLOP/s per thread (%s)\n", best * 1e-9,
                   (f & kCpuAvx512) ? "avx512" : "avx2");
    }
#endif
    return best;
  }();
  return peak;
}

void set_counters(benchmark::State& state, double flops_per_iter, int threads) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  if (peak_per_thread() > 0) {
    state.counters["%peak"] = benchmark::Counter(flops_per_iter * 100.0 / (peak_per_thread() * threads),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  }
}

std::vector<float> random_floats(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// C[M x N] = A[M x K] B[K x N]; args: M, N, K, threads, which operand is pre-packed (0 none, 1 A, 2 B).
void BM_GemmF32(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  const int64_t packed = state.range(4);
  const auto A = random_floats(M * K, 1), B = random_floats(K * N, 2);
  std::vector<float> C(static_cast<size_t>(M * N));
  ThreadPool pool(threads);
  auto pa = packed == 1 ? cpu::opt::gemm_pack_a(false, M, K, A.data(), K) : nullptr;
  auto pb = packed == 2 ? cpu::opt::gemm_pack_b(false, K, N, B.data(), N) : nullptr;
  const cpu::opt::GemmOperand a{A.data(), K, false, pa.get()}, b{B.data(), N, false, pb.get()};
  for (auto _ : state) {
    cpu::opt::gemm_f32(M, N, K, a, b, C.data(), N, {}, &pool);
    benchmark::DoNotOptimize(C.data());
  }
  set_counters(state, 2.0 * M * N * K, threads);
  state.SetLabel(std::string(cpu::opt::gemm_micro_kernel().name));
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "thr", "packed"});
  for (int threads : {1, 2}) {
    b->Args({1024, 1024, 1024, threads, 2});
    b->Args({128, 768, 768, threads, 2});     // bert: attention projections (weights packed)
    b->Args({128, 3072, 768, threads, 2});    // bert: FFN up
    b->Args({128, 768, 3072, threads, 2});    // bert: FFN down
    b->Args({128, 128, 64, threads, 0});      // bert: Q K^T per head (nothing constant)
    b->Args({256, 3136, 64, threads, 1});     // resnet50 1x1 conv: Cout x HW x Cin (weights packed)
    b->Args({64, 3136, 576, threads, 1});     // resnet50 3x3 conv via im2col: 64 x 3136 x 576
    b->Args({512, 49, 4608, threads, 1});     // resnet50 last stage 3x3 via im2col
  }
}
BENCHMARK(BM_GemmF32)->Apply(gemm_shapes)->UseRealTime()->Unit(benchmark::kMicrosecond);

// One node on the CPU backend's best variants; inputs[0] is fed, the others are initializers.
struct OneNode {
  std::shared_ptr<runtime::CompiledGraph> compiled;
  std::vector<Value> feeds;
};

OneNode build(const std::string& op, const std::vector<Shape>& shapes, std::map<std::string, graph::Attribute, std::less<>> attrs) {
  auto g = std::make_shared<graph::Graph>();
  graph::Node node;
  node.name = "bench";
  node.op_type = op;
  node.opset = 17;
  node.attributes = std::move(attrs);
  OneNode one;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const std::string name = "in" + std::to_string(i);
    node.inputs.push_back(name);
    Tensor t = Tensor::empty(DType::float32, shapes[i]);
    const auto v = random_floats(t.numel(), static_cast<unsigned>(i + 1));
    std::copy(v.begin(), v.end(), t.data<float>());
    if (i == 0) {
      ValueInfo info;
      info.name = name;
      info.kind = Value::Kind::tensor;
      info.dtype = DType::float32;
      g->inputs.push_back(info);
      one.feeds.emplace_back(t);
    } else {
      g->initializers[name] = t;
    }
  }
  node.outputs.push_back("y");
  ValueInfo out;
  out.name = "y";
  g->outputs.push_back(out);
  g->nodes.push_back(std::move(node));
  std::vector<std::shared_ptr<runtime::Backend>> chain{std::make_shared<cpu::CpuBackend>(SessionOptions{})};
  auto compiled = runtime::CompiledGraph::compile(g, chain, nullptr);
  if (!compiled.ok()) std::abort();
  one.compiled = *compiled;
  return one;
}

graph::Attribute ints(std::vector<int64_t> v) {
  graph::Attribute a;
  a.type = graph::Attribute::Type::ints;
  a.ints = std::move(v);
  return a;
}
graph::Attribute int1(int64_t v) {
  graph::Attribute a;
  a.type = graph::Attribute::Type::i;
  a.i = v;
  return a;
}

void run_node(benchmark::State& state, OneNode& one, double flops, int threads) {
  ThreadPool pool(threads);
  runtime::RunEnv env;
  env.pool = &pool;
  env.allocator = &default_allocator();
  for (auto _ : state) {
    auto y = one.compiled->run(one.feeds, env, nullptr);
    if (!y.ok()) state.SkipWithError(y.status().to_string().c_str());
    benchmark::DoNotOptimize(y);
  }
  set_counters(state, flops, threads);
}

// Conv NCHW, batch 1; args: C, H(=W), M, k, stride, group, threads.
void BM_Conv(benchmark::State& state) {
  const int64_t C = state.range(0), H = state.range(1), M = state.range(2), k = state.range(3), s = state.range(4);
  const int64_t group = state.range(5);
  const int threads = static_cast<int>(state.range(6));
  const int64_t pad = k / 2;
  OneNode one = build("Conv", {{1, C, H, H}, {M, C / group, k, k}, {M}},
                      {{"strides", ints({s, s})}, {"pads", ints({pad, pad, pad, pad})}, {"group", int1(group)}});
  const int64_t out = (H + 2 * pad - k) / s + 1;
  run_node(state, one, 2.0 * M * out * out * (C / group) * k * k, threads);
}

void conv_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "H", "M", "k", "s", "g", "thr"});
  for (int threads : {1, 2}) {
    b->Args({64, 56, 256, 1, 1, 1, threads});    // resnet50 1x1 expand
    b->Args({16, 112, 96, 1, 1, 1, threads});    // mobilenet_v2 1x1 expand, K = 16
    b->Args({256, 56, 64, 1, 1, 1, threads});    // resnet50 1x1 reduce
    b->Args({64, 56, 64, 3, 1, 1, threads});     // resnet50 3x3
    b->Args({3, 224, 64, 7, 2, 1, threads});     // resnet50 stem 7x7/2
    b->Args({512, 7, 512, 3, 1, 1, threads});    // resnet50 last stage 3x3
    b->Args({256, 14, 256, 3, 1, 1, threads});   // resnet50 14x14 3x3
    b->Args({1024, 14, 256, 1, 1, 1, threads});  // resnet50 14x14 1x1 reduce
    b->Args({144, 56, 144, 3, 1, 144, threads}); // mobilenet_v2 depthwise 3x3
    b->Args({96, 112, 96, 3, 2, 96, threads});   // mobilenet_v2 depthwise 3x3/2
    b->Args({240, 28, 240, 5, 1, 240, threads}); // efficientnet depthwise 5x5
    b->Args({96, 56, 96, 7, 1, 96, threads});    // convnext depthwise 7x7
    b->Args({32, 112, 32, 3, 1, 32, threads});   // mobilenet_v2 depthwise 3x3 on 112x112
    b->Args({960, 7, 960, 3, 1, 960, threads});  // mobilenet_v2 depthwise 3x3 on 7x7
    b->Args({576, 14, 576, 3, 1, 576, threads}); // mobilenet_v2 depthwise 3x3 on 14x14
    b->Args({576, 14, 576, 3, 2, 576, threads}); // mobilenet_v2 depthwise 3x3/2 to 7x7
    b->Args({1152, 7, 1152, 5, 1, 1152, threads}); // efficientnet depthwise 5x5 on 7x7
    b->Args({672, 14, 672, 5, 1, 672, threads}); // efficientnet depthwise 5x5 on 14x14
    b->Args({768, 7, 768, 7, 1, 768, threads});  // convnext depthwise 7x7 on 7x7
  }
}
BENCHMARK(BM_Conv)->Apply(conv_shapes)->UseRealTime()->Unit(benchmark::kMicrosecond);

// MatMul [1, S, K] x [K, N] with B an initializer (a transformer's projection); args: S, K, N, threads.
void BM_MatMul(benchmark::State& state) {
  const int64_t S = state.range(0), K = state.range(1), N = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  OneNode one = build("MatMul", {{1, S, K}, {K, N}}, {});
  run_node(state, one, 2.0 * S * K * N, threads);
}
BENCHMARK(BM_MatMul)
    ->ArgNames({"S", "K", "N", "thr"})
    ->Args({128, 768, 768, 1})
    ->Args({128, 768, 3072, 1})
    ->Args({128, 768, 768, 2})
    ->Args({128, 768, 3072, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace orchard
