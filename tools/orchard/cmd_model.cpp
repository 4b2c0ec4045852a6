// orchard run / inspect / bench: one model at a time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <thread>

#include "backends/coreml/onnx_bridge.hpp"
#include "cli.hpp"
#include "core/logging.hpp"
#include "orchard/device_memory.hpp"
#include "orchard/io.hpp"
#include "orchard/manager.hpp"
#include "orchard/trace.hpp"
#include "runtime/backend.hpp"

namespace fs = std::filesystem;

namespace orchard::cli {

namespace {

// The file name (without ".pb") of output `name` in --output-dir: a model's output names are untrusted, so
// characters other than letters, digits, '.', '-' and '_' become '_' (no "/x" or "../x" leaving the folder),
// as does a leading '.'; a name already `taken` gets "_2", "_3", ...
std::string output_file_stem(const std::string& name, std::set<std::string>& taken) {
  std::string stem = name.empty() ? "_" : name;
  for (char& c : stem) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-' || c == '_';
    if (!ok) c = '_';
  }
  if (stem[0] == '.') stem[0] = '_';
  std::string unique = stem;
  for (int k = 2; !taken.insert(unique).second; ++k) unique = stem + "_" + std::to_string(k);
  return unique;
}

constexpr const char* kRunHelp = R"(usage: orchard run MODEL [options]

Runs MODEL once and prints each output's name, dtype, shape and a summary of its values, then the latency.

options:
  --input NAME=FILE   bind input NAME to FILE (.pb TensorProto or .npy); repeatable. Inputs not given
                      are filled with seeded random values
  --dim SYMBOL=N      size of symbolic dim SYMBOL for random inputs (default 1); repeatable
  --output-dir DIR    write each output to DIR/<name>.pb (characters of <name> other than letters, digits,
                      '.', '-', '_' written as '_')
  --profile FILE      write a Chrome trace of the run (partitions, copies and kernels on separate tracks;
                      open in ui.perfetto.dev)
  --threads N         intra-op threads (default: one per core)
  --backend B[,B2]    prefer these backends in this order; the CPU takes the rest
  --no-fallback       fail instead of running any node off the first preferred backend
  --timeout-ms T      deadline of the run: it stops with deadline_exceeded after T ms (default: none)
  --optimization L    none | basic | extended: the graph optimization level (default: the library's)
  --precision P       fp32 (default: as the model says) or fp16: CUDA partitions run float32 work in float16
  --no-cuda-graphs    launch CUDA kernels one by one instead of replaying each partition as a CUDA graph
  --fix-dims          load the model with static shapes: its symbolic input dims fixed to the --dim values
                      (default 1) and its shape arithmetic folded (opset 17); compiling backends such as
                      coreml take only nodes with static shapes
)";

constexpr const char* kInspectHelp = R"(usage: orchard inspect MODEL [--placement] [--memory-plan] [--backend B[,B2]] [--fix-dims] [--dim SYMBOL=N]

Prints the model's inputs and outputs (with symbolic dims), IR version, opsets, a histogram of its
operators (subgraphs included), the number and size of its parameters, and the main graph's node count
after optimization with the rewrites of each optimization step.

options:
  --placement         also print how the model is cut across backends: each partition's backend, node
                      count, op histogram and bytes copied into it per run, and for every node left on a
                      fallback backend the reason each earlier backend gave
  --backend B[,B2]    the backend chain to place the model on (default: the platform's)
  --threads N         intra-op threads (default: one per core)
  --optimization L    none | basic | extended: the graph optimization level (default: the library's)
  --memory-plan       run the model once on seeded random inputs (sizes from --dim); the runtime logs the
                      memory plan it makes (stderr, info level): the arena holding the intermediates, their
                      peak when allocated one by one, how many values the arena holds and how many of
                      them sit in place of a dying input
  --fix-dims          load the model with static shapes, as `orchard run --fix-dims` does
  --dim SYMBOL=N      the size of symbolic dim SYMBOL (default 1); repeatable
)";

constexpr const char* kBenchHelp = R"(usage: orchard bench MODEL [options]

Runs MODEL on seeded random inputs: warm-up runs, then timed runs; prints median, p90 and min latency.
With --concurrency, drives a Manager from N client threads instead (M requests in all) and prints
throughput, latency percentiles and the requests by outcome (ok, rejected, timed out, cancelled, failed).

options:
  --warmup N        untimed runs first (default 3)
  --runs N          timed runs (default 20)
  --threads N       intra-op threads (default: one per core)
  --dim SYMBOL=N    size of symbolic dim SYMBOL (default 1); repeatable
  --backend B[,B2]  prefer these backends in this order; the CPU takes the rest
  --optimization L  none | basic | extended: the graph optimization level (default: the library's)
  --precision P     fp32 (default) or fp16: CUDA partitions run float32 work in float16
  --no-cuda-graphs  launch CUDA kernels one by one instead of replaying each partition as a CUDA graph
  --load-only       create the session, print its creation time and exit (for load time and memory)
  --op-summary      profile the timed runs and print the time per op type and backend, largest first
  --node-summary N  profile the timed runs and print the N slowest nodes (median per node) with their shapes
  --fix-dims        load the model with static shapes: its symbolic input dims fixed to the --dim values
                    (shape arithmetic folded at load, as torch.compile specializes)
  --device-outputs  leave outputs in the memory of the backend that computed them (no download to the host)
  --device-inputs   upload the inputs to the first accelerator of --backend once, before the runs, and feed
                    them from there (as torch's figures start with the inputs on the GPU); without it each run
                    uploads them from the host
Manager mode:
  --concurrency N   client threads submitting requests
  --requests M      requests in all (default 100)
  --slots S         requests running at once (default: one per core)
  --queue-depth Q   requests waiting before rejection (default 64)
  --memory-mb MB    memory budget (default 1024)
  --device-memory-mb MB  cap on each accelerator's device memory (ManagerConfig::device_memory_mb; default none)
  --timeout-ms T    deadline of each request (default: none)
)";

bool parse_dims(const Args& args, std::map<std::string, int64_t>& dims, std::string& error) {
  for (const auto& d : args.all("dim")) {
    const auto eq = d.find('=');
    char* end = nullptr;
    const long long v = eq == std::string::npos ? 0 : std::strtoll(d.c_str() + eq + 1, &end, 10);
    if (eq == std::string::npos || eq == 0 || end == nullptr || *end != '\0' || v < 0) {
      error = "--dim expects SYMBOL=N, got '" + d + "'";
      return false;
    }
    dims[d.substr(0, eq)] = v;
  }
  return true;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

Result<std::unique_ptr<Session>> load_model(const std::string& path, const SessionOptions& options) {
  if (!fs::exists(path)) return not_found("cannot open model file '", path, "'");
  return Session::load(path, options);
}

// --fix-dims: every symbolic input dim fixed (from `dims`, else 1), then the Core ML converter's
// specialization (opset 17, shape inference, Shape/Size and constant subgraphs folded) before loading.
Result<std::unique_ptr<Session>> load_static(const std::string& path, const SessionOptions& options,
                                             std::map<std::string, int64_t> dims) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("cannot open model file '", path, "'");
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ORCHARD_ASSIGN_OR_RETURN(graph::Model model, coreml::import_for_conversion(bytes));
  for (const auto& in : model.graph->inputs) {
    for (const auto& d : in.shape) {
      if (!d.fixed() && !d.symbol.empty()) dims.emplace(d.symbol, 1);
    }
  }
  ORCHARD_ASSIGN_OR_RETURN(std::string fixed, coreml::specialize_onnx(bytes, {}, dims));
  return Session::load_from_bytes(std::as_bytes(std::span(fixed.data(), fixed.size())), options, fs::path(path).parent_path());
}

}  // namespace

int cmd_run(int argc, char** argv) {
  Args args(argc, argv, 2, {"input", "dim", "output-dir", "profile", "threads", "backend", "timeout-ms", "optimization",
                            "precision"},
            {"no-fallback", "fix-dims", "no-cuda-graphs"});
  if (args.help()) {
    std::fputs(kRunHelp, stdout);
    return 0;
  }
  SessionOptions options = session_options(args);
  const std::string profile_path = args.get("profile");
  options.profiling = !profile_path.empty();
  std::map<std::string, int64_t> dims;
  std::string err;
  if (!args.ok()) return usage_error("run", args.error());
  if (!precision_error(args).empty()) return usage_error("run", precision_error(args));
  if (!parse_dims(args, dims, err)) return usage_error("run", err);
  if (args.positionals().size() != 1) return usage_error("run", "expects exactly one MODEL");
  const int64_t timeout_ms = args.get_int("timeout-ms", 0);
  if (!args.ok()) return usage_error("run", args.error());
  if (timeout_ms < 0) return usage_error("run", "--timeout-ms must be >= 0, got " + std::to_string(timeout_ms));
  auto session = args.has("fix-dims") ? load_static(args.positionals()[0], options, dims) : load_model(args.positionals()[0], options);
  if (!session.ok()) {
    std::fprintf(stderr, "orchard run: %s\n", session.status().to_string().c_str());
    return kExitFailure;
  }
  auto inputs = random_inputs(**session, dims, 42);
  std::map<std::string, Value> given;
  for (const auto& spec : args.all("input")) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) return usage_error("run", "--input expects NAME=FILE, got '" + spec + "'");
    const std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
    const auto& ins = (*session)->inputs();
    auto it = std::find_if(ins.begin(), ins.end(), [&](const ValueInfo& i) { return i.name == name; });
    if (it == ins.end()) return usage_error("run", "the model has no input '" + name + "'");
    const bool npy = file.size() > 4 && file.substr(file.size() - 4) == ".npy";
    Result<Value> v = Value();
    if (npy) {
      auto t = load_npy(file);
      v = t.ok() ? Result<Value>(Value(std::move(t).value())) : Result<Value>(t.status());
    } else {
      v = load_value_pb(file, it->kind);
    }
    if (!v.ok()) {
      std::fprintf(stderr, "orchard run: %s\n", v.status().to_string().c_str());
      return kExitFailure;
    }
    given[name] = std::move(v).value();
  }
  NamedValues feed;
  for (const auto& info : (*session)->inputs()) {
    auto it = given.find(info.name);
    if (it != given.end()) {
      feed.emplace_back(info.name, it->second);
      continue;
    }
    if (!inputs.ok()) {
      std::fprintf(stderr, "orchard run: %s\n", inputs.status().to_string().c_str());
      return kExitFailure;
    }
    for (const auto& [n, v] : *inputs) {
      if (n == info.name) feed.emplace_back(n, v);
    }
  }
  std::vector<NodeProfile> profile;
  RunOptions run_options;
  if (options.profiling) run_options.profile = &profile;
  const auto t0 = std::chrono::steady_clock::now();
  if (timeout_ms > 0) run_options.deadline = t0 + std::chrono::milliseconds(timeout_ms);
  auto outputs = (*session)->run(feed, run_options);
  const double ms = ms_since(t0);
  if (!outputs.ok()) {
    std::fprintf(stderr, "orchard run: %s\n", outputs.status().to_string().c_str());
    return kExitFailure;
  }
  const std::string out_dir = args.get("output-dir");
  if (!out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec) {
      std::fprintf(stderr, "orchard run: cannot create output folder '%s': %s\n", out_dir.c_str(), ec.message().c_str());
      return kExitFailure;
    }
  }
  std::set<std::string> files;
  for (const auto& [name, v] : *outputs) {
    std::printf("%-24s %-24s %s\n", name.c_str(), v.description().c_str(), summarize(v).c_str());
    if (!out_dir.empty() && v.is_tensor()) {
      Status st = save_tensor_pb(fs::path(out_dir) / (output_file_stem(name, files) + ".pb"), v.tensor(), name);
      if (!st.ok()) {
        std::fprintf(stderr, "orchard run: %s\n", st.to_string().c_str());
        return kExitFailure;
      }
    }
  }
  std::printf("latency: %.3f ms\n", ms);
  if (!profile_path.empty()) {
    TraceInfo info;
    info.args = {{"model", args.positionals()[0]}};
    Status st = write_chrome_trace(profile_path, profile, info);
    if (!st.ok()) {
      std::fprintf(stderr, "orchard run: %s\n", st.to_string().c_str());
      return kExitFailure;
    }
    std::printf("trace: %s (%zu nodes)\n", profile_path.c_str(), profile.size());
  }
  return 0;
}

