#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/cublas_loader.hpp"

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <cstring>
#include <string>

#include "backends/cuda/cuda_factory.hpp"
#include "backends/cuda/cuda_graph.hpp"
#include "backends/float16_partition.hpp"
#include "backends/cuda/cuda_ops.hpp"
#include "runtime/executor.hpp"

namespace orchard::cuda {

Status cuda_error(cudaError_t err, const char* call) {
  return unavailable("[cuda] ", call, ": ", cudaGetErrorString(err), " (", cudaGetErrorName(err), ")");
}

Status cublas_error(cublasStatus_t err, const char* call) {
  auto api = cublas_api();
  return unavailable("[cuda] ", call, ": ", api.ok() ? (*api)->status_string(err) : "cuBLAS not loaded", " (cuBLAS status ",
                     static_cast<int>(err), ")");
}

namespace {
thread_local CudaStream* t_stream = nullptr;
thread_local std::vector<void*>* t_tracked = nullptr;
}  // namespace

StreamScope::StreamScope(CudaStream* s) : prev_(t_stream) { t_stream = s; }
StreamScope::~StreamScope() { t_stream = prev_; }

CudaStream* current_stream() { return t_stream; }
cudaStream_t current_cuda_stream() { return t_stream ? t_stream->get() : cudaStreamLegacy; }

// ---- pinned staging ----

PinnedPool::~PinnedPool() {
  for (auto& [size, p] : free_) cudaFreeHost(p);
}

void* PinnedPool::acquire(size_t bytes, size_t* out_capacity) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.lower_bound(bytes);
    if (it != free_.end() && it->first <= 4 * bytes + 4096) {
      void* p = it->second;
      *out_capacity = it->first;
      free_.erase(it);
      return p;
    }
  }
  const size_t cap = bytes < 4096 ? 4096 : bytes;
  void* p = nullptr;
  if (cudaMallocHost(&p, cap) != cudaSuccess) return nullptr;
  *out_capacity = cap;
  return p;
}

void PinnedPool::release(void* p, size_t capacity) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.emplace(capacity, p);
}

// ---- device memory ----

CudaAllocator::CudaAllocator(int device, uint64_t limit)
    : device_(device),
      budget_(limit > 0 ? std::make_shared<DeviceMemoryBudget>("cuda:" + std::to_string(device), static_cast<int64_t>(limit))
                        : device_memory_budget("cuda:" + std::to_string(device))) {}

CudaAllocator::~CudaAllocator() {
  if (pool_) cudaMemPoolDestroy(pool_);
}

Status CudaAllocator::init() {
  cudaMemPoolProps props;
  std::memset(&props, 0, sizeof(props));
  props.allocType = cudaMemAllocationTypePinned;
  props.handleTypes = cudaMemHandleTypeNone;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device_;
  props.maxSize = 0;
  ORCHARD_CUDA_CALL(cudaMemPoolCreate(&pool_, &props));
  // Freed blocks stay in the pool for the next run instead of going back to the driver at each synchronize.
  uint64_t keep = UINT64_MAX;
  ORCHARD_CUDA_CALL(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep));
  return Status::OK();
}

void* CudaAllocator::allocate(size_t bytes, size_t alignment) {
  (void)alignment;  // pool blocks are 256-byte aligned, above Tensor::kAlignment
  const size_t size = bytes == 0 ? 256 : bytes;
  if (!budget_->try_charge(static_cast<int64_t>(size))) return nullptr;  // the cap: the run names it
  const int64_t now = live_.fetch_add(static_cast<int64_t>(size)) + static_cast<int64_t>(size);
  void* p = nullptr;
  if (cudaMallocFromPoolAsync(&p, size, pool_, current_cuda_stream()) != cudaSuccess) {
    cudaGetLastError();
    live_.fetch_sub(static_cast<int64_t>(size));
    budget_->release(static_cast<int64_t>(size));
    return nullptr;
  }
  int64_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  if (t_tracked) t_tracked->push_back(p);
  return p;
}

void CudaAllocator::track_allocations(std::vector<void*>* out) { t_tracked = out; }

void CudaAllocator::abandon(const std::vector<void*>& blocks) {
  if (blocks.empty()) return;
  std::lock_guard<std::mutex> lock(abandoned_mu_);
  abandoned_.insert(abandoned_.end(), blocks.begin(), blocks.end());
  any_abandoned_.store(true);
}

