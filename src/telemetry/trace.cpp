#include "telemetry/trace.hpp"

#include "orchard/trace.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>

#include "telemetry/text.hpp"

namespace orchard::telemetry {
namespace {

void append_int(std::string& out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

// Appends nanoseconds as exact decimal microseconds, e.g. 1234567 -> 1234.567.
void append_us(std::string& out, int64_t ns) {
  uint64_t mag = ns < 0 ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  if (ns < 0) out.push_back('-');
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), mag / 1000);
  out.append(buf, r.ptr);
  if (const uint64_t frac = mag % 1000) {
    out.push_back('.');
    out.push_back(static_cast<char>('0' + frac / 100));
    out.push_back(static_cast<char>('0' + frac / 10 % 10));
    out.push_back(static_cast<char>('0' + frac % 10));
  }
}

std::string shapes_text(const std::vector<Shape>& shapes) {
  std::string s;
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (i) s += ", ";
    s += shapes[i].to_string();
  }
  return s;
}

}  // namespace

std::vector<TraceEvent> profile_trace_events(std::span<const NodeProfile> nodes, const RequestTraceOptions& o) {
  std::vector<TraceEvent> events;
  events.reserve(nodes.size() + 2);
  if (o.queue_wait) {
    events.push_back({"queue_wait", "queue", o.queue_wait->start_ns, o.queue_wait->duration_ns, o.pid, o.tid,
                      o.request_args});
  }
  if (!o.request_name.empty()) {
    int64_t end = 0;
    for (const NodeProfile& n : nodes) end = std::max(end, n.start_ns + n.duration_ns);
    events.push_back({o.request_name, "request", o.run_start_ns, end, o.pid, o.tid, o.request_args});
  }
  for (const NodeProfile& n : nodes) {
    // Kernels on the request's track; partitions and copies each on a track of their own beside it.
    const bool kernel = n.category == "kernel";
    const int64_t track = kernel ? o.tid : o.tid + (n.category == "partition" ? kPartitionTrack : kCopyTrack);
    TraceArgs args{{"op", n.op}, {"backend", n.backend}, {"shapes", shapes_text(n.input_shapes)}};
    events.push_back({n.name.empty() ? n.op : n.name, kernel ? "node" : n.category, o.run_start_ns + n.start_ns,
                      n.duration_ns, o.pid, track, std::move(args)});
  }
  return events;
}

void TraceWriter::add(TraceEvent event) {
  std::lock_guard lock(mu_);
  events_.push_back(std::move(event));
}

void TraceWriter::add_profile(std::span<const NodeProfile> nodes, const RequestTraceOptions& options) {
  auto events = profile_trace_events(nodes, options);
  std::lock_guard lock(mu_);
  events_.insert(events_.end(), std::make_move_iterator(events.begin()), std::make_move_iterator(events.end()));
}

void TraceWriter::set_process_name(int64_t pid, std::string name) {
  std::lock_guard lock(mu_);
  meta_.push_back({"process_name", pid, 0, std::move(name)});
}

void TraceWriter::set_thread_name(int64_t pid, int64_t tid, std::string name) {
  std::lock_guard lock(mu_);
  meta_.push_back({"thread_name", pid, tid, std::move(name)});
}

size_t TraceWriter::size() const {
  std::lock_guard lock(mu_);
  return events_.size();
}

void TraceWriter::clear() {
  std::lock_guard lock(mu_);
  events_.clear();
  meta_.clear();
}

std::string TraceWriter::json() const {
  std::lock_guard lock(mu_);
  std::string out = "{\"traceEvents\":[";
  bool first = true;
  const auto sep = [&] {
    out.append(first ? "\n" : ",\n");
    first = false;
  };
  for (const Meta& m : meta_) {
    sep();
    out.append("{\"name\":\"").append(m.kind).append("\",\"ph\":\"M\",\"pid\":");
    append_int(out, m.pid);
    if (m.kind == "thread_name") {
      out.append(",\"tid\":");
      append_int(out, m.tid);
    }
    out.append(",\"args\":{\"name\":");
    detail::append_json_string(out, m.name);
    out.append("}}");
  }
  for (const TraceEvent& e : events_) {
    sep();
    out.append("{\"name\":");
    detail::append_json_string(out, e.name);
    out.append(",\"cat\":");
    detail::append_json_string(out, e.cat);
    out.append(",\"ph\":\"X\",\"ts\":");
    append_us(out, e.ts_ns);
    out.append(",\"dur\":");
    append_us(out, std::max<int64_t>(e.dur_ns, 0));
    out.append(",\"pid\":");
    append_int(out, e.pid);
    out.append(",\"tid\":");
    append_int(out, e.tid);
    out.append(",\"args\":{");
    for (size_t i = 0; i < e.args.size(); ++i) {
      if (i) out.push_back(',');
      detail::append_json_string(out, e.args[i].first);
      out.push_back(':');
      detail::append_json_string(out, e.args[i].second);
    }
    out.append("}}");
  }
  out.append("\n],\"displayTimeUnit\":\"ms\"}\n");
  return out;
}

Status TraceWriter::write(const std::filesystem::path& path) const {
  const std::string text = json();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return unavailable("[trace] cannot open '", path.string(), "' for writing");
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  f.close();
  if (!f) return unavailable("[trace] writing '", path.string(), "' failed");
  return Status::OK();
}

}  // namespace orchard::telemetry

namespace orchard {

Status write_chrome_trace(const std::filesystem::path& path, std::span<const NodeProfile> nodes, const TraceInfo& info) {
  telemetry::RequestTraceOptions o;
  o.run_start_ns = info.queue_wait_ns;
  if (info.queue_wait_ns > 0) o.queue_wait = telemetry::TraceInterval{0, info.queue_wait_ns};
  o.request_name = info.name;
  o.request_args = info.args;
  telemetry::TraceWriter writer;
  writer.set_process_name(1, "orchard");
  writer.add_profile(nodes, o);
  return writer.write(path);
}

}  // namespace orchard