namespace {

void print_placement(const Session& s) {
  const PlacementInfo p = s.placement();
  std::printf("placement (%zu partitions", p.partitions.size());
  if (p.moved_nodes) std::printf(", %d cheap nodes moved to their neighbours' backend", p.moved_nodes);
  std::printf("):\n");
  for (size_t i = 0; i < p.partitions.size(); ++i) {
    const PartitionInfo& part = p.partitions[i];
    std::printf("  #%zu %-12s %4zu nodes  copied in: ", i, part.backend.c_str(), part.nodes.size());
    if (part.copied_bytes < 0) {
      std::printf("? (shapes unknown)");
    } else {
      std::printf("%lld B", static_cast<long long>(part.copied_bytes));
    }
    std::printf("\n     ");
    for (const auto& [op, n] : part.op_counts) std::printf(" %s:%d", op.c_str(), n);
    std::printf("\n");
    if (!part.device_units.empty()) {
      std::printf("      operations by compute unit, as the device reports:");
      for (const auto& [unit, n] : part.device_units) std::printf(" %s:%d", unit.c_str(), n);
      std::printf("\n");
    }
  }
  if (!p.fallbacks.empty()) std::printf("nodes off the first backend:\n");
  for (const auto& f : p.fallbacks) {
    std::printf("  %s (%s) -> %s", f.node.c_str(), f.op.c_str(), f.backend.c_str());
    for (const auto& [backend, why] : f.declined) std::printf("; %s: %s", backend.c_str(), why.c_str());
    std::printf("\n");
  }
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  Args args(argc, argv, 2, {"backend", "threads", "optimization", "dim"}, {"placement", "fix-dims", "memory-plan"});
  if (args.help()) {
    std::fputs(kInspectHelp, stdout);
    return 0;
  }
  if (!args.ok()) return usage_error("inspect", args.error());
  if (args.positionals().size() != 1) return usage_error("inspect", "expects exactly one MODEL");
  SessionOptions options = session_options(args);
  if (!args.ok()) return usage_error("inspect", args.error());
  std::map<std::string, int64_t> dims;
  std::string err;
  if (!parse_dims(args, dims, err)) return usage_error("inspect", err);
  auto session = args.has("fix-dims") ? load_static(args.positionals()[0], options, dims) : load_model(args.positionals()[0], options);
  if (!session.ok()) {
    std::fprintf(stderr, "orchard inspect: %s\n", session.status().to_string().c_str());
    return kExitFailure;
  }
  const Session& s = **session;
  const ModelInfo& info = s.model_info();
  std::printf("model: %s\n", args.positionals()[0].c_str());
  std::printf("ir_version: %lld   producer: %s\n", static_cast<long long>(info.ir_version), info.producer.empty() ? "-" : info.producer.c_str());
  std::printf("opsets:");
  for (const auto& [domain, v] : info.opsets) std::printf(" %s=%d", domain.empty() ? "ai.onnx" : domain.c_str(), v);
  std::printf("\ninputs:\n");
  for (const auto& i : s.inputs()) std::printf("  %-32s %s\n", i.name.c_str(), i.description().c_str());
  std::printf("outputs:\n");
  for (const auto& o : s.outputs()) std::printf("  %-32s %s\n", o.name.c_str(), o.description().c_str());
  auto ops = info.op_counts;
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  int total = 0;
  for (const auto& [op, n] : ops) total += n;
  std::printf("operators (%d nodes):\n", total);
  for (const auto& [op, n] : ops) std::printf("  %-28s %d\n", op.c_str(), n);
  std::printf("parameters: %lld (%.2f MiB)\n", static_cast<long long>(info.parameter_count),
              static_cast<double>(info.parameter_bytes) / (1024.0 * 1024.0));
  std::printf("optimized: %lld nodes in the main graph\n", static_cast<long long>(info.optimized_node_count));
  for (const auto& [step, n] : info.optimization_steps) std::printf("  %-28s %d\n", step.c_str(), n);
  if (args.has("placement")) print_placement(s);
  if (args.has("memory-plan")) {
    // The first run of these input shapes makes the plan, which the runtime logs at info level.
    const LogLevel level = log_level();
    if (level > LogLevel::info) set_log_level(LogLevel::info);
    auto inputs = random_inputs(s, dims, 42);
    auto out = inputs.ok() ? s.run(*inputs) : Result<NamedValues>(inputs.status());
    set_log_level(level);
    if (!out.ok()) {
      std::fprintf(stderr, "orchard inspect: %s\n", out.status().to_string().c_str());
      return kExitFailure;
    }
  }
  return 0;
}

namespace {

// orchard bench --concurrency: N client threads, each submitting its share of M requests and waiting
// for each answer before the next (closed loop), against one Manager.
int bench_manager(Args& args, const std::string& model, const SessionOptions& options, const std::map<std::string, int64_t>& dims) {
  ManagerConfig config;
  config.max_concurrent_operations = static_cast<int>(args.get_int("slots", 0));
  config.max_queue_depth = static_cast<int>(args.get_int("queue-depth", 64));
  config.memory_pool_mb = args.get_int("memory-mb", 1024);
  config.device_memory_mb = args.get_int("device-memory-mb", 0);
  config.intra_op_threads = options.intra_op_threads;
  config.backend_chain = options.backend_preference;
  const int64_t clients = args.get_int("concurrency", 1), requests = args.get_int("requests", 100);
  InferenceOptions io;
  io.timeout_ms = args.get_int("timeout-ms", 0);
  if (!args.ok()) return usage_error("bench", args.error());
  if (clients < 1 || requests < 1 || io.timeout_ms < 0) {
    return usage_error("bench", "--concurrency and --requests must be >= 1, --timeout-ms >= 0");
  }
  auto manager = Manager::create(config);
  if (!manager.ok()) return usage_error("bench", manager.status().message());
  auto id = (*manager)->load_model(model);
  if (!id.ok()) {
    std::fprintf(stderr, "orchard bench: %s\n", id.status().to_string().c_str());
    return kExitFailure;
  }
  auto session = (*manager)->session(*id);
  auto inputs = random_inputs(**session, dims, 42);
  if (!inputs.ok()) {
    std::fprintf(stderr, "orchard bench: %s\n", inputs.status().to_string().c_str());
    return kExitFailure;
  }
  std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
  std::map<std::string, int64_t> errors;  // first message of each failure code
  std::mutex mu;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int64_t c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int64_t i = c; i < requests; i += clients) {
        const auto start = std::chrono::steady_clock::now();
        auto r = (*manager)->execute(*id, *inputs, io).result.get();
        if (r.ok()) {
          latencies[static_cast<size_t>(c)].push_back(ms_since(start));
        } else {
          std::lock_guard<std::mutex> lock(mu);
          errors[std::string(status_code_name(r.status().code()))]++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double wall_s = ms_since(t0) / 1e3;
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * static_cast<double>(all.size())))]; };
  const PerformanceSummary s = (*manager)->performance_summary(*id);
  std::printf("model: %s  clients: %lld  requests: %lld  slots: %d  queue depth: %d  memory: %lld MiB\n", model.c_str(),
              static_cast<long long>(clients), static_cast<long long>(requests), config.max_concurrent_operations > 0 ? config.max_concurrent_operations : ThreadPool::default_threads(),
              config.max_queue_depth, static_cast<long long>(config.memory_pool_mb));
  std::printf("throughput %.1f requests/s over %.2f s\n", static_cast<double>(all.size()) / wall_s, wall_s);
  std::printf("latency p50 %.3f ms   p90 %.3f ms   p99 %.3f ms   max %.3f ms\n", pct(0.5), pct(0.9), pct(0.99), all.empty() ? 0.0 : all.back());
  std::printf("outcomes: ok %llu  rejected %llu  timed out %llu  cancelled %llu  failed %llu\n",
              static_cast<unsigned long long>(s.ok), static_cast<unsigned long long>(s.rejected),
              static_cast<unsigned long long>(s.timed_out), static_cast<unsigned long long>(s.cancelled),
              static_cast<unsigned long long>(s.failed));
  for (const auto& [code, n] : errors) std::printf("  %s: %lld\n", code.c_str(), static_cast<long long>(n));
  for (const auto& d : device_memory_budgets()) {
    std::printf("device memory peak %.1f MiB of cap %.1f MiB (%s), %lld allocations refused\n",
                static_cast<double>(d->peak()) / (1024.0 * 1024.0), static_cast<double>(d->limit()) / (1024.0 * 1024.0),
                d->device().c_str(), static_cast<long long>(d->refused()));
  }
  return s.failed ? kExitFailure : 0;
}

}  // namespace

