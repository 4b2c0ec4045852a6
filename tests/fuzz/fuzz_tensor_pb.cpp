// libFuzzer target: orchard::load_value_pb on fuzzed bytes (the first byte picks the kind of value). Any crash, leak or sanitizer report is a bug
// (what one input does: fuzz_common.hpp).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  orchard::fuzz::tensor_pb_one(data, size);
  return 0;
}
