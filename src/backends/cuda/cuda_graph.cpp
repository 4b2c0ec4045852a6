#include "backends/cuda/cuda_graph.hpp"

#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "backends/cuda/cuda_backend.hpp"
#include "core/logging.hpp"
#include "runtime/executor.hpp"

namespace orchard::cuda {

namespace {

std::atomic<int64_t> g_captured{0}, g_replayed{0}, g_refused{0};

constexpr size_t kMaxSignatures = 8;           // per partition; further signatures run without a graph
constexpr size_t kMaxHostInputBytes = 64 << 10;  // host inputs baked into a graph (and its key), all together
constexpr int64_t kBlasWorkspace = 4 << 20;    // bytes of cuBLAS workspace a graph allocates for itself

template <typename T>
void append(std::string& key, T v) {
  key.append(reinterpret_cast<const char*>(&v), sizeof(v));
}

// Returns the key of the inputs' signature, or nothing when a graph cannot stand for such inputs (a sequence,
// or host inputs too large to bake into a graph and compare).
std::optional<std::string> signature(const runtime::ExecContext& ctx) {
  std::string key;
  size_t host_bytes = 0;
  for (const Value* v : ctx.inputs) {
    if (!v || v->kind() == Value::Kind::none) {
      key += 'n';
      continue;
    }
    if (!v->is_tensor()) return std::nullopt;
    const Tensor& t = v->tensor();
    const bool host = t.place().host_visible();
    key += host ? 'h' : 'd';
    append(key, static_cast<int>(t.dtype()));
    append(key, t.rank());
    for (int64_t d : t.shape()) append(key, d);
    if (host) {
      if (t.dtype() == DType::string) return std::nullopt;
      host_bytes += t.nbytes();
      if (host_bytes > kMaxHostInputBytes) return std::nullopt;
      key.append(static_cast<const char*>(t.raw_data()), t.nbytes());
    }
  }
  return key;
}

// Copies the captured outputs in device memory into blocks of the pool allocated outside the graph (the last
// nodes of the graph), so that no graph allocation outlives a launch: the outputs' graph memory is freed in the
// graph when `outs` drops it. Host outputs stay as they are. `tracked`: the capture's allocation record.
Status keep_outputs(std::vector<Value>& outs, cudaStream_t capture, Allocator& alloc, std::vector<void*>* tracked) {
  for (Value& v : outs) {
    if (!v.is_tensor() || v.tensor().place().host_visible()) continue;
    const Tensor& src = v.tensor();
    std::optional<Result<Tensor>> buf;
    {
      // An ordinary pool block, allocated on the legacy stream outside the capture (relaxed mode for the call).
      cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
      ORCHARD_CUDA_CALL(cudaThreadExchangeStreamCaptureMode(&mode));
      StreamScope outside(nullptr);
      CudaAllocator::track_allocations(nullptr);
      buf.emplace(Tensor::create(src.dtype(), src.shape(), alloc));
      CudaAllocator::track_allocations(tracked);
      ORCHARD_CUDA_CALL(cudaThreadExchangeStreamCaptureMode(&mode));
    }
    if (!buf->ok()) return buf->status();
    Tensor dst = std::move(*buf).value();
    if (src.nbytes()) {
      ORCHARD_CUDA_CALL(
          cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDeviceToDevice, capture));
    }
    v = Value(std::move(dst));
  }
  return Status::OK();
}

}  // namespace

GraphCounters graph_counters() { return {g_captured.load(), g_replayed.load(), g_refused.load()}; }

struct PartitionGraphs::Entry {
  const CudaBackend* backend = nullptr;
  std::mutex mu;
  int runs = 0;         // runs of the signature before its capture
  std::string refused;  // why the capture failed ("" when it has not)
  cudaGraphExec_t exec = nullptr;
  cudaEvent_t done = nullptr;  // recorded after each replay's last copy
  bool done_recorded = false;
  std::vector<Value> inputs;   // per partition input: the graph's buffer (device inputs), else none
  std::vector<Value> outputs;  // as captured: graph memory (copied out at each replay), or host values
  std::vector<std::pair<void*, size_t>> staging;  // pinned blocks the graph's uploads read
  // Where the graph's kernels report faults (pinned); each replay moves a fault to the run's stream record.
  DeviceFault* fault = nullptr;
  size_t fault_capacity = 0;

