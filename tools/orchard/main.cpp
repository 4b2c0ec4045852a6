// orchard: run, check, inspect and benchmark ONNX models.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli.hpp"

namespace {

constexpr const char* kUsage = R"(usage: orchard <command> [options]

commands:
  check DIR...     run ONNX backend-test folders (model.onnx + test_data_set_N) and compare outputs
  run MODEL        run a model once on given or random inputs; print outputs and latency
  inspect MODEL    show inputs, outputs, opsets, op histogram and parameter count
  bench MODEL      time repeated runs: median, p90, min
  serve MODEL|--model-repository DIR   KServe v2 inference server (docs/serving.md)
  convert MODEL OUT.mlpackage   convert to a Core ML ML Program package; report what was converted

'orchard <command> --help' describes each command's options.
)";

}  // namespace

int orchard::cli::run_command(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? orchard::cli::kExitUsage : 0;
  }
  const std::string cmd = argv[1];
  if (cmd == "check") return orchard::cli::cmd_check(argc, argv);
  if (cmd == "run") return orchard::cli::cmd_run(argc, argv);
  if (cmd == "inspect") return orchard::cli::cmd_inspect(argc, argv);
  if (cmd == "bench") return orchard::cli::cmd_bench(argc, argv);
  if (cmd == "serve") return orchard::cli::cmd_serve(argc, argv);
  if (cmd == "convert") return orchard::cli::cmd_convert(argc, argv);
  std::fprintf(stderr, "orchard: unknown command '%s' (try 'orchard --help')\n", cmd.c_str());
  return orchard::cli::kExitUsage;
}
