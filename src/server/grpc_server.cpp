#include "server/grpc_server.hpp"

#include <grpcpp/grpcpp.h>

#include <limits>

#include "grpc_service.grpc.pb.h"
#include "server/admin_queue.hpp"
#include "server/infer_codec.hpp"
#include "server/inference.hpp"

namespace orchard::server {
namespace {

namespace pb = ::inference;

grpc::Status to_grpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (s.code()) {
    case StatusCode::ok:
      break;
    case StatusCode::invalid_argument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case StatusCode::not_found:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case StatusCode::unsupported:
      code = grpc::StatusCode::UNIMPLEMENTED;
      break;
    case StatusCode::out_of_memory:
    case StatusCode::resource_exhausted:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case StatusCode::deadline_exceeded:
      code = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case StatusCode::cancelled:
      code = grpc::StatusCode::CANCELLED;
      break;
    case StatusCode::unavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case StatusCode::internal:
      code = grpc::StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(code, s.message());
}

Result<std::vector<int64_t>> shape_of(const google::protobuf::RepeatedField<int64_t>& shape, const std::string& name,
                                      int64_t* numel) {
  std::vector<int64_t> dims;
  *numel = 1;
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument("[server] input '", name, "': shape dimension ", d, " is negative");
    if (d != 0 && *numel > (int64_t{1} << 40) / d)
      return invalid_argument("[server] input '", name, "': shape too large");
    *numel *= d;
    dims.push_back(d);
  }
  return dims;
}

// Copies typed `contents` values into a new tensor, checking count and range.
template <class T, class Field>
Result<Tensor> from_field(DType dtype, const std::vector<int64_t>& dims, int64_t numel, const Field& field,
                          const std::string& name) {
  if (static_cast<int64_t>(field.size()) != numel)
    return invalid_argument("[server] input '", name, "': contents has ", field.size(), " elements, shape needs ",
                            numel);
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dtype, Shape(dims)));
  for (int64_t i = 0; i < numel; ++i) {
    const auto v = field.Get(static_cast<int>(i));
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
        return invalid_argument("[server] input '", name, "': element ", v, " out of range");
    }
    t.data<T>()[i] = static_cast<T>(v);
  }
  return t;
}

Result<Tensor> from_contents(DType dtype, const std::vector<int64_t>& dims, int64_t numel,
                             const pb::InferTensorContents& c, const std::string& name) {
  switch (dtype) {
    case DType::boolean:
      return from_field<bool>(dtype, dims, numel, c.bool_contents(), name);
    case DType::int8:
      return from_field<int8_t>(dtype, dims, numel, c.int_contents(), name);
    case DType::int16:
      return from_field<int16_t>(dtype, dims, numel, c.int_contents(), name);
    case DType::int32:
      return from_field<int32_t>(dtype, dims, numel, c.int_contents(), name);
    case DType::int64:
      return from_field<int64_t>(dtype, dims, numel, c.int64_contents(), name);
    case DType::uint8:
      return from_field<uint8_t>(dtype, dims, numel, c.uint_contents(), name);
    case DType::uint16:
      return from_field<uint16_t>(dtype, dims, numel, c.uint_contents(), name);
    case DType::uint32:
      return from_field<uint32_t>(dtype, dims, numel, c.uint_contents(), name);
    case DType::uint64:
      return from_field<uint64_t>(dtype, dims, numel, c.uint64_contents(), name);
    case DType::float32:
      return from_field<float>(dtype, dims, numel, c.fp32_contents(), name);
    case DType::float64:
      return from_field<double>(dtype, dims, numel, c.fp64_contents(), name);
    case DType::string: {
      if (c.bytes_contents_size() != numel)
        return invalid_argument("[server] input '", name, "': contents has ", c.bytes_contents_size(),
                                " elements, shape needs ", numel);
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dtype, Shape(dims)));
      for (int64_t i = 0; i < numel; ++i) t.data<std::string>()[i] = c.bytes_contents(static_cast<int>(i));
      return t;
    }
    default:
      break;
  }
  return invalid_argument("[server] input '", name, "': ", kserve_datatype(dtype),
                          " must be sent in raw_input_contents");
}

