// libFuzzer target: orchard::load_value_pb on fuzzed bytes. The first byte picks the kind of value
// (tensor, sequence, optional); the rest is the file.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"
#include "orchard/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static orchard::fuzz::MemFile file;
  if (size == 0) return 0;
  constexpr orchard::Value::Kind kKinds[] = {orchard::Value::Kind::tensor, orchard::Value::Kind::sequence,
                                             orchard::Value::Kind::optional};
  file.write(data + 1, size - 1);
  std::string name;
  auto v = orchard::load_value_pb(file.path(), kKinds[data[0] % 3], &name);
  (void)v;
  return 0;
}
