#include "server/http_server.hpp"

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>  // before Asio: GCC 12 + C++20 needs it first (chriskohlhoff/asio#944)
#include <vector>

#include "core/logging.hpp"
#include "server/admin_queue.hpp"
#include "server/infer_codec.hpp"
#include "server/rest_handler.hpp"
#include "telemetry/metrics.hpp"

namespace orchard::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

enum class Reject : unsigned char {
  body_too_large,
  header_too_large,
  url_too_long,
  connection_limit,
  idle_timeout,
  bad_request,
  not_found,
  method_not_allowed,
  invalid_name,
  draining,
  client_closed,
  count_
};
constexpr std::array<const char*, static_cast<size_t>(Reject::count_)> kRejectNames = {
    "body_too_large", "header_too_large",   "url_too_long", "connection_limit", "idle_timeout", "bad_request",
    "not_found",      "method_not_allowed", "invalid_name", "draining",         "client_closed"};

Reject reject_from_label(std::string_view label) {
  for (size_t i = 0; i < kRejectNames.size(); ++i)
    if (label == kRejectNames[i]) return static_cast<Reject>(i);
  return Reject::bad_request;
}

template <class T>
std::shared_ptr<T> must(Result<std::shared_ptr<T>> r) {  // fixed, valid names: registration cannot fail
  return r.ok() ? std::move(r).value() : nullptr;
}

constexpr size_t kEndpoints = static_cast<size_t>(Endpoint::count_);

struct ServerMetrics {
  telemetry::MetricsRegistry registry;
  std::array<std::array<std::shared_ptr<telemetry::Counter>, 3>, kEndpoints> requests;  // 2xx, 4xx, 5xx
  std::array<std::shared_ptr<telemetry::Histogram>, kEndpoints> duration;
  std::array<std::shared_ptr<telemetry::Counter>, kRejectNames.size()> rejections;
  std::shared_ptr<telemetry::Gauge> connections;