void CudaAllocator::deallocate(void* p, size_t bytes) {
  if (t_tracked) {
    // Freed inside the capture that allocated it: the graph frees it itself.
    auto it = std::find(t_tracked->begin(), t_tracked->end(), p);
    if (it != t_tracked->end()) t_tracked->erase(it);
  }
  if (any_abandoned_.load()) {
    std::lock_guard<std::mutex> lock(abandoned_mu_);
    auto it = std::find(abandoned_.begin(), abandoned_.end(), p);
    if (it != abandoned_.end()) {
      // Its address came from a graph that was never instantiated: freeing it could free another block.
      abandoned_.erase(it);
      any_abandoned_.store(!abandoned_.empty());
      live_.fetch_sub(static_cast<int64_t>(bytes == 0 ? 256 : bytes));
      budget_->release(static_cast<int64_t>(bytes == 0 ? 256 : bytes));
      return;
    }
  }
  // Stream-ordered: on the run's stream the block is reused only after the work queued so far; outside a
  // run, the legacy stream waits for all work of the (blocking) run streams.
  cudaFreeAsync(p, current_cuda_stream());
  live_.fetch_sub(static_cast<int64_t>(bytes == 0 ? 256 : bytes));
  budget_->release(static_cast<int64_t>(bytes == 0 ? 256 : bytes));
}

// ---- streams and events ----

namespace {
class CudaEvent final : public runtime::Event {
 public:
  explicit CudaEvent(cudaEvent_t e) : e_(e) {}
  ~CudaEvent() override { cudaEventDestroy(e_); }
  Status wait() override {
    ORCHARD_CUDA_CALL(cudaEventSynchronize(e_));
    return Status::OK();
  }

 private:
  cudaEvent_t e_;
};
}  // namespace

CudaStream::~CudaStream() {
  // Work still queued may read the staging blocks, the cuBLAS workspace and the fault record: let it finish.
  const bool idle = cudaStreamSynchronize(stream_) == cudaSuccess;
  recycle_staging();
  if (fault_) backend_.pinned().release(fault_, fault_capacity_);
  if (blas_) backend_.release_blas(blas_);
  if (pooled_ && idle) {
    backend_.release_stream(stream_);
  } else {
    cudaStreamDestroy(stream_);
  }
}

DeviceFault* CudaStream::fault_record() {
  faults_used_ = true;
  if (redirect_) return redirect_;
  if (!fault_) {
    fault_ = static_cast<DeviceFault*>(backend_.pinned().acquire(sizeof(DeviceFault), &fault_capacity_));
    if (fault_) *fault_ = DeviceFault{};
  }
  return fault_;
}

namespace {
// The message of a fault a kernel reported.
Status fault_status(const DeviceFault& f) {
  if (f.code == FaultCode::gather_index) {
    return invalid_argument("[Gather] index ", f.value, " out of range for axis size ", f.limit);
  }
  return internal_error("[cuda] a kernel reported fault code ", static_cast<int>(f.code));
}
}  // namespace

