// Cast and CastLike between every numeric type, bool and string. Conversions follow numpy's astype, which
// the conformance data was made with: floats to integers truncate, numbers print as numpy's str() does
// ("0.47892547", "1e-05", "nan", "-inf"), strings parse like Python's float() ("+INF", "NaN", " 1.5 ").
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/numeric_cast.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

// Maps the opset-1 string form of Cast's `to` ("FLOAT", "INT64", ...) to its ONNX data type number (0 if none).
int64_t onnx_type_from_name(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  static constexpr std::pair<const char*, int> kNames[] = {
      {"FLOAT", 1},    {"UINT8", 2},   {"INT8", 3},    {"UINT16", 4},  {"INT16", 5},    {"INT32", 6},
      {"INT64", 7},    {"STRING", 8},  {"BOOL", 9},    {"FLOAT16", 10}, {"DOUBLE", 11}, {"UINT32", 12},
      {"UINT64", 13},  {"BFLOAT16", 16},
  };
  for (const auto& [n, v] : kNames) {
    if (name == n) return v;
  }
  return 0;
}

// Returns Cast's target type from its `to` attribute (an int, or a type name before opset 6).
Result<DType> cast_target(const graph::Node& node) {
  const graph::Attribute* a = node.attr("to");
  if (!a) return invalid_argument("attribute 'to' is missing");
  if (a->type == graph::Attribute::Type::s) {
    const int64_t t = onnx_type_from_name(a->s);
    if (t == 0) return unsupported("'to' names an unsupported type \"", a->s, "\"");
    return dtype_from_onnx_type(t);
  }
  auto t = dtype_from_onnx_type(node.attr_int("to", 0));
  if (!t.ok()) return t.status().with_prefix("'to': ");
  return t;
}

// Rounds a double to float with round-to-odd, so that a second rounding to float16/bfloat16 is correctly
// rounded (no double rounding).
float to_float_round_odd(double d) {
  float f = static_cast<float>(d);
  if (std::isnan(d) || static_cast<double>(f) == d) return f;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) --u;  // rounded away from zero: take the lower neighbour
  u |= 1u;
  std::memcpy(&f, &u, 4);
  return f;
}

// Converts a double to a float type T (one rounding).
template <class T>
T double_to_float(double d) {
  if constexpr (is_half_v<T>) return T(to_float_round_odd(d));
  else return static_cast<T>(d);
}

// Converts one non-string value.
template <class To, class From>
To convert_number(const From& v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    return load(v) != 0;
  } else if constexpr (std::is_same_v<From, bool>) {
    return store<To>(v ? 1 : 0);
  } else if constexpr (is_float_v<From>) {
    const double d = static_cast<double>(load(v));
    if constexpr (std::is_integral_v<To>) return wrapping_cast<To>(d);
    else if constexpr (std::is_same_v<From, double>) return double_to_float<To>(d);
    else return store<To>(load(v));  // float, float16, bfloat16 -> wider or via exact float
  } else {  // integer source
    if constexpr (std::is_integral_v<To>) return static_cast<To>(v);
    else if constexpr (is_half_v<To>) return double_to_float<To>(static_cast<double>(v));
    else return static_cast<To>(v);
  }
}

// The shortest decimal digits (no trailing zeros) and exponent that read back as `v`: v ~ d.ddd x 10^exp.
template <class T>
void shortest_digits(T v, std::string& digits, int& exp10) {
  char buf[64];
  const char* end = buf;
  if constexpr (is_half_v<T>) {
    const double d = static_cast<double>(static_cast<float>(v));
    for (int p = 1; p <= 9; ++p) {
      const int n = std::snprintf(buf, sizeof buf, "%.*e", p - 1, d);
      end = buf + n;
      if (T(static_cast<float>(std::strtod(buf, nullptr))).bits == v.bits) break;
    }
  } else {
    end = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific).ptr;
  }
  digits.clear();
  const char* p = buf;
  if (*p == '-') ++p;
  for (; p < end && *p != 'e'; ++p) {
    if (*p != '.') digits.push_back(*p);
  }
  // (to_chars writes no terminating NUL: parse the exponent within [p + 1, end) only.)
  exp10 = 0;
  if (p < end) {
    const char* q = p + 1;
    if (q < end && *q == '+') ++q;
    std::from_chars(q, end, exp10);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
}

