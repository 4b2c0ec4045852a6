#include "core/logging.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <unordered_set>

namespace orchard {

namespace detail {
std::atomic<unsigned char> g_log_threshold{0};
}  // namespace detail

namespace {

constexpr unsigned char kThresholdOff = 7;  // above every level, so log_enabled is a single compare

unsigned char threshold_of(LogLevel level) {
  return level == LogLevel::off ? kThresholdOff : static_cast<unsigned char>(level);
}

struct LogState {
  std::mutex sink_mu;
  std::function<void(const LogRecord&)> sink;  // guarded by sink_mu; empty: stderr
  std::mutex once_mu;
  std::unordered_set<std::string> once_keys;  // guarded by once_mu
};

// Never destroyed, so that logging from static destructors stays safe.
LogState& state() {
  static LogState* s = new LogState;
  return *s;
}

std::once_flag g_env_once;
thread_local bool t_in_sink = false;  // a sink that logs would deadlock: its records are dropped

void init_from_env() {
  std::call_once(g_env_once, [] {
    std::string bad;
    const LogLevel level = detail::log_level_from_env(&bad);
    detail::g_log_threshold.store(threshold_of(level), std::memory_order_relaxed);
    if (!bad.empty()) log(LogLevel::warn, "logging", "ignoring unknown ORCHARD_LOG_LEVEL", {{"value", bad}});
  });
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    if (c <= 0x20 || c == 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

// Appends `v` with control characters escaped; with `quoted`, also escapes quotes and backslashes.
void append_escaped(std::string& out, std::string_view v, bool quoted) {
  for (unsigned char c : v) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '"':
      case '\\':
        if (quoted) out += '\\';
        out += static_cast<char>(c);
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[5];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

void append_value(std::string& out, std::string_view v) {
  if (!needs_quotes(v)) {
    out += v;
    return;
  }
  out += '"';
  append_escaped(out, v, true);
  out += '"';
}

void append_key(std::string& out, std::string_view k) {
  if (k.empty()) {
    out += '_';
    return;
  }
  for (char c : k) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-' || c == '/' || c == ':';
    out += ok ? c : '_';
  }
}

void append_time(std::string& out, std::chrono::system_clock::time_point tp) {
  using namespace std::chrono;
  const auto ms_since_epoch = duration_cast<milliseconds>(tp.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms_since_epoch / 1000);
  auto ms = static_cast<int>(ms_since_epoch % 1000);
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // sized for any int values, so the compiler can prove no truncation
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  out += buf;
}

}  // namespace

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "TRACE";
    case LogLevel::debug: return "DEBUG";
    case LogLevel::info: return "INFO";
    case LogLevel::warn: return "WARN";
    case LogLevel::error: return "ERROR";
    case LogLevel::off: return "OFF";
  }
  return "?";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  std::string t(text);
  for (char& c : t) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (t == "trace") return LogLevel::trace;
  if (t == "debug") return LogLevel::debug;
  if (t == "info") return LogLevel::info;
  if (t == "warn" || t == "warning") return LogLevel::warn;
  if (t == "error") return LogLevel::error;
  if (t == "off" || t == "none") return LogLevel::off;
  return std::nullopt;
}

LogField::LogField(std::string_view k, double v) : key(k) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  value.assign(buf, ec == std::errc() ? end : buf);
}

std::string format_log_record(const LogRecord& record) {
  std::string out;
  out.reserve(64 + record.message.size() + record.fields.size() * 24);
  append_time(out, record.time);
  out += ' ';
  out += log_level_name(record.level);
  out += " [";
  append_escaped(out, record.component, false);
  out += "] ";
  append_escaped(out, record.message, false);
  for (const LogField& f : record.fields) {
    out += ' ';
    append_key(out, f.key);
    out += '=';
    append_value(out, f.value);
  }
  return out;
}

LogLevel detail::log_level_from_env(std::string* bad_value) {
  const char* env = std::getenv("ORCHARD_LOG_LEVEL");
  if (env == nullptr || *env == '\0') return LogLevel::warn;
  if (auto parsed = parse_log_level(env)) return *parsed;
  if (bad_value != nullptr) *bad_value = env;
  return LogLevel::warn;
}

bool detail::log_enabled_slow(LogLevel level) {
  init_from_env();
  return static_cast<unsigned char>(level) >= g_log_threshold.load(std::memory_order_relaxed);
}

void detail::log_emit(LogLevel level, std::string_view component, std::string_view message,
                      std::initializer_list<LogField> fields) {
  if (level == LogLevel::off || t_in_sink) return;
  LogRecord record{std::chrono::system_clock::now(), level, std::string(component), std::string(message),
                   std::vector<LogField>(fields)};
  LogState& s = state();
  std::string line;
  {
    std::lock_guard lock(s.sink_mu);
    if (s.sink) {
      t_in_sink = true;
      try {
        s.sink(record);
      } catch (...) {  // a failing sink must not take the caller down
      }
      t_in_sink = false;
      return;
    }
  }
  line = format_log_record(record);
  line += '\n';
  std::lock_guard lock(s.sink_mu);  // one fwrite per line, serialised with sink swaps
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void set_log_level(LogLevel level) {
  init_from_env();  // so a later first use cannot override this with the environment
  detail::g_log_threshold.store(threshold_of(level), std::memory_order_relaxed);
}

LogLevel log_level() {
  init_from_env();
  const unsigned char t = detail::g_log_threshold.load(std::memory_order_relaxed);
  return t >= kThresholdOff ? LogLevel::off : static_cast<LogLevel>(t);
}

void set_log_sink(std::function<void(const LogRecord&)> sink) {
  LogState& s = state();
  std::lock_guard lock(s.sink_mu);
  s.sink = std::move(sink);
}

bool log_once(std::string_view key, LogLevel level, std::string_view component, std::string_view message,
              std::initializer_list<LogField> fields) {
  if (!log_enabled(level)) return false;
  LogState& s = state();
  {
    std::lock_guard lock(s.once_mu);
    if (!s.once_keys.emplace(key).second) return false;
  }
  detail::log_emit(level, component, message, fields);
  return true;
}

}  // namespace orchard
