// Replays every input that once crashed a fuzz target (tests/fuzz/regressions/<target>/), through the same
// code the target runs (tests/fuzz/fuzz_common.hpp). In every build, sanitizers included, each must now
// end normally; the tests next to it (Hardening.*) check the errors they give.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.hpp"

namespace orchard {
namespace {

namespace fs = std::filesystem;

const fs::path kRegressions = ORCHARD_FUZZ_REGRESSIONS_DIR;

// Returns the inputs of `target`, sorted by name.
std::vector<fs::path> inputs_of(const std::string& target) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kRegressions / target, ec)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void replay(const std::string& target, void (*one)(const uint8_t*, size_t)) {
  for (const fs::path& p : inputs_of(target)) {
    SCOPED_TRACE(p.string());
    std::ifstream in(p, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    one(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
}

TEST(FuzzRegressions, LoadInputsEndNormally) {
  EXPECT_FALSE(inputs_of("fuzz_load").empty()) << "no inputs under " << kRegressions.string();
  replay("fuzz_load", fuzz::load_one);
}
TEST(FuzzRegressions, RunInputsEndNormally) { replay("fuzz_run", fuzz::run_one); }
TEST(FuzzRegressions, TensorPbInputsEndNormally) { replay("fuzz_tensor_pb", fuzz::tensor_pb_one); }
TEST(FuzzRegressions, NpyInputsEndNormally) { replay("fuzz_npy", fuzz::npy_one); }

}  // namespace
}  // namespace orchard