  ServerMetrics() {
    const auto bounds = telemetry::latency_buckets_seconds();
    for (size_t e = 0; e < kEndpoints; ++e) {
      const std::string ep(endpoint_name(static_cast<Endpoint>(e)));
      const char* classes[] = {"2xx", "4xx", "5xx"};
      for (int c = 0; c < 3; ++c)
        requests[e][c] =
            must(registry.counter("orchard_server_requests", "HTTP requests answered, by endpoint and status class",
                                  {{"endpoint", ep}, {"code", classes[c]}}));
      duration[e] = must(registry.histogram("orchard_server_request_duration_seconds",
                                            "Time from request read to reply written", bounds, {{"endpoint", ep}}));
    }
    for (size_t r = 0; r < kRejectNames.size(); ++r)
      rejections[r] = must(registry.counter("orchard_server_rejections", "Requests or connections refused, by reason",
                                            {{"reason", kRejectNames[r]}}));
    connections = must(registry.gauge("orchard_server_open_connections", "HTTP connections open now"));
  }
  void reject(Reject r) { rejections[static_cast<size_t>(r)]->inc(); }
};

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  Manager& manager;
  ModelRepository& repository;
  ServerMetrics metrics;
  std::unique_ptr<RestHandler> handler;

  std::vector<std::unique_ptr<net::io_context>> contexts;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  // Keep each run() going while requests wait in the Manager with no socket operation pending.
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  uint16_t port = 0;

  std::atomic<bool> draining{false};
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> inflight{0};
  std::atomic<uint64_t> next_request{1};

  std::unique_ptr<AdminQueue> admin = std::make_unique<AdminQueue>();  // model load/unload

  Impl(const HttpOptions& o, Manager& m, ModelRepository& r) : options(o), manager(m), repository(r) {}

  std::string metrics_text() const {
    return metrics.registry.prometheus_text() + manager.metrics_text() +
           repository.batching_metrics()->prometheus_text();
  }

  bool ready() const { return !draining.load() && repository.all_ready(); }
  void accept(size_t i);
  void stop_accepting() {
    for (size_t i = 0; i < acceptors.size(); ++i)
      net::post(*contexts[i], [a = acceptors[i].get()] {
        beast::error_code ec;
        a->close(ec);
      });
  }
  void wait_inflight(Clock::time_point until) {
    while (inflight.load() > 0 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
};

namespace {

constexpr size_t kReadReserve = 8 * 1024;
// A connection keeps its request body and response buffers between requests up to this capacity; a larger
// one (a big tensor) is freed after its request, so idle connections do not hold large buffers.
constexpr size_t kKeptBufferBytes = 64 * 1024;

void append_decimal(std::string& out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

// Writes the response head for `r` with a body of `body_bytes` to `out`, as Beast would serialize it:
// status line, Server, Content-Type, Inference-Header-Content-Length, Connection: close, Content-Length.
void append_response_head(std::string& out, const HttpReply& r, bool keep_alive, size_t body_bytes) {
  out += "HTTP/1.1 ";
  append_decimal(out, r.status);
  out += ' ';
  const auto reason = http::obsolete_reason(static_cast<http::status>(r.status));
  out.append(reason.data(), reason.size());
  out += "\r\nServer: orchard\r\nContent-Type: ";
  out += r.content_type;
  if (r.json_length) {
    out += "\r\nInference-Header-Content-Length: ";
    append_decimal(out, *r.json_length);
  }
  if (!keep_alive) out += "\r\nConnection: close";
  out += "\r\nContent-Length: ";
  append_decimal(out, body_bytes);
  out += "\r\n\r\n";
}

namespace {

// One connection: reads a request, answers it, reads the next (requests are answered in order). The parser's
// body string and the response buffer are kept across requests, so a keep-alive connection does not allocate
// them per request.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, net::io_context& context, HttpServer::Impl& server)
      : stream_(std::move(socket)), context_(context), srv_(server) {
    srv_.metrics.connections->inc();
    // Room for a whole typical request: Beast reads into the buffer's free capacity, at least 512 bytes, so
    // without it a request of a few hundred bytes of headers plus a JSON body took two receive calls.
    buffer_.reserve(kReadReserve);
  }
  ~Connection() {
    srv_.connections.fetch_sub(1);
    srv_.metrics.connections->dec();
  }

  void start() { read(); }

 private:
  void read() {
    std::string body;
    if (parser_) body = std::move(parser_->get().body());
    body.clear();
    if (body.capacity() > kKeptBufferBytes) body.shrink_to_fit();
    parser_.emplace();
    parser_->get().body() = std::move(body);  // Beast's string body appends: its capacity is reused
    parser_->header_limit(srv_.options.max_header_bytes);
    parser_->body_limit(srv_.options.max_body_bytes);
    stream_.expires_after(srv_.options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Connection::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted)
      return close();
    if (ec == beast::error::timeout) {
      srv_.metrics.reject(Reject::idle_timeout);
      return close();
    }
    if (ec == http::error::partial_message) {  // the client went away mid-request: nobody to answer
      srv_.metrics.reject(Reject::client_closed);
      return close();
    }
    begin_ = Clock::now();
    endpoint_ = Endpoint::count_;
    srv_.inflight.fetch_add(1);
    if (ec == http::error::body_limit)
      return fail(
          413, Reject::body_too_large,
          "[server] request body exceeds the limit of " + std::to_string(srv_.options.max_body_bytes) + " bytes");
    if (ec == http::error::header_limit)
      return fail(
          431, Reject::header_too_large,
          "[server] request headers exceed the limit of " + std::to_string(srv_.options.max_header_bytes) + " bytes");
    if (ec) return fail(400, Reject::bad_request, "[server] malformed HTTP request: " + ec.message());

    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    const std::string_view target(req.target().data(), req.target().size());
    if (target.size() > srv_.options.max_url_bytes)
      return fail(414, Reject::url_too_long,
                  "[server] request target of " + std::to_string(target.size()) + " bytes exceeds the limit of " +
                      std::to_string(srv_.options.max_url_bytes));
    auto routed = parse_route(std::string_view(req.method_string().data(), req.method_string().size()), target);
    if (auto* e = std::get_if<HttpError>(&routed)) {
      srv_.metrics.reject(reject_from_label(e->reason));
      return reply(json_reply(e->status, error_body(e->message)));
    }
    const Route& route = std::get<Route>(routed);
    endpoint_ = route.endpoint;
    std::optional<size_t> json_length;
    if (auto it = req.find("Inference-Header-Content-Length"); it != req.end()) {
      const std::string_view v(it->value().data(), it->value().size());
      json_length = parse_byte_count(v);
      if (!json_length)
        return reply(json_reply(
            400, error_body("[server] Inference-Header-Content-Length '" + std::string(v) + "' is not a byte count")));
    }
    if (srv_.options.access_log) request_id_ = srv_.next_request.fetch_add(1);
    // The handler may answer later from a Manager worker: until then `pending_` keeps the connection alive, and
    // the callback holds only `this` (small enough for std::function to store without allocating).
    pending_ = shared_from_this();
    srv_.handler->handle(route, req.body(), json_length, [this](HttpReply&& r) { answer(std::move(r)); });
  }

  // The handler's reply, on whichever thread it came: formats the response here, then writes it on the
  // connection's own thread.
  void answer(HttpReply&& r) {
    format(r);
    auto ex = context_.get_executor();
    if (ex.running_in_this_thread()) return write(std::move(pending_));
    net::post(ex, [this] { write(std::move(pending_)); });
  }

  void fail(unsigned status, Reject reason, std::string message) {
    srv_.metrics.reject(reason);
    keep_alive_ = false;  // the rest of this connection's bytes cannot be trusted
    reply(json_reply(status, error_body(message)));
  }

  void reply(HttpReply&& r) {
    format(r);
    write(shared_from_this());
  }

  // Puts the response into `out_` and counts it.
  void format(const HttpReply& r) {
    write_keep_alive_ = keep_alive_ && !srv_.draining.load(std::memory_order_relaxed);
    out_.clear();
    append_response_head(out_, r, write_keep_alive_, r.body.size());
    out_ += r.body;
    const size_t ep =
        endpoint_ == Endpoint::count_ ? static_cast<size_t>(Endpoint::live) : static_cast<size_t>(endpoint_);
    const int cls = r.status < 400 ? 0 : (r.status < 500 ? 1 : 2);
    if (endpoint_ != Endpoint::count_) {
      srv_.metrics.requests[ep][cls]->inc();
      srv_.metrics.duration[ep]->observe(std::chrono::duration<double>(Clock::now() - begin_).count());
    }
    if (srv_.options.access_log) {
      const auto& req = parser_->get();
      log(LogLevel::info, "server", "request",
          {{"request", request_id_},
           {"method", std::string(req.method_string())},
           {"target", std::string(req.target())},
           {"status", static_cast<int64_t>(r.status)},
           {"us", static_cast<int64_t>(
                      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - begin_).count())}});
    }
  }

  void write(std::shared_ptr<Connection> self) {
    net::async_write(stream_, net::buffer(out_), beast::bind_front_handler(&Connection::on_write, std::move(self)));
  }

  void on_write(beast::error_code ec, size_t) {
    srv_.inflight.fetch_sub(1);
    if (out_.capacity() > kKeptBufferBytes) std::string().swap(out_);
    if (ec || !write_keep_alive_) return close();
    read();
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  net::io_context& context_;
  HttpServer::Impl& srv_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;                      // the response being written: head and body
  std::shared_ptr<Connection> pending_;  // set while the handler has not answered
  bool keep_alive_ = true;               // the request's
  bool write_keep_alive_ = true;         // the response's (false also while draining)
  Endpoint endpoint_ = Endpoint::count_;
  Clock::time_point begin_;
  uint64_t request_id_ = 0;
};

}  // namespace

void HttpServer::Impl::accept(size_t i) {
  acceptors[i]->async_accept(*contexts[i], [this, i](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptors[i]->is_open()) return;
      return accept(i);  // e.g. EMFILE: keep accepting
    }
    socket.set_option(tcp::no_delay(true), ec);
    if (draining.load()) {
      metrics.reject(Reject::draining);
      socket.close(ec);
    } else if (connections.fetch_add(1) >= options.max_connections) {
      connections.fetch_sub(1);
      metrics.reject(Reject::connection_limit);
      static constexpr char kBusy[] =
          "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\n"
          "Content-Length: 48\r\n\r\n{\"error\":\"[server] too many open connections\"}\r\n";
      socket.non_blocking(true, ec);
      net::write(socket, net::buffer(kBusy, sizeof kBusy - 1), ec);
      socket.close(ec);
    } else {
      std::make_shared<Connection>(std::move(socket), *contexts[i], *this)->start();
    }
    accept(i);
  });
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const HttpOptions& options, Manager& manager,
                                                      ModelRepository& repository) {
  if (options.threads < 1) return invalid_argument("[server] threads ", options.threads, " < 1");
  auto impl = std::make_unique<Impl>(options, manager, repository);
  Impl* raw = impl.get();
  impl->handler = std::make_unique<RestHandler>(
      manager, repository, [raw] { return raw->metrics_text(); }, [raw] { return raw->ready(); },
      [raw](std::function<void()> job) { raw->admin->post(std::move(job)); });
  beast::error_code ec;
  const auto address = net::ip::make_address(options.host, ec);
  if (ec) return invalid_argument("[server] --host '", options.host, "' is not an IP address");
  uint16_t port = options.port;
  for (int t = 0; t < options.threads; ++t) {
    auto ctx = std::make_unique<net::io_context>(1);
    auto acc = std::make_unique<tcp::acceptor>(*ctx);
    const tcp::endpoint ep(address, port);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acc->set_option(net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(net::socket_base::max_listen_connections, ec);
    if (ec) return unavailable("[server] cannot listen on ", options.host, ":", port, ": ", ec.message());
    port = acc->local_endpoint().port();  // the first acceptor picks the port when 0 was asked
    impl->work.push_back(net::make_work_guard(*ctx));
    impl->contexts.push_back(std::move(ctx));
    impl->acceptors.push_back(std::move(acc));
  }
  impl->port = port;
  for (size_t i = 0; i < impl->contexts.size(); ++i) {
    impl->accept(i);
    impl->threads.emplace_back([ctx = impl->contexts[i].get()] { ctx->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  impl_->draining.store(true);
  impl_->stop_accepting();
  // Requests still in the Manager finish (they are compute-bound and bounded by their deadlines) and
  // their replies are written before the I/O threads stop, so no completion outlives an io_context.
  impl_->wait_inflight(Clock::time_point::max());
  impl_->admin.reset();
  impl_->work.clear();
  for (auto& ctx : impl_->contexts) ctx->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->acceptors.clear();
  impl_->contexts.clear();  // destroys idle connections
}

uint16_t HttpServer::port() const { return impl_->port; }

bool HttpServer::ready() const { return impl_->ready(); }

int64_t HttpServer::drain(std::chrono::milliseconds deadline) {
  impl_->draining.store(true);
  impl_->stop_accepting();
  impl_->wait_inflight(Clock::now() + deadline);
  return impl_->inflight.load();
}

std::string HttpServer::metrics_text() const { return impl_->metrics_text(); }

}  // namespace orchard::server
