// libFuzzer target: a model from bytes through Session::load_from_bytes (parse, checker, shape inference,
// import, optimization, kernel creation), on one thread. Any crash, leak or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const orchard::SessionOptions options = orchard::fuzz::session_options();
  auto session = orchard::Session::load_from_bytes({reinterpret_cast<const std::byte*>(data), size}, options,
                                                   orchard::fuzz::no_such_folder());
  (void)session;
  return 0;
}
