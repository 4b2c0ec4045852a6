// KServe v2 inference request/response bodies: JSON tensors (nested or flat) and the binary tensor data
// extension. Pure functions over bytes, no I/O, so they can be unit-tested and fuzzed on their own.
// Uses only include/orchard/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orchard/session.hpp"
#include "orchard/status.hpp"
#include "orchard/tensor.hpp"

namespace orchard::server {

// Returns the KServe datatype of `t` ("FP32", "BYTES", ...), or "" when KServe has none.
std::string_view kserve_datatype(DType t);
// Returns the DType of a KServe datatype string, or DType::undefined when it is not one.
DType dtype_from_kserve(std::string_view datatype);

// One output the client asked for.
struct RequestedOutput {
  std::string name;
  std::optional<bool> binary;  // the output's own `binary_data` parameter, when given
};

// A decoded infer request.
struct InferRequest {
  std::string id;                        // echoed in the response; may be empty
  int64_t priority = 0;                  // KServe level: 0 default, 1 highest, larger is lower
  int64_t timeout_us = 0;                // 0: none
  bool binary_outputs = false;           // top-level `binary_data_output`
  NamedValues inputs;                    // tensors, in request order
  std::vector<RequestedOutput> outputs;  // empty: every output
};

// Decodes `body`. `json_length` is the Inference-Header-Content-Length header when present: the JSON
// header is then body[0, json_length) and binary tensors follow it. Errors are invalid_argument naming
// the input and what was wrong (shape/data mismatch, unknown datatype, bad binary_data_size, ...).
Result<InferRequest> decode_infer_request(std::string_view body, std::optional<size_t> json_length);

// An encoded response body; `json_length` is set when binary outputs follow the JSON header.
struct EncodedBody {
  std::string body;
  std::optional<size_t> json_length;
};

// Encodes the response of `model`/`version` (version omitted when empty) to a request with `id`.
// `outputs` are the model outputs to send (already selected and ordered); binary per output when
// `binary[i]`. FP16/BF16 outputs must be binary (JSON has no encoding for them): unsupported otherwise.
Result<EncodedBody> encode_infer_response(std::string_view model, std::string_view version, std::string_view id,
                                          const NamedValues& outputs, const std::vector<bool>& binary);

// As encode_infer_response, appending the body to `out` (a reused buffer) and setting `json_length`. On an
// error `out` holds a partial body.
Status append_infer_response(std::string& out, std::optional<size_t>& json_length, std::string_view model,
                             std::string_view version, std::string_view id, const NamedValues& outputs,
                             const std::vector<bool>& binary);

// Decodes one tensor of the binary layout (little-endian, row-major; BOOL one byte 0/1; BYTES elements
// each a 4-byte little-endian length then the bytes). `input` names the tensor in errors.
Result<Tensor> decode_binary_tensor(DType dtype, const std::vector<int64_t>& dims, std::string_view raw,
                                    const std::string& input);
// Appends `t` in the binary layout to `out`.
void append_binary_tensor(std::string& out, const Tensor& t);

// Returns the JSON error object {"error": message}.
std::string error_body(std::string_view message);

}  // namespace orchard::server
