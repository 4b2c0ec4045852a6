// One-off measurement for issue 11: decoding a KServe JSON infer body into a float tensor with Orchard's
// decoder vs a bare simdjson 3.0 On Demand loop that only copies the floats, same bodies. (First session: the
// decoder was nlohmann-json based; since the second it is simdjson On Demand itself, src/server/json_decoder.cpp,
// so the ratio is now the full decoder's validation and bookkeeping over the bare loop.)
// Not part of the build (the name avoids bench/*_bench.cpp). Build and run from the repository root (one
// command line):
//   g++ -std=c++20 -O2 -DSIMDJSON_THREADS_ENABLED=1 -Iinclude -Isrc bench/json_decode_measure.cpp
//       src/server/infer_codec.cpp src/server/json_decoder.cpp src/core/tensor.cpp src/core/dtype.cpp
//       src/core/status.cpp -lsimdjson -o /tmp/json_decode_measure
//   /tmp/json_decode_measure
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "server/infer_codec.hpp"

namespace {

std::string body_of(int64_t n) {  // FP32 input of n elements, values like a normalized image
  std::string s = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[)" + std::to_string(n) + R"(],"data":[)";
  for (int64_t i = 0; i < n; ++i) {
    if (i) s += ',';
    s += std::to_string(((i * 7919) % 1000) / 997.0 - 0.5);
  }
  return s + "]}]}";
}

// simdjson: parse and copy the floats out (what a decoder must at least do).
size_t simdjson_decode(simdjson::ondemand::parser& parser, const simdjson::padded_string& body,
                       std::vector<float>& out) {
  out.clear();
  auto doc = parser.iterate(body);
  for (auto input : doc["inputs"].get_array()) {
    for (double v : input["data"].get_array()) out.push_back(static_cast<float>(v));
  }
  return out.size();
}

template <class F>
double median_us(F&& f, int reps) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main() {
  simdjson::ondemand::parser parser;
  std::vector<float> floats;
  std::printf(
      "| body | bytes | orchard decoder µs | bare simdjson On Demand loop µs | ratio |\n|---|---:|---:|---:|---:|\n");
  for (int64_t n : {64, 3 * 224 * 224}) {
    const std::string body = body_of(n);
    const simdjson::padded_string padded(body);
    const int reps = n < 1000 ? 20001 : 41;
    size_t sink = 0;
    const double a = median_us([&] { sink += orchard::server::decode_infer_request(body, std::nullopt).ok(); }, reps);
    const double b = median_us([&] { sink += simdjson_decode(parser, padded, floats); }, reps);
    std::printf("| %lld FP32 | %zu | %.1f | %.1f | %.1fx |\n", static_cast<long long>(n), body.size(), a, b, a / b);
    if (sink == 0) std::puts("");
  }
}
