// Orchard's float32 GEMM core (src/backends/cpu/opt/gemm_f32.hpp) next to OpenBLAS's cblas_sgemm in one run:
// per shape, the two are timed alternately (warm-up, then `reps` rounds), medians and their ratio printed.
// Not part of the CMake build (it needs Debian's libopenblas-dev, which Orchard does not use). Build ad hoc
// after building the release preset:
//   g++ -O2 -std=c++20 -Iinclude -Isrc bench/gemm_vs_openblas.cpp build/release/liborchard.a \
//       -lonnx -lonnx_proto -lprotobuf -lopenblas -lpthread -o /tmp/gemm_vs_openblas
// Run (this VM's CPUID makes OpenBLAS's DYNAMIC_ARCH pick Prescott unless told):
//   OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=1 /tmp/gemm_vs_openblas 1 [reps]
//   OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=2 /tmp/gemm_vs_openblas 2 [reps]
// Orchard runs with B packed once beforehand for weight-like shapes (as its MatMul/Gemm/Conv variants do);
// OpenBLAS packs on every call (cblas has no pre-packed API), so the ratio also shows what pre-packing buys.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "backends/cpu/opt/gemm_f32.hpp"

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace orchard;
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 15;
  struct Shape {
    long m, n, k;
    int packed;  // Orchard: 0 none, 1 A packed, 2 B packed
    const char* what;
  };
  const Shape shapes[] = {
      {1024, 1024, 1024, 2, "square"},      {2048, 2048, 2048, 2, "square"},
      {128, 768, 768, 2, "bert qkv/out"},   {128, 3072, 768, 2, "bert ffn up"},
      {128, 768, 3072, 2, "bert ffn down"}, {128, 128, 64, 0, "bert QK^T head"},
      {256, 3136, 64, 1, "resnet 1x1"},     {64, 3136, 576, 1, "resnet 3x3 im2col"},
      {512, 49, 4608, 1, "resnet 3x3 last stage"},
  };
  ThreadPool pool(threads);
  std::printf("threads=%d reps=%d micro-kernel=%s\n", threads, reps, std::string(cpu::opt::gemm_micro_kernel().name).c_str());
  std::printf("%-24s %16s %12s %12s %14s %14s %8s\n", "shape", "MxNxK", "orchard ms", "openblas ms", "orchard GF/s",
              "openblas GF/s", "ratio");
  for (const Shape& s : shapes) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1, 1);
    std::vector<float> A(static_cast<size_t>(s.m * s.k)), B(static_cast<size_t>(s.k * s.n)), C(static_cast<size_t>(s.m * s.n));
    for (auto& v : A) v = dist(rng);
    for (auto& v : B) v = dist(rng);
    auto pa = s.packed == 1 ? cpu::opt::gemm_pack_a(false, s.m, s.k, A.data(), s.k) : nullptr;
    auto pb = s.packed == 2 ? cpu::opt::gemm_pack_b(false, s.k, s.n, B.data(), s.n) : nullptr;
    const cpu::opt::GemmOperand a{A.data(), s.k, false, pa.get()}, b{B.data(), s.n, false, pb.get()};
    auto ours = [&] { cpu::opt::gemm_f32(s.m, s.n, s.k, a, b, C.data(), s.n, {}, &pool); };
    auto blas = [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(s.m), static_cast<int>(s.n),
                  static_cast<int>(s.k), 1.0f, A.data(), static_cast<int>(s.k), B.data(), static_cast<int>(s.n), 0.0f,
                  C.data(), static_cast<int>(s.n));
    };
    // Small shapes: several calls per sample so that one sample is at least ~2 ms.
    const double flops = 2.0 * s.m * s.n * s.k;
    const int inner = std::max(1, static_cast<int>(2e-3 * 50e9 / flops));
    for (int w = 0; w < 2; ++w) {
      ours();
      blas();
    }
    std::vector<double> t_ours, t_blas;
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < inner; ++i) ours();
      t_ours.push_back(ms_since(t0) / inner);
      t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < inner; ++i) blas();
      t_blas.push_back(ms_since(t0) / inner);
    }
    const double mo = median(t_ours), mb = median(t_blas);
    char dims[64];
    std::snprintf(dims, sizeof(dims), "%ldx%ldx%ld", s.m, s.n, s.k);
    std::printf("%-24s %16s %12.3f %12.3f %14.1f %14.1f %8.2f\n", s.what, dims, mo, mb, flops / mo * 1e-6,
                flops / mb * 1e-6, mo / mb);
  }
  return 0;
}
