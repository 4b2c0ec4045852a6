#include "server/inference.hpp"

#include "server/infer_codec.hpp"

namespace orchard::server {
namespace {

// KServe level (0 default, 1 highest, larger lower) to the Manager's priority (higher first). Level 0 and 1
// both map to the Manager's default 0: requests without a priority run at the highest level.
int manager_priority(int64_t level) {
  if (level <= 1) return 0;
  return level > 1000000 ? -999999 : static_cast<int>(1 - level);
}

}  // namespace

Result<std::vector<std::string>> check_infer(const ServedModel& model, const NamedValues& inputs,
                                             const std::vector<std::string>& requested) {
  const auto& declared = model.session->inputs();
  for (const auto& [name, value] : inputs) {
    const ValueInfo* info = nullptr;
    for (const ValueInfo& v : declared)
      if (v.name == name) info = &v;
    if (!info) return invalid_argument("[server] model '", model.name, "' has no input '", name, "'");
    if (info->dtype != value.tensor().dtype())
      return invalid_argument("[server] input '", name, "' of model '", model.name, "' is ",
                              kserve_datatype(info->dtype), ", got ", kserve_datatype(value.tensor().dtype()));
  }
  std::vector<std::string> out;
  const auto& outs = model.session->outputs();
  if (requested.empty()) {
    for (const ValueInfo& v : outs) out.push_back(v.name);
    return out;
  }
  for (const std::string& r : requested) {
    bool known = false;
    for (const ValueInfo& v : outs) known |= v.name == r;
    if (!known) return invalid_argument("[server] model '", model.name, "' has no output '", r, "'");
    out.push_back(r);
  }
  return out;
}

void submit_infer(Manager& manager, const ServedModel& model, NamedValues inputs, int64_t priority, int64_t timeout_us,
                  Completion done) {
  InferenceOptions options;
  options.priority = manager_priority(priority);
  if (timeout_us > 0) options.timeout_ms = (timeout_us + 999) / 1000;
  if (model.batcher)
    model.batcher->submit(std::move(inputs), options, std::move(done));
  else
    manager.execute(model.id, std::move(inputs), options, std::move(done));
}

NamedValues select_outputs(const NamedValues& all, const std::vector<std::string>& names) {
  NamedValues out;
  for (const std::string& name : names)
    for (const auto& nv : all)
      if (nv.first == name) out.push_back(nv);
  return out;
}

}  // namespace orchard::server
