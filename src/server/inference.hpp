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

// Returns the outputs of `all` named in `names`, in that order.
NamedValues select_outputs(const NamedValues& all, const std::vector<std::string>& names);

}  // namespace orchard::server
