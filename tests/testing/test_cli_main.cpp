// The `orchard` tool with the test backends (simdev, simdev16, testcompile) available by name: the conformance suite
// and the real models run through it with a test backend forced on (tests/CMakeLists.txt).
#include "cli.hpp"
#include "testing/test_backends.hpp"

int main(int argc, char** argv) {
  orchard::cli::set_custom_backends({orchard::testing::make_test_backend("testcompile"),
                                     orchard::testing::make_test_backend("simdev"),
                                     orchard::testing::make_test_backend("simdev16")});
  return orchard::cli::run_command(argc, argv);
}
