// libFuzzer target: orchard::load_npy on fuzzed bytes.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"
#include "orchard/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static orchard::fuzz::MemFile file;
  file.write(data, size);
  auto t = orchard::load_npy(file.path());
  (void)t;
  return 0;
}
