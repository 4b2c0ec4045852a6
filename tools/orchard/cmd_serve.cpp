// orchard serve: the KServe v2 server (REST) over one model or a Triton-style model repository.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli.hpp"
#include "server/grpc_server.hpp"
#include "server/http_server.hpp"
#include "server/repository.hpp"

namespace fs = std::filesystem;

namespace orchard::cli {
namespace {

constexpr const char* kHelp = R"(usage: orchard serve [options] [MODEL.onnx]
       orchard serve [options] --model-repository DIR

Serves KServe v2 (Open Inference Protocol) over HTTP/REST; see docs/serving.md. One model (named after
the file's stem, version 1) or a repository laid out as DIR/<model>/<version>/model.onnx with an optional
DIR/<model>/config.json. SIGINT/SIGTERM: stop accepting, finish in-flight requests (up to
--drain-timeout-s), exit 0.

options:
  --model-repository DIR  serve every model folder of DIR
  --poll-secs S           rescan DIR every S seconds and load new versions (default 0: no polling)
  --host H                address to bind (default 127.0.0.1; 0.0.0.0 opens it to the network)
  --port P                HTTP port (default 8000; 0 picks a free one)
  --grpc-port P           gRPC port (default 8001; 0 picks a free one)
  --no-grpc               serve REST only
  --port-file PATH        write the bound HTTP and gRPC ports (two lines) to PATH once serving
  --http-threads N        I/O threads, each with its own event loop (default 2)
  --max-body-mb N         request body cap (default 64; larger: 413)
  --max-connections N     open connection cap (default 4096)
  --idle-timeout-s S      close connections idle this long (default 60)
  --drain-timeout-s S     how long SIGTERM waits for in-flight requests (default 30)
  --access-log            log one line per request (level info; set ORCHARD_LOG_LEVEL=info)
  --memory-mb N           the Manager's memory budget (default 1024)
  --max-concurrent N      requests running at once (default: one per core)
  --max-queue N           requests waiting for a slot (default 64; beyond it 429)
  --max-batch-size N      single-model mode: batch up to N rows dynamically (default 0: off)
  --batch-delay-us U      single-model mode: max queue delay of a partial batch (default 0)
  --inline-execution      single-model mode: run a request on its I/O thread when a slot is free (for
                          models of microseconds: no worker hand-off; the thread serves nobody else meanwhile)
  --threads N             intra-op threads (default: one per core)
)";

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

}  // namespace

int cmd_serve(int argc, char** argv) {
  Args args(argc, argv, 2,
            {"model-repository", "poll-secs", "host", "port", "port-file", "http-threads", "max-body-mb",
             "max-connections", "idle-timeout-s", "drain-timeout-s", "memory-mb", "max-concurrent", "max-queue",
             "max-batch-size", "batch-delay-us", "threads", "grpc-port"},
            {"access-log", "no-grpc", "inline-execution"});
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.ok()) return usage_error("serve", args.error());
  const std::string repo_dir = args.get("model-repository");
  if (repo_dir.empty() == args.positionals().empty() || args.positionals().size() > 1)
    return usage_error("serve", "give one MODEL.onnx or --model-repository DIR");

  ManagerConfig mc;
  mc.memory_pool_mb = args.get_int("memory-mb", 1024);
  mc.max_concurrent_operations = static_cast<int>(args.get_int("max-concurrent", 0));
  mc.max_queue_depth = static_cast<int>(args.get_int("max-queue", 64));
  mc.intra_op_threads = static_cast<int>(args.get_int("threads", 0));
  server::HttpOptions ho;
  ho.host = args.get("host", "127.0.0.1");
  const int64_t port = args.get_int("port", 8000);
  const int64_t grpc_port = args.get_int("grpc-port", 8001);
  ho.threads = static_cast<int>(args.get_int("http-threads", 2));
  ho.max_body_bytes = static_cast<uint64_t>(args.get_int("max-body-mb", 64)) << 20;
  ho.max_connections = static_cast<int>(args.get_int("max-connections", 4096));
  ho.idle_timeout = std::chrono::seconds(args.get_int("idle-timeout-s", 60));
  ho.access_log = args.has("access-log");
  const int64_t drain_s = args.get_int("drain-timeout-s", 30);
  const int64_t poll_s = args.get_int("poll-secs", 0);
  server::ModelConfig single;
  single.max_batch_size = args.get_int("max-batch-size", 0);
  single.max_queue_delay_us = args.get_int("batch-delay-us", 0);
  single.dynamic_batching = single.max_batch_size > 0;
  single.inline_execution = args.has("inline-execution");
  if (!args.ok()) return usage_error("serve", args.error());
  if (port < 0 || port > 65535) return usage_error("serve", "--port " + std::to_string(port) + " out of range");
  if (grpc_port < 0 || grpc_port > 65535)
    return usage_error("serve", "--grpc-port " + std::to_string(grpc_port) + " out of range");
  ho.port = static_cast<uint16_t>(port);

