// The protocol-independent part of an infer call, shared by REST and gRPC: check the inputs against the
// model, choose the outputs, map KServe priority/timeout to the Manager's, and submit to the model's
// Batcher or straight to the Manager (no thread hand-off of our own).
#pragma once

#include <string>
#include <vector>

#include "orchard/manager.hpp"
#include "server/repository.hpp"

namespace orchard::server {

// Checks that every input is declared by `model` with the same dtype, and every requested output
// exists. Returns the outputs to send, in order: `requested`, or all of the model's when empty.
Result<std::vector<std::string>> check_infer(const ServedModel& model, const NamedValues& inputs,
                                             const std::vector<std::string>& requested);

// Submits the request; `done` is called exactly once. `priority`: KServe level (0 default, 1 highest,
// larger lower); `timeout_us`: 0 none.
void submit_infer(Manager& manager, const ServedModel& model, NamedValues inputs, int64_t priority, int64_t timeout_us,
                  Completion done);

// One input or output of a model's configuration in Triton's ModelConfig terms.
struct ConfigTensor {
  std::string name;
  int data_type = 0;           // Triton's DataType enum: TYPE_BOOL 1 ... TYPE_FP32 11, TYPE_STRING 13, TYPE_BF16 14
  std::string data_type_name;  // "TYPE_FP32", ...; "TYPE_INVALID" (0) for non-tensor values
  std::vector<int64_t> dims;   // -1 for a variable dim; without the batch dim when max_batch_size > 0
};
// Returns the configuration tensors of `infos` for a model with `max_batch_size`.
std::vector<ConfigTensor> config_tensors(const std::vector<ValueInfo>& infos, int64_t max_batch_size);

// Returns the outputs of `all` named in `names`, in that order.
NamedValues select_outputs(const NamedValues& all, const std::vector<std::string>& names);

}  // namespace orchard::server
