// Text helpers shared by the metrics and trace writers (internal to src/telemetry/).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace orchard::telemetry::detail {

// Returns the length of the well-formed UTF-8 sequence at s[i], or 0 when the bytes there are not one
// (overlong forms, surrogates and code points above U+10FFFF are rejected).
inline size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  return len;
}

// Appends `s` to `out`, calling esc(out, c) for each ASCII byte (which appends it, escaped as needed),
// copying well-formed multi-byte UTF-8 as is and replacing each invalid byte with U+FFFD.
template <class Escape>
void append_utf8(std::string& out, std::string_view s, Escape esc) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 1) {
      esc(out, s[i]);
    } else if (n > 1) {
      out.append(s.substr(i, n));
    } else {
      out.append("\xef\xbf\xbd");
      i += 1;
      continue;
    }
    i += n;
  }
}

// Appends `s` as a JSON string literal (with quotes).
inline void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  append_utf8(out, s, [](std::string& o, char c) {
    switch (c) {
      case '"': o.append("\\\""); return;
      case '\\': o.append("\\\\"); return;
      case '\n': o.append("\\n"); return;
      case '\r': o.append("\\r"); return;
      case '\t': o.append("\\t"); return;
      case '\b': o.append("\\b"); return;
      case '\f': o.append("\\f"); return;
      default: break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      o.append("\\u00");
      o.push_back(kHex[u >> 4]);
      o.push_back(kHex[u & 15]);
    } else {
      o.push_back(c);
    }
  });
  out.push_back('"');
}

}  // namespace orchard::telemetry::detail
