// Shared pieces of the `orchard` command-line tool.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "orchard/orchard.hpp"

namespace orchard::cli {

// Exit codes: 0 success, 1 the work failed (test mismatch, model error), 2 bad command-line arguments.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Minimal argument parser: "--flag value", "--flag=value", boolean "--flag", positionals.
class Args {
 public:
  // `value_flags` take a value; `bool_flags` do not. Unknown flags are an error.
  Args(int argc, char** argv, int first, std::vector<std::string> value_flags, std::vector<std::string> bool_flags);
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool has(const std::string& flag) const { return values_.count(flag) > 0; }
  std::string get(const std::string& flag, const std::string& fallback = "") const;
  std::vector<std::string> all(const std::string& flag) const;
  // Parses an integer flag; records an error (and returns fallback) when it is not one.
  int64_t get_int(const std::string& flag, int64_t fallback);
  double get_double(const std::string& flag, double fallback);
  // Returns the flag's value when it is one of `choices`; records an error (and returns fallback) otherwise.
  std::string get_choice(const std::string& flag, const std::vector<std::string>& choices, const std::string& fallback);
  const std::vector<std::string>& positionals() const { return positionals_; }
  bool help() const { return help_; }

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positionals_;
  std::string error_;
  bool help_ = false;
};

// Prints "orchard <cmd>: <message>" to stderr and returns kExitUsage.
int usage_error(const std::string& cmd, const std::string& message);

// Session options from the common flags --threads, --backend (a comma-separated preference),
// --no-fallback, --optimization (none|basic|extended) and --precision, with the custom backends below.
SessionOptions session_options(Args& args);
// Returns why --precision is invalid (it takes fp32 or fp16), or "" when it is absent or valid.
std::string precision_error(Args& args);
// Makes `backends` available to every session the tool loads (the test build of the tool adds the
// test backends this way; the shipped tool has none).
void set_custom_backends(std::vector<std::shared_ptr<runtime::Backend>> backends);

// Runs the command line (argv[1] names the command); returns the exit code.
int run_command(int argc, char** argv);

// Random inputs for every model input (symbolic dims from `dims`, else 1). Seeded, so runs repeat.
Result<NamedValues> random_inputs(const Session& session, const std::map<std::string, int64_t>& dims, uint32_t seed);

// Returns a one-line summary of a value's elements: "min -1.2 max 3.4 mean 0.1" or the first strings.
std::string summarize(const Value& v);

int cmd_check(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_serve(int argc, char** argv);
int cmd_convert(int argc, char** argv);  // tools/orchard/cmd_convert.cpp (Core ML)

}  // namespace orchard::cli
