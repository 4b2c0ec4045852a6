// CPU features that select kernel variants, detected once per process.
#pragma once

#include <cstdint>
#include <string>

namespace orchard {

// Bits of a feature mask (KernelDef::cpu_features names the ones a variant needs).
enum CpuFeature : uint32_t {
  kCpuAvx2 = 1u << 0,     // x86-64 AVX2 + FMA3
  kCpuAvx512 = 1u << 1,   // x86-64 AVX-512 F, BW, DQ, VL
  kCpuNeon = 1u << 2,     // aarch64 Advanced SIMD (always present there)
  kCpuNeonFp16 = 1u << 3  // aarch64 half-precision arithmetic (FEAT_FP16)
};

// Returns the features of the CPU this process runs on (detected once). The environment variable
// ORCHARD_CPU_FEATURES, when set, limits them to the named ones ("avx2", "none", ...) so tests and
// benchmarks can run the variants of older machines.
uint32_t cpu_features();

// Returns e.g. "avx2 avx512" ("none" for an empty mask).
std::string cpu_features_string(uint32_t mask);

}  // namespace orchard
