// libFuzzer target: a model from bytes through Session::load_from_bytes (parse, checker, shape inference,
// import, optimization, kernel creation), on one thread. Any crash, leak or sanitizer report is a bug
// (what one input does: fuzz_common.hpp).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  orchard::fuzz::load_one(data, size);
  return 0;
}
