// The `orchard` tool's entry point (the test build of the tool has its own; see tests/CMakeLists.txt).
#include "cli.hpp"

int main(int argc, char** argv) { return orchard::cli::run_command(argc, argv); }
