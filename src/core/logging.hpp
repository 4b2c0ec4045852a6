// Structured, leveled logging, quiet by default (warn). One record is one line:
//   2026-11-26T06:30:00.123Z WARN [manager] failover model=resnet from=cuda to=cpu reason="compile failed"
// written to stderr, or handed to a sink set with set_log_sink (tests). The level comes from
// set_log_level, else from $ORCHARD_LOG_LEVEL (trace/debug/info/warn/error/off), read once.
// A disabled level costs one relaxed atomic load; the ORCHARD_LOG_* macros also skip evaluating their
// arguments. Thread-safe. Layering: depends on nothing else in Orchard.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orchard {

enum class LogLevel : unsigned char { trace = 1, debug, info, warn, error, off };

// Returns "TRACE", "DEBUG", "INFO", "WARN", "ERROR" or "OFF".
std::string_view log_level_name(LogLevel level);
// Parses "trace" ... "off" (case-insensitive; "warning" too); nullopt when unknown.
std::optional<LogLevel> parse_log_level(std::string_view text);

// One key=value pair of a record. Values are text; numbers and booleans are converted here.
struct LogField {
  std::string key;
  std::string value;

  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  template <std::integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, char>)
  LogField(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, double v);
};

struct LogRecord {
  std::chrono::system_clock::time_point time;
  LogLevel level = LogLevel::info;
  std::string component;
  std::string message;
  std::vector<LogField> fields;
};

// Returns the record as one line without the trailing newline. Values holding spaces, quotes, '=', '\\' or
// control characters (or empty) are quoted and escaped (\" \\ \n \r \t \xHH); the message is written as
// is but with control characters escaped, so a record never spans two lines.
std::string format_log_record(const LogRecord& record);

namespace detail {
// 0 until initialised from the environment (so the first call takes the slow path); then the level.
extern std::atomic<unsigned char> g_log_threshold;
bool log_enabled_slow(LogLevel level);
// Returns the level $ORCHARD_LOG_LEVEL names, warn when unset; an unknown value goes to `bad_value`.
// (The logger calls this once; exposed for tests.)
LogLevel log_level_from_env(std::string* bad_value);
void log_emit(LogLevel level, std::string_view component, std::string_view message,
              std::initializer_list<LogField> fields);
}  // namespace detail

// Returns whether records of `level` are written.
inline bool log_enabled(LogLevel level) {
  const unsigned char threshold = detail::g_log_threshold.load(std::memory_order_relaxed);
  if (threshold == 0) return detail::log_enabled_slow(level);
  return static_cast<unsigned char>(level) >= threshold;  // off is stored as 7: nothing passes
}

// Sets the level for the whole process (overrides $ORCHARD_LOG_LEVEL).
void set_log_level(LogLevel level);
// Returns the current level.
LogLevel log_level();
// Sends records to `sink` instead of stderr; an empty function restores stderr. Calls to the sink are
// serialised; the sink must not log.
void set_log_sink(std::function<void(const LogRecord&)> sink);

// Writes one record if `level` is enabled.
inline void log(LogLevel level, std::string_view component, std::string_view message,
                std::initializer_list<LogField> fields = {}) {
  if (log_enabled(level)) detail::log_emit(level, component, message, fields);
}

// Like log, but only the first time `key` is seen with `level` enabled (e.g. "failover:resnet:cuda").
// Returns whether this call wrote the record. Keys are remembered for the life of the process.
bool log_once(std::string_view key, LogLevel level, std::string_view component, std::string_view message,
              std::initializer_list<LogField> fields = {});

}  // namespace orchard

// ORCHARD_LOG_INFO("manager", "model loaded", {"model", name}, {"bytes", n}): the message and fields
// are evaluated only when the level is enabled.
#define ORCHARD_LOG(level, component, message, ...)                                 \
  do {                                                                              \
    if (::orchard::log_enabled(level)) {                                            \
      ::orchard::detail::log_emit(level, component, message, {__VA_ARGS__});        \
    }                                                                               \
  } while (0)
#define ORCHARD_LOG_TRACE(component, message, ...) \
  ORCHARD_LOG(::orchard::LogLevel::trace, component, message, __VA_ARGS__)
#define ORCHARD_LOG_DEBUG(component, message, ...) \
  ORCHARD_LOG(::orchard::LogLevel::debug, component, message, __VA_ARGS__)
#define ORCHARD_LOG_INFO(component, message, ...) ORCHARD_LOG(::orchard::LogLevel::info, component, message, __VA_ARGS__)
#define ORCHARD_LOG_WARN(component, message, ...) ORCHARD_LOG(::orchard::LogLevel::warn, component, message, __VA_ARGS__)
#define ORCHARD_LOG_ERROR(component, message, ...) \
  ORCHARD_LOG(::orchard::LogLevel::error, component, message, __VA_ARGS__)