// Prints kernel and copy time per (op type, backend) over the profiled runs: per run, share, node count.
void print_op_summary(const std::vector<NodeProfile>& profile, int64_t runs) {
  struct Row {
    int64_t ns = 0, calls = 0;
  };
  std::map<std::pair<std::string, std::string>, Row> rows;
  int64_t total = 0;
  for (const NodeProfile& p : profile) {
    if (p.category != "kernel" && p.category != "copy") continue;  // partitions hold kernels: not counted twice
    Row& r = rows[{p.op, p.backend}];
    r.ns += p.duration_ns;
    ++r.calls;
    total += p.duration_ns;
  }
  std::vector<std::pair<std::pair<std::string, std::string>, Row>> sorted(rows.begin(), rows.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.ns > b.second.ns; });
  std::printf("\n%-28s %-8s %7s %10s %7s\n", "op", "backend", "nodes", "ms/run", "share");
  for (const auto& [key, r] : sorted) {
    std::printf("%-28s %-8s %7lld %10.3f %6.1f%%\n", key.first.c_str(), key.second.c_str(),
                static_cast<long long>(r.calls / runs), static_cast<double>(r.ns) / 1e6 / static_cast<double>(runs),
                total ? 100.0 * static_cast<double>(r.ns) / static_cast<double>(total) : 0.0);
  }
  std::printf("%-28s %-8s %7s %10.3f\n", "all kernels and copies", "", "", static_cast<double>(total) / 1e6 / static_cast<double>(runs));
}