Result<std::unique_ptr<runtime::Event>> CudaStream::record() {
  cudaEvent_t e = nullptr;
  ORCHARD_CUDA_CALL(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  if (cudaError_t err = cudaEventRecord(e, stream_); err != cudaSuccess) {
    cudaEventDestroy(e);
    return cuda_error(err, "cudaEventRecord");
  }
  return std::unique_ptr<runtime::Event>(new CudaEvent(e));
}

Status CudaStream::synchronize() {
  ORCHARD_CUDA_CALL(cudaStreamSynchronize(stream_));
  recycle_staging();
  if (fault_ && fault_->code != FaultCode::none) {
    const DeviceFault f = *fault_;
    *fault_ = DeviceFault{};
    return fault_status(f);
  }
  return Status::OK();
}

Result<cublasHandle_t> CudaStream::blas() {
  if (blas_) return blas_;
  ORCHARD_ASSIGN_OR_RETURN(cublasHandle_t h, backend_.acquire_blas());
  // cublasSetStream also puts the handle back on its default workspace: done once, when the handle is taken.
  if (cublasStatus_t st = (*cublas_api())->set_stream(h, stream_); st != CUBLAS_STATUS_SUCCESS) {
    backend_.release_blas(h);
    return cublas_error(st, "cublasSetStream");
  }
  blas_ = h;
  if (blas_ws_) ORCHARD_RETURN_IF_ERROR(set_blas_workspace(blas_ws_, blas_ws_bytes_));
  return blas_;
}

Status CudaStream::set_blas_workspace(void* p, size_t bytes) {
  blas_ws_ = p;
  blas_ws_bytes_ = bytes;
  if (!blas_) return Status::OK();
  if (cublasStatus_t st = (*cublas_api())->set_workspace(blas_, p, bytes); st != CUBLAS_STATUS_SUCCESS) {
    return cublas_error(st, "cublasSetWorkspace");
  }
  return Status::OK();
}

bool CudaStream::capturing() const {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  return cudaStreamIsCapturing(stream_, &st) == cudaSuccess && st != cudaStreamCaptureStatusNone;
}

std::vector<std::pair<void*, size_t>> CudaStream::take_staging() { return std::exchange(staged_, {}); }

Result<void*> CudaStream::staging(size_t bytes) {
  size_t cap = 0;
  void* p = backend_.pinned().acquire(bytes, &cap);
  if (!p) return out_of_memory("[cuda] cannot allocate ", bytes, " bytes of pinned host memory for a copy");
  staged_.emplace_back(p, cap);
  return p;
}

void CudaStream::recycle_staging() {
  for (auto& [p, cap] : staged_) backend_.pinned().release(p, cap);
  staged_.clear();
}

// ---- transfer ----

bool CudaTransfer::can_copy(MemoryPlace src, MemoryPlace dst) const {
  const MemoryPlace dev{MemoryKind::device, device_};
  return (src == dev && (dst == dev || dst.host_visible())) || (dst == dev && src.host_visible());
}

Status CudaTransfer::copy(const Tensor& src, Tensor& dst, runtime::Stream* stream) const {
  if (src.dtype() != dst.dtype() || src.numel() != dst.numel() || src.dtype() == DType::string) {
    return invalid_argument("[cuda] cannot copy ", src.description(), " into ", dst.description());
  }
  if (!can_copy(src.place(), dst.place())) {
    return invalid_argument("[cuda] no copy from ", src.place().to_string(), " to ", dst.place().to_string());
  }
  const size_t n = src.nbytes();
  if (n == 0) return Status::OK();
  auto* cs = static_cast<CudaStream*>(stream);
  if (cs && cs->capturing() && (dst.place().host_visible() || src.place().kind == MemoryKind::pinned_host)) {
    // A replay would not bring the bytes to the host again (or would read the caller's pinned buffer as it
    // is then): such a partition runs without a graph.
    return unavailable("[cuda] a copy between ", src.place().to_string(), " and ", dst.place().to_string(),
                       " cannot be captured in a CUDA graph");
  }
  if (!cs) {
    ORCHARD_CUDA_CALL(cudaMemcpy(dst.raw_data(), src.raw_data(), n, cudaMemcpyDefault));
    return Status::OK();
  }
  if (src.place().host_visible() && src.place().kind != MemoryKind::pinned_host) {
    // Pageable host memory: stage through a pinned block so that the upload is truly asynchronous and the
    // caller may free its buffer at once.
    ORCHARD_ASSIGN_OR_RETURN(void* staged, cs->staging(n));
    std::memcpy(staged, src.raw_data(), n);
    ORCHARD_CUDA_CALL(cudaMemcpyAsync(dst.raw_data(), staged, n, cudaMemcpyHostToDevice, cs->get()));
    return Status::OK();
  }
  // Device to pageable host returns once the bytes have arrived; device to device and pinned are queued.
  ORCHARD_CUDA_CALL(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), n, cudaMemcpyDefault, cs->get()));
  return Status::OK();
}

// ---- backend ----

namespace {
// Sets the run's stream as this thread's current stream while the wrapped kernel executable runs. Outputs
// stay in device memory: the executor moves them to the host where the host reads them (CPU partitions,
// subgraph outputs, top-level outputs unless RunOptions::device_outputs).
// With graphs on, the run goes through the partition's CUDA graphs (cuda_graph.hpp).
class CudaExecutable final : public runtime::Executable {
 public:
  CudaExecutable(std::unique_ptr<runtime::Executable> inner, const CudaBackend& backend, std::string label)
      : inner_(std::move(inner)), backend_(backend),
        graphs_(backend.graphs() ? std::make_unique<PartitionGraphs>(backend, std::move(label)) : nullptr) {}
  Status run(runtime::ExecContext& ctx) const override {
    if (!ctx.stream) return internal_error("[cuda] partition run without a stream");
    ORCHARD_CUDA_CALL(cudaSetDevice(backend_.ordinal()));
    StreamScope scope(static_cast<CudaStream*>(ctx.stream));
    if (graphs_) return graphs_->run(*inner_, ctx);
    return inner_->run(ctx);
  }
  bool reads_on_host(size_t i) const override { return inner_->reads_on_host(i); }

