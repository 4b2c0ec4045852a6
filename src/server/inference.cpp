#include "server/inference.hpp"

#include <chrono>

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
    if (auto allowed = model.config.input_shapes.find(name); allowed != model.config.input_shapes.end()) {
      const Shape& got = value.tensor().shape();
      bool listed = false;
      std::string list;
      for (const auto& dims : allowed->second) {
        listed |= got == Shape(dims);
        list += (list.empty() ? "" : ", ") + Shape(dims).to_string();
      }
      if (!listed)
        return invalid_argument("[server] input '", name, "' of model '", model.name, "' has shape ", got.to_string(),
                                "; the model's config allows ", list);
    }
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
  // Time from submission to answer, counted in the model's statistics before the protocol hears back.
  done = [stats = model.stats, start = std::chrono::steady_clock::now(),
          done = std::move(done)](Result<NamedValues> r) {
    const auto ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
    (r.ok() ? stats->success_count : stats->fail_count).fetch_add(1, std::memory_order_relaxed);
    (r.ok() ? stats->success_ns : stats->fail_ns).fetch_add(ns, std::memory_order_relaxed);
    stats->last_inference_ms.store(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                             std::chrono::system_clock::now().time_since_epoch())
                                                             .count()),
                                   std::memory_order_relaxed);
    done(std::move(r));
  };
  InferenceOptions options;
  options.priority = manager_priority(priority);
  options.run_inline = model.config.inline_execution;
  if (timeout_us > 0) options.timeout_ms = (timeout_us + 999) / 1000;
  if (model.batcher)
    model.batcher->submit(std::move(inputs), options, std::move(done));
  else
    manager.execute(model.id, std::move(inputs), options, std::move(done));
}

std::vector<ConfigTensor> config_tensors(const std::vector<ValueInfo>& infos, int64_t max_batch_size) {
  struct TypeEnum {
    DType dtype;
    int value;
    const char* name;
  };
  static constexpr TypeEnum kTypes[] = {
      {DType::boolean, 1, "TYPE_BOOL"},   {DType::uint8, 2, "TYPE_UINT8"},    {DType::uint16, 3, "TYPE_UINT16"},
      {DType::uint32, 4, "TYPE_UINT32"},  {DType::uint64, 5, "TYPE_UINT64"},  {DType::int8, 6, "TYPE_INT8"},
      {DType::int16, 7, "TYPE_INT16"},    {DType::int32, 8, "TYPE_INT32"},    {DType::int64, 9, "TYPE_INT64"},
      {DType::float16, 10, "TYPE_FP16"},  {DType::float32, 11, "TYPE_FP32"},  {DType::float64, 12, "TYPE_FP64"},
      {DType::string, 13, "TYPE_STRING"}, {DType::bfloat16, 14, "TYPE_BF16"},
  };
  std::vector<ConfigTensor> out;
  for (const ValueInfo& v : infos) {
    ConfigTensor t{v.name, 0, "TYPE_INVALID", {}};
    if (v.kind == Value::Kind::tensor)
      for (const TypeEnum& e : kTypes)
        if (e.dtype == v.dtype) t.data_type = e.value, t.data_type_name = e.name;
    for (size_t i = max_batch_size > 0 ? 1 : 0; i < v.shape.size(); ++i)
      t.dims.push_back(v.shape[i].fixed() ? v.shape[i].value : int64_t{-1});
    out.push_back(std::move(t));
  }
  return out;
}

NamedValues select_outputs(const NamedValues& all, const std::vector<std::string>& names) {
  NamedValues out;
  for (const std::string& name : names)
    for (const auto& nv : all)
      if (nv.first == name) out.push_back(nv);
  return out;
}

}  // namespace orchard::server