  ~Entry() {
    if (done_recorded) cudaEventSynchronize(done);
    outputs.clear();
    inputs.clear();
    if (exec) cudaGraphExecDestroy(exec);
    if (done) cudaEventDestroy(done);
    for (auto& [p, cap] : staging) backend->pinned().release(p, cap);
    if (fault) backend->pinned().release(fault, fault_capacity);
  }
};

PartitionGraphs::PartitionGraphs(const CudaBackend& backend, std::string label)
    : backend_(backend), label_(std::move(label)) {}

PartitionGraphs::~PartitionGraphs() = default;

Status PartitionGraphs::run(const runtime::Executable& inner, runtime::ExecContext& ctx) {
  if (ctx.env.profile) return inner.run(ctx);
  std::optional<std::string> key = signature(ctx);
  if (!key) return inner.run(ctx);
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(*key);
    if (it == entries_.end()) {
      if (entries_.size() >= kMaxSignatures) {
        log_once("cuda-graphs-full:" + label_, LogLevel::debug, "cuda", "no CUDA graph: too many input signatures",
                 {{"partition", label_}, {"limit", kMaxSignatures}});
        return inner.run(ctx);
      }
      it = entries_.emplace(std::move(*key), std::make_shared<Entry>()).first;
      it->second->backend = &backend_;
    }
    e = it->second;
  }
  std::unique_lock<std::mutex> lock(e->mu);
  if (e->exec) return replay(*e, ctx, true);
  if (!e->refused.empty() || e->runs++ == 0) {
    lock.unlock();
    return inner.run(ctx);
  }
  return capture(*e, inner, ctx);
}

Status PartitionGraphs::capture(Entry& e, const runtime::Executable& inner, runtime::ExecContext& ctx) {
  auto* run_stream = static_cast<CudaStream*>(ctx.stream);
  // The graph reads its own input buffers, filled from this run's inputs on the run's stream.
  e.inputs.assign(ctx.inputs.size(), Value());
  std::vector<const Value*> ptrs(ctx.inputs.begin(), ctx.inputs.end());
  for (size_t i = 0; i < ptrs.size(); ++i) {
    if (!ptrs[i] || !ptrs[i]->is_tensor() || ptrs[i]->tensor().place().host_visible()) continue;
    const Tensor& src = ptrs[i]->tensor();
    ORCHARD_ASSIGN_OR_RETURN(Tensor buf, Tensor::create(src.dtype(), src.shape(), backend_.allocator()));
    if (src.nbytes()) {
      ORCHARD_CUDA_CALL(cudaMemcpyAsync(buf.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDeviceToDevice,
                                        run_stream->get()));
    }
    e.inputs[i] = Value(std::move(buf));
    ptrs[i] = &e.inputs[i];
  }
  ORCHARD_ASSIGN_OR_RETURN(std::unique_ptr<CudaStream> cap, backend_.new_capture_stream());
  // Handles are taken before the capture: making one allocates, which a capture does not allow.
  ORCHARD_RETURN_IF_ERROR(cap->blas().status());
  // The graph's kernels report faults into a record of its own (the run's differs at each replay).
  if (!e.fault) {
    e.fault = static_cast<DeviceFault*>(backend_.pinned().acquire(sizeof(DeviceFault), &e.fault_capacity));
    if (!e.fault) return out_of_memory("[cuda] no pinned memory for a CUDA graph's fault record");
  }
  *e.fault = DeviceFault{};
  cap->redirect_faults(e.fault);
  runtime::Frame scratch = ctx.frame;  // the kernels' intermediate values of the capture go here
  std::vector<Value> outs(ctx.outputs.size());
  std::vector<void*> allocs;  // made in the capture and not freed in it
  Status st;
  cudaGraph_t graph = nullptr;
  {
    StreamScope scope(cap.get());
    CudaAllocator::track_allocations(&allocs);
    const cudaError_t begin = cudaStreamBeginCapture(cap->get(), cudaStreamCaptureModeThreadLocal);
    if (begin != cudaSuccess) {
      st = cuda_error(begin, "cudaStreamBeginCapture");
    } else {
      {
        // The graph's own cuBLAS workspace: the handle's default one is shared with whoever takes it next.
        Result<Tensor> ws = Tensor::create(DType::uint8, Shape{kBlasWorkspace}, backend_.allocator());
        st = ws.ok() ? cap->set_blas_workspace(ws->raw_data(), static_cast<size_t>(kBlasWorkspace)) : ws.status();
        runtime::ExecContext cctx{ptrs, outs, scratch, ctx.env, ctx.allocator, cap.get()};
        if (st.ok()) st = inner.run(cctx);
        if (st.ok()) st = keep_outputs(outs, cap->get(), backend_.allocator(), &allocs);
        scratch.slots.clear();  // what the kernels left there is freed in the graph
      }  // the workspace is freed at the graph's end
      const cudaError_t end = cudaStreamEndCapture(cap->get(), &graph);
      if (st.ok() && end != cudaSuccess) st = cuda_error(end, "cudaStreamEndCapture");
    }
    CudaAllocator::track_allocations(nullptr);
  }
  cudaGraphExec_t exec = nullptr;
  if (st.ok()) {
    // Every allocation of the graph is freed in it (allocs is empty), so a replay needs no freeing first; the
    // flag only covers what a kernel might have kept.
    if (const cudaError_t err = cudaGraphInstantiateWithFlags(&exec, graph, cudaGraphInstantiateFlagAutoFreeOnLaunch);
        err != cudaSuccess) {
      st = cuda_error(err, "cudaGraphInstantiateWithFlags");
      exec = nullptr;
    }
  }
  if (graph) cudaGraphDestroy(graph);
  if (!exec) {
    cudaGetLastError();
    // No graph owns what the capture allocated: those addresses must never be freed.
    backend_.cuda_allocator_mut().abandon(allocs);
    outs.clear();
    scratch.slots.clear();
    e.inputs.clear();
    Status aborted = ctx.env.check_abort();
    if (!aborted.ok()) {
      e.runs = 1;  // a cancelled run says nothing about the partition: capture again next time
      return aborted;
    }
    e.refused = st.to_string();
    g_refused.fetch_add(1);
    log(LogLevel::debug, "cuda", "no CUDA graph for this input signature: the capture failed",
        {{"partition", label_}, {"reason", e.refused}});
    return inner.run(ctx);
  }
  e.exec = exec;
  if (!cap->faults_used()) {
    backend_.pinned().release(e.fault, e.fault_capacity);
    e.fault = nullptr;
  }
  ORCHARD_CUDA_CALL(cudaEventCreateWithFlags(&e.done, cudaEventDisableTiming));
  e.outputs = std::move(outs);
  e.staging = cap->take_staging();
  g_captured.fetch_add(1);
  log(LogLevel::debug, "cuda", "captured a CUDA graph", {{"partition", label_}});
  // The scratch frame's graph memory is freed after this first launch, on the run's stream.
  return replay(e, ctx, false);
}