// Formats a float as numpy's str() does: positional for 1e-4 <= |v| < 1e16, else scientific.
template <class T>
std::string format_float(T v) {
  const double d = static_cast<double>(load(v));
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  std::string out = std::signbit(d) ? "-" : "";
  if (d == 0) return out += "0.0";
  std::string digits;
  int e = 0;
  shortest_digits(v, digits, e);
  const int n = static_cast<int>(digits.size());
  const double a = std::fabs(d);
  if (a >= 1e-4 && a < 1e16) {
    if (e >= 0) {
      for (int i = 0; i <= e; ++i) out.push_back(i < n ? digits[static_cast<size_t>(i)] : '0');
      out += '.';
      if (e + 1 < n) out.append(digits, static_cast<size_t>(e + 1), std::string::npos);
      else out += '0';
    } else {
      out += "0.";
      out.append(static_cast<size_t>(-e - 1), '0');
      out += digits;
    }
    return out;
  }
  out += digits[0];
  if (n > 1) {
    out += '.';
    out.append(digits, 1, std::string::npos);
  }
  char exp[16];
  std::snprintf(exp, sizeof exp, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
  out += exp;
  return out;
}

template <class From>
std::string to_text(const From& v) {
  if constexpr (std::is_same_v<From, bool>) return v ? "True" : "False";
  else if constexpr (is_float_v<From>) return format_float(v);
  else return std::to_string(v);
}

// Parses a float like Python's float(): surrounding spaces, a sign, "inf"/"infinity"/"nan" in any case.
bool parse_double(std::string_view s, double& out) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  double v;
  if (lower == "inf" || lower == "infinity") {
    v = std::numeric_limits<double>::infinity();
  } else if (lower == "nan") {
    v = std::numeric_limits<double>::quiet_NaN();
  } else {
    if (s.empty() || s[0] == '+' || s[0] == '-') return false;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return false;
  }
  out = negative ? -v : v;
  return true;
}

// Parses one string as To; false when it is not a number of that kind.
template <class To>
bool parse_value(const std::string& s, To& out) {
  if constexpr (std::is_same_v<To, bool>) {
    if (s == "True" || s == "true" || s == "1") {
      out = true;
      return true;
    }
    if (s.empty() || s == "False" || s == "false" || s == "0") {
      out = false;
      return true;
    }
    double d;
    if (!parse_double(s, d)) return false;
    out = d != 0;
    return true;
  } else if constexpr (std::is_integral_v<To>) {
    std::string_view t(s);
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
    if (!t.empty() && t[0] == '+') t.remove_prefix(1);
    if constexpr (std::is_same_v<To, uint64_t>) {
      uint64_t u;
      const auto r = std::from_chars(t.data(), t.data() + t.size(), u);
      if (r.ec == std::errc() && r.ptr == t.data() + t.size()) {
        out = u;
        return true;
      }
    }
    int64_t i;
    const auto r = std::from_chars(t.data(), t.data() + t.size(), i);
    if (r.ec == std::errc() && r.ptr == t.data() + t.size()) {
      out = static_cast<To>(i);
      return true;
    }
    double d;
    if (!parse_double(s, d)) return false;
    out = wrapping_cast<To>(d);
    return true;
  } else {
    double d;
    if (!parse_double(s, d)) return false;
    out = double_to_float<To>(d);
    return true;
  }
}

// Writes x converted to `to` as output 0.
Status cast_to(OpContext& ctx, const Tensor& x, DType to) {
  if (x.dtype() == to) {
    ctx.set_output(0, Value(x));  // no conversion: share the input
    return Status::OK();
  }
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, to, x.shape()));
  const int64_t n = x.numel();
  return dispatch<kAll>(x.dtype(), "Cast input", [&](auto from_tag) -> Status {
    using From = decltype(from_tag);
    return dispatch<kAll>(to, "Cast target", [&](auto to_tag) -> Status {
      using To = decltype(to_tag);
      const From* in = x.data<From>();
      To* out = y.data<To>();
      if constexpr (std::is_same_v<From, std::string> && std::is_same_v<To, std::string>) {
        std::copy(in, in + n, out);  // unreachable (same dtype is shared above); keeps the instantiation valid
      } else if constexpr (std::is_same_v<From, std::string>) {
        for (int64_t i = 0; i < n; ++i) {
          if (!parse_value<To>(in[i], out[i])) {
            return invalid_argument("element ", i, " \"", in[i], "\" is not a valid ", dtype_name(to));
          }
        }
      } else if constexpr (std::is_same_v<To, std::string>) {
        for (int64_t i = 0; i < n; ++i) out[i] = to_text(in[i]);
      } else {
        parallel_range(ctx.pool(), n, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) out[i] = convert_number<To>(in[i]);
        });
      }
      return Status::OK();
    });
  });
}

class CastKernel final : public OpKernel {
 public:
  explicit CastKernel(const KernelCreateContext& c) : to_(cast_target(c.node).value()) {}
  static Status validate(const KernelCreateContext& c) { return cast_target(c.node).status(); }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    return cast_to(ctx, *x, to_);
  }

 private:
  DType to_;
};

// CastLike: casts input 0 to the element type of input 1.
Status cast_like(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* like, ctx.input_tensor(1));
  return cast_to(ctx, *x, like->dtype());
}

constexpr KernelDef kKernels[] = {
    {"", "Cast", 1, kVerifiedOpset, make<CastKernel>},
    {"", "CastLike", 15, kVerifiedOpset, stateless<cast_like>},
};

}  // namespace

std::span<const KernelDef> cast_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
