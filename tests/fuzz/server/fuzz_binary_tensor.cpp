// libFuzzer target for the binary tensor data extension: the first bytes pick a datatype and a shape, the
// rest is the binary payload; the decoder must accept exactly well-formed payloads and reject the rest
// with a Status. Accepted BYTES payloads must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/infer_codec.hpp"

namespace {
constexpr const char* kTypes[] = {"BOOL",  "UINT8", "UINT16", "UINT32", "UINT64", "INT8",  "INT16",
                                  "INT32", "INT64", "FP16",   "FP32",   "FP64",   "BYTES", "BF16"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const char* type = kTypes[data[0] % 14];
  const size_t rank = data[1] % 4;
  if (size < 2 + rank) return 0;
  std::string shape;
  for (size_t i = 0; i < rank; ++i) shape += (i ? "," : "") + std::to_string(data[2 + i] % 17);
  const std::string_view raw(reinterpret_cast<const char*>(data) + 2 + rank, size - 2 - rank);
  const std::string header = std::string(R"({"inputs":[{"name":"t","datatype":")") + type + R"(","shape":[)" + shape +
                             R"(],"parameters":{"binary_data_size":)" + std::to_string(raw.size()) + "}}]}";
  const std::string body = header + std::string(raw);
  auto r = orchard::server::decode_infer_request(body, header.size());
  if (!r.ok()) return 0;
  auto out = orchard::server::encode_infer_response("m", "", "", r->inputs, {true});
  if (!out.ok() || out->body.substr(*out->json_length) != raw) __builtin_trap();  // round trip must be exact
  return 0;
}