 private:
  std::unique_ptr<runtime::Executable> inner_;
  const CudaBackend& backend_;
  std::unique_ptr<PartitionGraphs> graphs_;
};

// float16 mode: casts a float32/float16 tensor in device memory on the run's stream (the current stream).
Result<Tensor> cast_on_device(const Tensor& t, DType to, runtime::ExecContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(Tensor out, Tensor::create(to, t.shape(), ctx.allocator));
  ORCHARD_ASSIGN_OR_RETURN(Elem ef, elem_of(t.dtype()));
  ORCHARD_ASSIGN_OR_RETURN(Elem et, elem_of(to));
  ORCHARD_RETURN_IF_ERROR(
      launch_status(cast(ef, et, t.raw_data(), out.raw_data(), t.numel(), current_cuda_stream()), "float16 edge cast"));
  return out;
}
}  // namespace

CudaBackend::CudaBackend(runtime::DeviceInfo info, const CudaOptions& options)
    : KernelBackend(std::move(info), cuda_kernels(), 0, /*static_table=*/true),
      options_(options),
      allocator_(std::make_unique<CudaAllocator>(options.device, options.memory_limit)),
      transfer_(options.device) {}

CudaBackend::~CudaBackend() {
  for (cublasHandle_t h : blas_free_) (*cublas_api())->destroy(h);
  for (cudaStream_t s : stream_free_) cudaStreamDestroy(s);
}

bool CudaBackend::prefers_channels_last() const {
  static const bool off = [] {
    const char* e = std::getenv("ORCHARD_CUDA_CHANNELS_LAST");
    return e && std::string(e) == "0";
  }();
  return options_.float16 && !off;
}

Result<std::shared_ptr<CudaBackend>> CudaBackend::create(const CudaOptions& options) {
  int count = 0;
  ORCHARD_CUDA_CALL(cudaGetDeviceCount(&count));
  if (options.device < 0 || options.device >= count) {
    return not_found("[cuda] device ", options.device, " not present (", count, " CUDA devices)");
  }
  ORCHARD_RETURN_IF_ERROR(cublas_api().status());  // loaded only once a device is known to exist
  ORCHARD_CUDA_CALL(cudaSetDevice(options.device));
  cudaDeviceProp prop;
  ORCHARD_CUDA_CALL(cudaGetDeviceProperties(&prop, options.device));
  size_t free_bytes = 0, total_bytes = 0;
  ORCHARD_CUDA_CALL(cudaMemGetInfo(&free_bytes, &total_bytes));
  runtime::DeviceInfo info;
  info.name = "cuda";
  info.kind = runtime::DeviceKind::gpu;
  info.description = std::string(prop.name) + ", sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
                     std::to_string(prop.multiProcessorCount) + " SMs";
  info.memory.total = total_bytes;
  info.memory.free = free_bytes;
  const int64_t cap = options.memory_limit ? static_cast<int64_t>(options.memory_limit)
                                           : device_memory_budget("cuda:" + std::to_string(options.device))->limit();
  info.memory.recommended_working_set = cap > 0 ? std::min(static_cast<uint64_t>(cap), free_bytes) : free_bytes;
  info.caps.async_copies = true;
  info.caps.fp16 = true;
  std::shared_ptr<CudaBackend> b(new CudaBackend(std::move(info), options));
  ORCHARD_RETURN_IF_ERROR(b->allocator_->init());
  return b;
}

Result<std::unique_ptr<runtime::Stream>> CudaBackend::new_stream() const {
  ORCHARD_CUDA_CALL(cudaSetDevice(options_.device));
  cudaStream_t s = nullptr;
  {
    std::lock_guard<std::mutex> lock(blas_mu_);
    if (!stream_free_.empty()) {
      s = stream_free_.back();
      stream_free_.pop_back();
    }
  }
  // A blocking stream: work on the legacy default stream (frees outside a run, compile-time uploads) orders
  // with it.
  if (!s) ORCHARD_CUDA_CALL(cudaStreamCreate(&s));
  return std::unique_ptr<runtime::Stream>(new CudaStream(*this, s, true));
}

void CudaBackend::release_stream(cudaStream_t s) const {
  std::lock_guard<std::mutex> lock(blas_mu_);
  stream_free_.push_back(s);
}