  auto manager = Manager::create(mc);
  if (!manager.ok()) {
    std::fprintf(stderr, "orchard serve: %s\n", manager.status().to_string().c_str());
    return kExitFailure;
  }
  server::ModelRepository repository(**manager, repo_dir);
  Status loaded;
  if (repo_dir.empty()) {
    const fs::path model = args.positionals()[0];
    loaded = repository.add_file(model.stem().string(), model, single);
  } else {
    loaded = repository.load_all();
  }
  // A model that fails to load is reported and shown in the index; the others serve.
  if (!loaded.ok()) std::fprintf(stderr, "orchard serve: %s\n", loaded.to_string().c_str());
  if (repo_dir.empty() && !loaded.ok()) return kExitFailure;

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  auto http = server::HttpServer::start(ho, **manager, repository);
  if (!http.ok()) {
    std::fprintf(stderr, "orchard serve: %s\n", http.status().to_string().c_str());
    return kExitFailure;
  }
  std::unique_ptr<server::GrpcServer> grpc;
  if (!args.has("no-grpc")) {
    server::GrpcOptions go;
    go.host = ho.host;
    go.port = static_cast<uint16_t>(grpc_port);
    go.max_message_bytes = static_cast<int64_t>(ho.max_body_bytes);
    server::HttpServer* h = http->get();
    auto g = server::GrpcServer::start(go, **manager, repository, [h] { return h->ready(); });
    if (!g.ok()) {
      std::fprintf(stderr, "orchard serve: %s\n", g.status().to_string().c_str());
      return kExitFailure;
    }
    grpc = std::move(g).value();
  }
  std::fprintf(stderr, "orchard serve: listening on http://%s:%u", ho.host.c_str(), (*http)->port());
  if (grpc) std::fprintf(stderr, " and grpc %s:%u", ho.host.c_str(), grpc->port());
  std::fputc('\n', stderr);
  if (args.has("port-file")) {
    const std::string tmp = args.get("port-file") + ".tmp";
    std::ofstream(tmp) << (*http)->port() << "\n" << (grpc ? grpc->port() : 0) << "\n";
    fs::rename(tmp, args.get("port-file"));
  }
  auto next_poll = std::chrono::steady_clock::now() + std::chrono::seconds(poll_s);
  while (!g_stop) {
    const timespec tick{0, 50 * 1000 * 1000};
    nanosleep(&tick, nullptr);
    if (poll_s > 0 && std::chrono::steady_clock::now() >= next_poll) {
      repository.poll();
      next_poll = std::chrono::steady_clock::now() + std::chrono::seconds(poll_s);
    }
  }
  std::fprintf(stderr, "orchard serve: draining (up to %llds)\n", static_cast<long long>(drain_s));
  // Both front ends stop accepting at once; each waits for its own in-flight requests.
  std::thread grpc_drain([&] {
    if (grpc) grpc->drain(std::chrono::seconds(drain_s));
  });
  const int64_t left = (*http)->drain(std::chrono::seconds(drain_s));
  grpc_drain.join();
  grpc.reset();
  if (left > 0)
    std::fprintf(stderr, "orchard serve: %lld requests still running at the drain deadline\n",
                 static_cast<long long>(left));
  http.value().reset();
  std::fprintf(stderr, "orchard serve: stopped\n");
  return 0;
}

}  // namespace orchard::cli