Result<int64_t> int_param(const google::protobuf::Map<std::string, pb::InferParameter>& params, const char* key) {
  auto it = params.find(key);
  if (it == params.end()) return int64_t{0};
  const pb::InferParameter& p = it->second;
  if (p.has_int64_param() && p.int64_param() >= 0) return p.int64_param();
  if (p.has_uint64_param() && p.uint64_param() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return static_cast<int64_t>(p.uint64_param());
  return invalid_argument("[server] parameter '", key, "' must be a non-negative integer");
}

Result<NamedValues> decode_inputs(const pb::ModelInferRequest& req) {
  const bool raw = req.raw_input_contents_size() > 0;
  if (raw && req.raw_input_contents_size() != req.inputs_size())
    return invalid_argument("[server] ", req.raw_input_contents_size(), " raw_input_contents for ", req.inputs_size(),
                            " inputs");
  NamedValues out;
  for (int i = 0; i < req.inputs_size(); ++i) {
    const auto& in = req.inputs(i);
    for (const auto& [n, v] : out)
      if (n == in.name()) return invalid_argument("[server] input '", n, "' given twice");
    const DType dtype = dtype_from_kserve(in.datatype());
    if (dtype == DType::undefined)
      return invalid_argument("[server] input '", in.name(), "': unknown datatype '", in.datatype(), "'");
    int64_t numel = 0;
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> dims, shape_of(in.shape(), in.name(), &numel));
    if (raw) {
      if (in.has_contents())
        return invalid_argument("[server] input '", in.name(), "' has contents while raw_input_contents is used");
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, decode_binary_tensor(dtype, dims, req.raw_input_contents(i), in.name()));
      out.emplace_back(in.name(), std::move(t));
    } else {
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, from_contents(dtype, dims, numel, in.contents(), in.name()));
      out.emplace_back(in.name(), std::move(t));
    }
  }
  return out;
}

void fill_metadata(const ServedModel& m, pb::ModelMetadataResponse* out) {
  out->set_name(m.name);
  out->add_versions(std::to_string(m.version));
  out->set_platform("onnx");
  auto add = [](const std::vector<ValueInfo>& infos, auto* list) {
    for (const ValueInfo& v : infos) {
      auto* t = list->Add();
      t->set_name(v.name);
      t->set_datatype(v.kind == Value::Kind::tensor ? std::string(kserve_datatype(v.dtype)) : "");
      for (const Dim& d : v.shape) t->add_shape(d.fixed() ? d.value : -1);
    }
  };
  add(m.session->inputs(), out->mutable_inputs());
  add(m.session->outputs(), out->mutable_outputs());
}