Result<std::unique_ptr<CudaStream>> CudaBackend::new_capture_stream() const {
  cudaStream_t s = nullptr;
  ORCHARD_CUDA_CALL(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return std::make_unique<CudaStream>(*this, s);
}

Result<std::unique_ptr<runtime::Executable>> CudaBackend::compile(const runtime::CompileContext& ctx) const {
  ORCHARD_CUDA_CALL(cudaSetDevice(options_.device));
  std::unique_ptr<runtime::Executable> inner;
  if (options_.float16) {
    auto base = [this](const runtime::CompileContext& c) { return KernelBackend::compile(c); };
    // The CUDA kernels keep no pointer into the constants (uploaded at compile): the host copies go.
    ORCHARD_ASSIGN_OR_RETURN(inner, backends::compile_half(ctx, base, cast_on_device, true));
  } else {
    ORCHARD_ASSIGN_OR_RETURN(inner, KernelBackend::compile(ctx));
  }
  // Constants were uploaded on the legacy stream: finish before any run's stream reads them.
  ORCHARD_CUDA_CALL(cudaStreamSynchronize(cudaStreamLegacy));
  const auto& nodes = ctx.partition.nodes;
  std::string label = nodes.empty() ? "empty partition"
                                    : ctx.partition.graph->nodes[static_cast<size_t>(nodes.front())].label() + " and " +
                                          std::to_string(nodes.size() - 1) + " more nodes";
  return std::unique_ptr<runtime::Executable>(new CudaExecutable(std::move(inner), *this, std::move(label)));
}

runtime::Capability CudaBackend::get_capability(const runtime::GraphView& view) const {
  return drop_declined(KernelBackend::get_capability(view), view);
}

Result<cublasHandle_t> CudaBackend::acquire_blas() const {
  {
    std::lock_guard<std::mutex> lock(blas_mu_);
    if (!blas_free_.empty()) {
      cublasHandle_t h = blas_free_.back();
      blas_free_.pop_back();
      return h;
    }
  }
  cublasHandle_t h = nullptr;
  ORCHARD_ASSIGN_OR_RETURN(const CublasApi* api, cublas_api());
  if (cublasStatus_t st = api->create(&h); st != CUBLAS_STATUS_SUCCESS) return cublas_error(st, "cublasCreate");
  // float32 stays float32: no TF32 tensor-core rounding unless a future option asks for it.
  if (cublasStatus_t st = api->set_math_mode(h, CUBLAS_DEFAULT_MATH); st != CUBLAS_STATUS_SUCCESS) {
    api->destroy(h);
    return cublas_error(st, "cublasSetMathMode");
  }
  return h;
}

void CudaBackend::release_blas(cublasHandle_t h) const {
  std::lock_guard<std::mutex> lock(blas_mu_);
  blas_free_.push_back(h);
}

namespace {
std::shared_ptr<CudaBackend> make_shared_backend(bool float16, bool graphs) {
  CudaOptions options;
  options.float16 = float16;
  options.graphs = graphs;
  // The device's cap, like ONNX Runtime's gpu_mem_limit (bytes; ManagerConfig::device_memory_mb sets it too).
  if (const char* limit = std::getenv("ORCHARD_CUDA_MEM_LIMIT")) {
    device_memory_budget("cuda:0")->set_limit(static_cast<int64_t>(std::strtoull(limit, nullptr, 10)));
  }
  auto b = CudaBackend::create(options);
  if (!b.ok()) {
    cudaGetLastError();
    return nullptr;
  }
  return std::move(b).value();
}
}  // namespace

std::shared_ptr<runtime::Backend> make_cuda_backend(const SessionOptions& session) {
  // One backend per process, precision and graph mode (its memory pool, pinned blocks and cuBLAS handles are
  // shared by the sessions using it).
  static std::mutex mu;
  static std::shared_ptr<CudaBackend> backends[2][2];
  static bool made[2][2] = {};
  const int half = session.precision == Precision::float16 ? 1 : 0;
  // CUDA graphs unless ORCHARD_CUDA_GRAPHS=0 when the session is made (`orchard run|bench --no-cuda-graphs`).
  const char* env = std::getenv("ORCHARD_CUDA_GRAPHS");
  const int graphs = env && std::string(env) == "0" ? 0 : 1;
  std::lock_guard<std::mutex> lock(mu);
  if (!made[half][graphs]) {
    backends[half][graphs] = make_shared_backend(half != 0, graphs != 0);
    made[half][graphs] = true;
  }
  return backends[half][graphs];
}

}  // namespace orchard::cuda
