// libFuzzer target: load a fuzzed model, then run it once on small inputs (dims <= 4) with a 200 ms
// deadline and 64 MiB of tensor memory, so kernels meet fuzzed attributes and shapes. Any crash, leak or sanitizer report is a bug
// (what one input does: fuzz_common.hpp).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  orchard::fuzz::run_one(data, size);
  return 0;
}
