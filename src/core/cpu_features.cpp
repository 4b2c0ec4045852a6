#include "core/cpu_features.hpp"

#include <cstdlib>
#include <sstream>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace orchard {

namespace {

struct FeatureName {
  uint32_t bit;
  const char* name;
};
constexpr FeatureName kNames[] = {{kCpuAvx2, "avx2"}, {kCpuAvx512, "avx512"}, {kCpuNeon, "neon"}, {kCpuNeonFp16, "neonfp16"}};

uint32_t detect() {
  uint32_t f = 0;
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
    unsigned xlo = 0, xhi = 0;
    if (osxsave) __asm__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    const bool ymm_state = (xlo & 0x6) == 0x6, zmm_state = (xlo & 0xe6) == 0xe6;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
      const bool avx2 = b & (1u << 5);
      if (avx && avx2 && fma && ymm_state) f |= kCpuAvx2;
      const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));
      if ((f & kCpuAvx2) && avx512 && zmm_state) f |= kCpuAvx512;
    }
  }
#elif defined(__aarch64__)
  f |= kCpuNeon;
#if defined(__linux__) && defined(HWCAP_ASIMDHP)
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDHP) f |= kCpuNeonFp16;
#elif defined(__APPLE__)
  f |= kCpuNeonFp16;  // every Apple Silicon core has FEAT_FP16
#endif
#endif
  return f;
}

uint32_t parse_limit(const char* text) {
  uint32_t mask = 0;
  std::string spaced(text);
  for (char& c : spaced) c = c == ',' ? ' ' : c;
  std::istringstream in(spaced);
  std::string word;
  while (in >> word) {
    for (const auto& n : kNames) {
      if (word == n.name) mask |= n.bit;
    }
  }
  return mask;
}

}  // namespace

uint32_t cpu_features() {
  static const uint32_t features = [] {
    uint32_t f = detect();
    if (const char* limit = std::getenv("ORCHARD_CPU_FEATURES")) f &= parse_limit(limit);
    return f;
  }();
  return features;
}

std::string cpu_features_string(uint32_t mask) {
  std::string s;
  for (const auto& n : kNames) {
    if (!(mask & n.bit)) continue;
    if (!s.empty()) s += ' ';
    s += n.name;
  }
  return s.empty() ? "none" : s;
}

}  // namespace orchard