// Prints the `count` slowest nodes (kernels and copies): median time over the profiled runs, op, backend, input
// shapes; for comparing one node with a peer's profile of the same model.
void print_node_summary(const std::vector<NodeProfile>& profile, int64_t count) {
  struct Row {
    std::vector<int64_t> ns;
    const NodeProfile* first = nullptr;
  };
  std::map<std::string, Row> rows;
  for (const NodeProfile& p : profile) {
    if (p.category != "kernel" && p.category != "copy") continue;
    Row& r = rows[p.category + ":" + p.name];
    r.ns.push_back(p.duration_ns);
    if (r.first == nullptr) r.first = &p;
  }
  std::vector<std::pair<int64_t, const Row*>> sorted;
  for (auto& [name, r] : rows) {
    std::sort(r.ns.begin(), r.ns.end());
    sorted.emplace_back(r.ns[r.ns.size() / 2], &r);
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::printf("\n%10s  %-18s %-8s %-52s %s\n", "median ms", "op", "backend", "input shapes", "node");
  for (size_t i = 0; i < sorted.size() && static_cast<int64_t>(i) < count; ++i) {
    const NodeProfile& p = *sorted[i].second->first;
    std::string shapes;
    for (const Shape& s : p.input_shapes) {
      if (!shapes.empty()) shapes += ' ';
      shapes.append(s.to_string());
    }
    std::printf("%10.3f  %-18s %-8s %-52s %s\n", static_cast<double>(sorted[i].first) / 1e6, p.op.c_str(),
                p.backend.c_str(), shapes.c_str(), p.name.c_str());
  }
}

namespace {

// Copies the tensors of `inputs` into the memory of the first backend of the chain `options` names whose memory is
// not the host's (in `device`, which keeps that memory alive), as `out`; failed_precondition when there is none.
Status upload_inputs(const NamedValues& inputs, const SessionOptions& options, std::shared_ptr<runtime::Backend>& device,
                     NamedValues& out) {
  for (auto& b : runtime::available_backends(options)) {
    const bool named = std::find(options.backend_preference.begin(), options.backend_preference.end(),
                                 b->device().name) != options.backend_preference.end();
    if (named && !b->allocator().place().host_visible()) {
      device = b;
      break;
    }
  }
  if (!device) return unavailable("no accelerator with its own memory among the --backend chain");
  for (const auto& [name, v] : inputs) {
    if (!v.is_tensor()) {
      out.emplace_back(name, v);
      continue;
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor t, Tensor::create(v.tensor().dtype(), v.tensor().shape(), device->allocator()));
    ORCHARD_RETURN_IF_ERROR(device->transfer().copy(v.tensor(), t, nullptr));
    out.emplace_back(name, Value(std::move(t)));
  }
  return Status::OK();
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  Args args(argc, argv, 2, {"warmup", "runs", "threads", "dim", "backend", "optimization", "concurrency", "requests", "slots",
                            "queue-depth", "memory-mb", "timeout-ms", "precision", "device-memory-mb", "node-summary"},
            {"load-only", "op-summary", "no-cuda-graphs", "fix-dims", "device-outputs", "device-inputs"});
  if (args.help()) {
    std::fputs(kBenchHelp, stdout);
    return 0;
  }
  SessionOptions options = session_options(args);
  const int64_t warmup = args.get_int("warmup", 3), runs = args.get_int("runs", 20);
  std::map<std::string, int64_t> dims;
  std::string err;
  if (!args.ok()) return usage_error("bench", args.error());
  if (!parse_dims(args, dims, err)) return usage_error("bench", err);
  if (!precision_error(args).empty()) return usage_error("bench", precision_error(args));
  if (args.has("precision") && args.has("concurrency")) return usage_error("bench", "--precision is not taken in Manager mode");
  if (args.positionals().size() != 1) return usage_error("bench", "expects exactly one MODEL");
  if (warmup < 0 || runs < 1) return usage_error("bench", "--warmup must be >= 0 and --runs >= 1");
  if (args.has("concurrency")) return bench_manager(args, args.positionals()[0], options, dims);
  const bool op_summary = args.has("op-summary"), node_summary = args.has("node-summary");
  options.profiling = op_summary || node_summary;
  const auto load_start = std::chrono::steady_clock::now();
  auto session = args.has("fix-dims") ? load_static(args.positionals()[0], options, dims) : load_model(args.positionals()[0], options);
  if (!session.ok()) {
    std::fprintf(stderr, "orchard bench: %s\n", session.status().to_string().c_str());
    return kExitFailure;
  }
  std::printf("session created in %.1f ms\n", ms_since(load_start));
  if (args.has("load-only")) return 0;
  auto inputs = random_inputs(**session, dims, 42);
  if (!inputs.ok()) {
    std::fprintf(stderr, "orchard bench: %s\n", inputs.status().to_string().c_str());
    return kExitFailure;
  }
  // --device-inputs: the inputs copied once into an accelerator's memory (the backend object owns the allocator, so
  // it outlives the copies); the session reads them there, as it reads its own device tensors.
  std::shared_ptr<runtime::Backend> device;
  NamedValues on_device;
  if (args.has("device-inputs")) {
    auto uploaded = upload_inputs(*inputs, options, device, on_device);
    if (!uploaded.ok()) {
      std::fprintf(stderr, "orchard bench: --device-inputs: %s\n", uploaded.to_string().c_str());
      return kExitFailure;
    }
  }
  const NamedValues& feeds = device ? on_device : *inputs;
  std::vector<double> times;
  std::vector<NodeProfile> profile;
  for (int64_t i = 0; i < warmup + runs; ++i) {
    RunOptions run_options;
    run_options.device_outputs = args.has("device-outputs");
    if (options.profiling && i >= warmup) run_options.profile = &profile;
    const auto t0 = std::chrono::steady_clock::now();
    auto out = (*session)->run(feeds, run_options);
    const double ms = ms_since(t0);
    if (!out.ok()) {
      std::fprintf(stderr, "orchard bench: %s\n", out.status().to_string().c_str());
      return kExitFailure;
    }
    if (i >= warmup) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  auto pct = [&](double p) { return times[std::min(times.size() - 1, static_cast<size_t>(p * static_cast<double>(times.size())))]; };
  std::printf("model: %s  threads: %d  runs: %lld\n", args.positionals()[0].c_str(),
              options.intra_op_threads > 0 ? options.intra_op_threads : ThreadPool::default_threads(), static_cast<long long>(runs));
  std::printf("median %.3f ms   p90 %.3f ms   min %.3f ms\n", pct(0.5), pct(0.9), times.front());
  // Bytes charged to each device at once (weights, activations, graph buffers), load and every run included.
  for (const auto& d : device_memory_budgets()) {
    std::printf("device memory peak %.1f MiB (%s)\n", static_cast<double>(d->peak()) / (1024.0 * 1024.0), d->device().c_str());
  }
  if (op_summary) print_op_summary(profile, runs);
  if (node_summary) print_node_summary(profile, args.get_int("node-summary", 20));
  return 0;
}

}  // namespace orchard::cli