Status PartitionGraphs::replay(Entry& e, runtime::ExecContext& ctx, bool copy_inputs) {
  cudaStream_t s = static_cast<CudaStream*>(ctx.stream)->get();
  if (e.done_recorded) ORCHARD_CUDA_CALL(cudaStreamWaitEvent(s, e.done, 0));
  if (copy_inputs) {
    for (size_t i = 0; i < e.inputs.size(); ++i) {
      if (!e.inputs[i].is_tensor()) continue;
      Tensor dst = e.inputs[i].tensor();  // a handle on the graph's buffer
      const Tensor& src = ctx.inputs[i]->tensor();
      if (dst.nbytes()) {
        ORCHARD_CUDA_CALL(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.nbytes(), cudaMemcpyDeviceToDevice, s));
      }
    }
  }
  ORCHARD_CUDA_CALL(cudaGraphLaunch(e.exec, s));
  if (e.fault) {
    DeviceFault* mine = static_cast<CudaStream*>(ctx.stream)->fault_record();
    if (!mine) return out_of_memory("[cuda] no pinned memory for the run's fault record");
    ORCHARD_CUDA_CALL(merge_fault(e.fault, mine, s));
  }
  for (size_t k = 0; k < e.outputs.size() && k < ctx.outputs.size(); ++k) {
    const Value& v = e.outputs[k];
    if (!v.is_tensor() || v.tensor().place().host_visible()) {
      ctx.outputs[k] = v;  // a host value depends only on what the key holds
      continue;
    }
    const Tensor& src = v.tensor();
    ORCHARD_ASSIGN_OR_RETURN(Tensor out, Tensor::create(src.dtype(), src.shape(), ctx.allocator));
    if (src.nbytes()) {
      ORCHARD_CUDA_CALL(cudaMemcpyAsync(out.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDeviceToDevice, s));
    }
    ctx.outputs[k] = Value(std::move(out));
  }
  ORCHARD_CUDA_CALL(cudaEventRecord(e.done, s));
  e.done_recorded = true;
  g_replayed.fetch_add(1);
  return Status::OK();
}

}  // namespace orchard::cuda
