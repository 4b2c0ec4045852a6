// Status and Result<T>: how every fallible Orchard call reports failure. No exceptions cross this API.
#pragma once

#include <charconv>
#include <memory>
#include <type_traits>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace orchard {

// The error codes of DESIGN.md. cancelled and deadline_exceeded are outcomes, not failures.
enum class StatusCode : unsigned char {
  ok = 0,
  invalid_argument,
  not_found,
  unsupported,
  out_of_memory,
  resource_exhausted,
  deadline_exceeded,
  cancelled,
  unavailable,
  internal,
};

// Returns the lower-case name of `code`, e.g. "invalid_argument".
std::string_view status_code_name(StatusCode code);

// A success (free: no allocation) or an error code with a message naming what was wrong.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message);
  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status OK() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::ok; }
  // Returns the message without the code; empty when ok.
  const std::string& message() const;
  // Returns "code: message", or "ok".
  std::string to_string() const;
  // Returns a copy whose message is `prefix` followed by this message (code unchanged).
  Status with_prefix(std::string_view prefix) const;

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::unique_ptr<Rep> rep_;
};

namespace detail {
// Appends one message piece: strings and numbers directly (no stream), anything else through operator<<.
template <class T>
void str_append(std::string& out, const T& v) {
  if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    out.append(std::string_view(v));
  } else if constexpr (std::is_same_v<T, char>) {
    out.push_back(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    out.append(v ? "true" : "false");
  } else if constexpr (std::is_integral_v<T>) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, ec == std::errc() ? end : buf);
  } else if constexpr (std::is_floating_point_v<T>) {
    char buf[40];  // 6 significant digits, as a default ostream prints
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
    out.append(buf, ec == std::errc() ? end : buf);
  } else if constexpr (std::is_enum_v<T>) {
    str_append(out, static_cast<std::underlying_type_t<T>>(v));
  } else {
    std::ostringstream os;
    os << v;
    out.append(os.str());
  }
}

template <class... Args>
std::string str_cat(const Args&... args) {
  std::string out;
  (str_append(out, args), ...);
  return out;
}
}  // namespace detail

// Error constructors: each joins its arguments with operator<<, e.g. invalid_argument("[softmax] axis ", a).
template <class... Args> Status invalid_argument(const Args&... a) { return {StatusCode::invalid_argument, detail::str_cat(a...)}; }
template <class... Args> Status not_found(const Args&... a) { return {StatusCode::not_found, detail::str_cat(a...)}; }
template <class... Args> Status unsupported(const Args&... a) { return {StatusCode::unsupported, detail::str_cat(a...)}; }
template <class... Args> Status out_of_memory(const Args&... a) { return {StatusCode::out_of_memory, detail::str_cat(a...)}; }
template <class... Args> Status resource_exhausted(const Args&... a) { return {StatusCode::resource_exhausted, detail::str_cat(a...)}; }
template <class... Args> Status deadline_exceeded(const Args&... a) { return {StatusCode::deadline_exceeded, detail::str_cat(a...)}; }
template <class... Args> Status cancelled(const Args&... a) { return {StatusCode::cancelled, detail::str_cat(a...)}; }
template <class... Args> Status unavailable(const Args&... a) { return {StatusCode::unavailable, detail::str_cat(a...)}; }
template <class... Args> Status internal_error(const Args&... a) { return {StatusCode::internal, detail::str_cat(a...)}; }

// A value of type T or a non-ok Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<0>(v_).ok()) v_ = Status(StatusCode::internal, "Result constructed from an ok Status");
  }

  bool ok() const { return v_.index() == 1; }
  // Returns the error, or an ok Status when a value is held.
  Status status() const { return ok() ? Status() : std::get<0>(v_); }
  T& value() & { return std::get<1>(v_); }
  const T& value() const& { return std::get<1>(v_); }
  T&& value() && { return std::get<1>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace orchard

#define ORCHARD_CONCAT_INNER_(a, b) a##b
#define ORCHARD_CONCAT_(a, b) ORCHARD_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function when it is not ok.
#define ORCHARD_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::orchard::Status orchard_status_ = (expr);        \
    if (!orchard_status_.ok()) return orchard_status_; \
  } while (0)

// Evaluates the Result `expr`; returns its Status on error, else moves its value into `lhs`.
#define ORCHARD_ASSIGN_OR_RETURN(lhs, expr) \
  ORCHARD_ASSIGN_OR_RETURN_IMPL_(ORCHARD_CONCAT_(orchard_result_, __LINE__), lhs, expr)
#define ORCHARD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