class Service final : public pb::GRPCInferenceService::CallbackService {
 public:
  Service(Manager& manager, ModelRepository& repository, std::function<bool()> ready, AdminQueue& admin)
      : manager_(manager), repository_(repository), ready_(std::move(ready)), admin_(admin) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx, const pb::ServerLiveRequest*,
                                       pb::ServerLiveResponse* resp) override {
    resp->set_live(true);
    return done(ctx, Status::OK());
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx, const pb::ServerReadyRequest*,
                                        pb::ServerReadyResponse* resp) override {
    resp->set_ready(ready_());
    return done(ctx, Status::OK());
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx, const pb::ModelReadyRequest* req,
                                       pb::ModelReadyResponse* resp) override {
    auto m = repository_.find(req->name(), req->version());
    if (!m.ok() && m.status().code() == StatusCode::not_found) return done(ctx, m.status());
    resp->set_ready(m.ok());
    return done(ctx, Status::OK());
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx, const pb::ServerMetadataRequest*,
                                           pb::ServerMetadataResponse* resp) override {
    resp->set_name("orchard");
    resp->set_version("0.1.0");
    for (const char* e :
         {"binary_tensor_data", "model_repository", "schedule_policy", "statistics", "model_configuration"})
      resp->add_extensions(e);
    return done(ctx, Status::OK());
  }
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx, const pb::ModelMetadataRequest* req,
                                          pb::ModelMetadataResponse* resp) override {
    auto m = repository_.find(req->name(), req->version());
    if (!m.ok()) return done(ctx, m.status());
    fill_metadata(**m, resp);
    return done(ctx, Status::OK());
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx, const pb::ModelInferRequest* req,
                                       pb::ModelInferResponse* resp) override {
    auto found = repository_.find(req->model_name(), req->model_version());
    if (!found.ok()) return done(ctx, found.status());
    std::shared_ptr<const ServedModel> model = *found;
    auto inputs = decode_inputs(*req);
    if (!inputs.ok()) return done(ctx, inputs.status());
    std::vector<std::string> requested;
    for (const auto& o : req->outputs()) requested.push_back(o.name());
    auto names = check_infer(*model, *inputs, requested);
    if (!names.ok()) return done(ctx, names.status());
    auto priority = int_param(req->parameters(), "priority");
    if (!priority.ok()) return done(ctx, priority.status());
    auto timeout = int_param(req->parameters(), "timeout");
    if (!timeout.ok()) return done(ctx, timeout.status());

    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    resp->set_model_name(model->name);
    resp->set_model_version(std::to_string(model->version));
    resp->set_id(req->id());
    auto on_done = [reactor, resp, names = std::move(names).value()](Result<NamedValues> r) {
      if (!r.ok()) return reactor->Finish(to_grpc(r.status()));
      for (const auto& [name, value] : select_outputs(*r, names)) {
        if (!value.is_tensor() || kserve_datatype(value.tensor().dtype()).empty())
          return reactor->Finish(to_grpc(unsupported("[server] output '", name, "' is ", value.description())));
        const Tensor& t = value.tensor();
        auto* o = resp->add_outputs();
        o->set_name(name);
        o->set_datatype(std::string(kserve_datatype(t.dtype())));
        for (int64_t d : t.shape()) o->add_shape(d);
        append_binary_tensor(*resp->add_raw_output_contents(), t);
      }
      reactor->Finish(grpc::Status::OK);
    };
    submit_infer(manager_, *model, std::move(inputs).value(), *priority, *timeout, std::move(on_done));
    return reactor;
  }

  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* ctx, const pb::RepositoryIndexRequest* req,
                                            pb::RepositoryIndexResponse* resp) override {
    for (const IndexEntry& e : repository_.index(req->ready())) {
      auto* m = resp->add_models();
      m->set_name(e.name);
      m->set_version(e.version);
      m->set_state(e.state);
      m->set_reason(e.reason);
    }
    return done(ctx, Status::OK());
  }
  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext* ctx,
                                                const pb::RepositoryModelLoadRequest* req,
                                                pb::RepositoryModelLoadResponse*) override {
    return admin(ctx, req->model_name(), true);
  }
  grpc::ServerUnaryReactor* RepositoryModelUnload(grpc::CallbackServerContext* ctx,
                                                  const pb::RepositoryModelUnloadRequest* req,
                                                  pb::RepositoryModelUnloadResponse*) override {
    return admin(ctx, req->model_name(), false);
  }

  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* ctx, const pb::ModelStatisticsRequest* req,
                                            pb::ModelStatisticsResponse* resp) override {
    auto stats = repository_.statistics(req->name(), req->version());
    if (!stats.ok()) return done(ctx, stats.status());
    for (const ModelStatsSnapshot& s : *stats) {
      auto* m = resp->add_model_stats();
      m->set_name(s.name);
      m->set_version(s.version);
      m->set_last_inference(s.last_inference_ms);
      m->set_inference_count(s.inference_count);
      m->set_execution_count(s.execution_count);
      auto* st = m->mutable_inference_stats();
      st->mutable_success()->set_count(s.success_count);
      st->mutable_success()->set_ns(s.success_ns);
      st->mutable_fail()->set_count(s.fail_count);
      st->mutable_fail()->set_ns(s.fail_ns);
      st->mutable_queue()->set_count(s.run_count);
      st->mutable_queue()->set_ns(s.queue_ns);
      st->mutable_compute_infer()->set_count(s.run_count);
      st->mutable_compute_infer()->set_ns(s.compute_ns);
    }
    return done(ctx, Status::OK());
  }
  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* ctx, const pb::ModelConfigRequest* req,
                                        pb::ModelConfigResponse* resp) override {
    auto found = repository_.find(req->name(), req->version());
    if (!found.ok()) return done(ctx, found.status());
    const ServedModel& m = **found;
    const int64_t batch = m.config.dynamic_batching ? m.config.max_batch_size : 0;
    auto* c = resp->mutable_config();
    c->set_name(m.name);
    c->set_platform("onnx");
    c->set_max_batch_size(static_cast<int32_t>(batch));
    for (const ConfigTensor& t : config_tensors(m.session->inputs(), batch)) {
      auto* in = c->add_input();
      in->set_name(t.name);
      in->set_data_type(static_cast<pb::DataType>(t.data_type));
      for (int64_t d : t.dims) in->add_dims(d);
    }
    for (const ConfigTensor& t : config_tensors(m.session->outputs(), batch)) {
      auto* out = c->add_output();
      out->set_name(t.name);
      out->set_data_type(static_cast<pb::DataType>(t.data_type));
      for (int64_t d : t.dims) out->add_dims(d);
    }
    if (m.config.dynamic_batching) {
      auto* b = c->mutable_dynamic_batching();
      b->set_max_queue_delay_microseconds(static_cast<uint64_t>(m.config.max_queue_delay_us));
      for (int64_t p : m.config.preferred_batch_sizes) b->add_preferred_batch_size(static_cast<int32_t>(p));
    }
    std::string backends;
    for (const std::string& b : m.config.backends) backends += (backends.empty() ? "" : ",") + b;
    c->set_backend(backends);
    return done(ctx, Status::OK());
  }

 private:
  static grpc::ServerUnaryReactor* done(grpc::CallbackServerContext* ctx, const Status& s) {
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(to_grpc(s));
    return r;
  }
  grpc::ServerUnaryReactor* admin(grpc::CallbackServerContext* ctx, const std::string& name, bool load) {
    if (!valid_model_name(name)) return done(ctx, invalid_argument("[server] invalid model name '", name, "'"));
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    admin_.post([this, reactor, name, load] {
      reactor->Finish(to_grpc(load ? repository_.load(name) : repository_.unload(name)));
    });
    return reactor;
  }

  Manager& manager_;
  ModelRepository& repository_;
  std::function<bool()> ready_;
  AdminQueue& admin_;
};

}  // namespace

struct GrpcServer::Impl {
  AdminQueue admin;
  std::unique_ptr<Service> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool shut = false;
};

Result<std::unique_ptr<GrpcServer>> GrpcServer::start(const GrpcOptions& options, Manager& manager,
                                                      ModelRepository& repository, std::function<bool()> ready) {
  auto impl = std::make_unique<Impl>();
  impl->service = std::make_unique<Service>(manager, repository, std::move(ready), impl->admin);
  grpc::ServerBuilder builder;
  const std::string address = (options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host) +
                              ":" + std::to_string(options.port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &impl->port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<int64_t>(options.max_message_bytes, INT32_MAX)));
  builder.SetMaxSendMessageSize(INT32_MAX);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) return unavailable("[server] gRPC cannot listen on ", address);
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() {
  drain(std::chrono::milliseconds(0));
  impl_->server->Wait();  // every RPC finished (infer completions come from the Manager)
}

uint16_t GrpcServer::port() const { return static_cast<uint16_t>(impl_->port); }

void GrpcServer::drain(std::chrono::milliseconds deadline) {
  if (impl_->shut) return;
  impl_->shut = true;
  impl_->server->Shutdown(std::chrono::system_clock::now() + deadline);
}

}  // namespace orchard::server
