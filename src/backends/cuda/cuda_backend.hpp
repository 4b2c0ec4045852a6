// The CUDA backend: a KernelBackend on one NVIDIA GPU (issue 8). Device memory comes from a stream-ordered
// pool with a byte cap, host↔device copies go through pinned staging buffers, each run gets its own stream
// (with a cuBLAS handle), and every CUDA error becomes a Status naming the call.
// Layer: backends. Only registry.cpp (through cuda_factory.hpp) and tests include this header.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cuda/cuda_kernels.hpp"
#include "orchard/device_memory.hpp"
#include "runtime/kernel_backend.hpp"

namespace orchard::cuda {

// Returns a Status for a failed CUDA runtime call: "[cuda] cudaMalloc: out of memory (cudaErrorMemoryAllocation)".
Status cuda_error(cudaError_t err, const char* call);
// Returns a Status for a failed cuBLAS call.
Status cublas_error(cublasStatus_t err, const char* call);

#define ORCHARD_CUDA_CALL(call)                                                        \
  do {                                                                                 \
    const cudaError_t orchard_cuda_err_ = (call);                                      \
    if (orchard_cuda_err_ != cudaSuccess) return ::orchard::cuda::cuda_error(orchard_cuda_err_, #call); \
  } while (0)

struct CudaOptions {
  int device = 0;              // CUDA device ordinal
  uint64_t memory_limit = 0;   // > 0: this backend's own cap (bytes live at once); 0: the device's DeviceMemoryBudget
  bool float16 = false;        // partitions run float32 work in float16 (SessionOptions::precision)
  bool graphs = true;          // partition runs are replayed as CUDA graphs per input signature (cuda_graph.hpp)
};

class CudaBackend;

// Page-locked host blocks reused for staging copies (kept by size; never returned to the driver until exit).
class PinnedPool {
 public:
  ~PinnedPool();
  // Returns a pinned block of at least `bytes`, or null when cudaMallocHost fails.
  void* acquire(size_t bytes, size_t* out_capacity);
  // Returns a block obtained from acquire().
  void release(void* p, size_t capacity);

 private:
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
};

// Device memory from the backend's stream-ordered pool (cudaMallocFromPoolAsync on the calling run's stream,
// or the legacy default stream outside a run), charged to the device's DeviceMemoryBudget (its cap, if any).
class CudaAllocator final : public Allocator {
 public:
  CudaAllocator(int device, uint64_t limit);
  ~CudaAllocator() override;
  Status init();
  void* allocate(size_t bytes, size_t alignment) override;
  void deallocate(void* p, size_t bytes) override;
  MemoryPlace place() const override { return {MemoryKind::device, device_}; }
  // Returns the bytes handed out and not yet returned.
  int64_t live_bytes() const { return live_.load(); }
  // Returns the most bytes live at once since construction.
  int64_t peak_bytes() const { return peak_.load(); }
  // While set (non-null), this thread's allocations are also recorded in `*out` (a CUDA graph capture).
  static void track_allocations(std::vector<void*>* out);
  // The blocks were allocated in a capture that failed: no graph owns them, so deallocate must not free them.
  void abandon(const std::vector<void*>& blocks);

 private:
  int device_;
  std::shared_ptr<DeviceMemoryBudget> budget_;
  cudaMemPool_t pool_ = nullptr;
  std::atomic<int64_t> live_{0}, peak_{0};
  std::mutex abandoned_mu_;
  std::vector<void*> abandoned_;
  std::atomic<bool> any_abandoned_{false};
};

// One run's stream on the GPU: the cudaStream_t its kernels and copies are queued on, a cuBLAS handle bound
// to it, the pinned staging blocks its pending uploads read (recycled at synchronize) and the record where its
// kernels report bad input found on the device. `pooled`: the cudaStream_t goes back to the backend's pool at
// destruction instead of being destroyed.
class CudaStream final : public runtime::Stream {
 public:
  CudaStream(const CudaBackend& backend, cudaStream_t stream, bool pooled = false)
      : backend_(backend), stream_(stream), pooled_(pooled) {}
  ~CudaStream() override;
  Result<std::unique_ptr<runtime::Event>> record() override;
  // Waits for the queued work; then a fault a kernel reported (DeviceFault) fails the call with a message
  // naming it (invalid_argument), and the record is cleared for the stream's next use.
  Status synchronize() override;
  // Returns where kernels queued now report faults: the record of a CUDA graph being captured (redirect_faults),
  // else this stream's own pinned one (made on first use). Null when pinned memory cannot be had.
  DeviceFault* fault_record();
  // Makes kernels queued on this stream report into `record` (a graph's own, read at each replay).
  void redirect_faults(DeviceFault* record) { redirect_ = record; }
  // Returns whether fault_record() was asked for since construction.
  bool faults_used() const { return faults_used_; }
  cudaStream_t get() const { return stream_; }
  // Returns this stream's cuBLAS handle (taken from the backend's pool on first use).
  Result<cublasHandle_t> blas();
  // Returns a pinned block of `bytes` that stays valid until the next synchronize().
  Result<void*> staging(size_t bytes);
  // Returns the staging blocks in use and forgets them (a captured graph's uploads read them at every replay).
  std::vector<std::pair<void*, size_t>> take_staging();
  // Makes cuBLAS on this stream use `bytes` at `p` as its workspace (a graph capture's own), instead of the
  // handle's default pool.
  Status set_blas_workspace(void* p, size_t bytes);
  // Returns whether work queued now is being captured into a CUDA graph.
  bool capturing() const;

 private:
  const CudaBackend& backend_;
  cudaStream_t stream_;
  bool pooled_ = false;
  DeviceFault* fault_ = nullptr;  // pinned, this stream's own
  size_t fault_capacity_ = 0;
  DeviceFault* redirect_ = nullptr;
  bool faults_used_ = false;
  cublasHandle_t blas_ = nullptr;
  void* blas_ws_ = nullptr;
  size_t blas_ws_bytes_ = 0;
  std::vector<std::pair<void*, size_t>> staged_;
  void recycle_staging();
};

// Sets this thread's current stream for the lifetime of the object (restoring the previous one: nested runs).
class StreamScope {
 public:
  explicit StreamScope(CudaStream* s);
  ~StreamScope();
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  CudaStream* prev_;
};

// Returns the stream of the run whose CUDA partition this thread is executing, or null outside one.
CudaStream* current_stream();
// Returns the cudaStream_t kernels of this thread should use (the run's stream, else the legacy default).
cudaStream_t current_cuda_stream();

class CudaTransfer final : public runtime::DataTransfer {
 public:
  explicit CudaTransfer(int device) : device_(device) {}
  bool can_copy(MemoryPlace src, MemoryPlace dst) const override;
  Status copy(const Tensor& src, Tensor& dst, runtime::Stream* stream) const override;

 private:
  int device_;
};

class CudaBackend final : public runtime::KernelBackend {
 public:
  // Returns the backend on `options.device`, or an error when there is no such usable device.
  static Result<std::shared_ptr<CudaBackend>> create(const CudaOptions& options);
  ~CudaBackend() override;

  Allocator& allocator() const override { return *allocator_; }
  const runtime::DataTransfer& transfer() const override { return transfer_; }
  Result<std::unique_ptr<runtime::Stream>> new_stream() const override;
  // Returns a non-blocking stream to capture CUDA graphs on (the legacy stream's work of other threads does
  // not touch it, so it cannot invalidate a capture).
  Result<std::unique_ptr<CudaStream>> new_capture_stream() const;
  // Wraps KernelBackend::compile so that kernels of the partition see the run's stream (current_stream()).
  // In float16 mode the partition is compiled from a copy of its graph whose float32 constants are float16,
  // and its float32 inputs and outputs are cast at the edge.
  Result<std::unique_ptr<runtime::Executable>> compile(const runtime::CompileContext& ctx) const override;
  // The kernel table's answer, less the nodes whose attributes or arity the CUDA kernels do not take.
  runtime::Capability get_capability(const runtime::GraphView& view) const override;

  int ordinal() const { return options_.device; }
  bool float16() const { return options_.float16; }
  // cuDNN's float16 tensor-core convolutions are NHWC kernels (NCHW ones transpose on the way); float32 without
  // TF32 keeps NCHW. ORCHARD_CUDA_CHANNELS_LAST=0 keeps NCHW in float16 too (on an H100, NHWC took resnet50 from
  // 0.96 / 3.62 ms to 0.40 / 1.61 at batch 1 / 32, and cost mobilenet_v2 at batch 1 0.42 → 0.51: bench/RESULTS.md).
  bool prefers_channels_last() const override;
  // Returns whether partition runs go through CUDA graphs (CudaOptions::graphs).
  bool graphs() const { return options_.graphs; }
  // Returns the pool for what only the graph code does to it (abandoning a failed capture's blocks).
  CudaAllocator& cuda_allocator_mut() const { return *allocator_; }
  const CudaAllocator& cuda_allocator() const { return *allocator_; }
  PinnedPool& pinned() const { return pinned_; }
  // Returns a cuBLAS handle from the pool (made when the pool is empty).
  Result<cublasHandle_t> acquire_blas() const;
  // Returns a handle obtained from acquire_blas().
  void release_blas(cublasHandle_t h) const;
  // Returns a stream taken by new_stream() to the pool once its work is done (a run's stream is reused by
  // the next run instead of created and destroyed each time).
  void release_stream(cudaStream_t s) const;

 private:
  CudaBackend(runtime::DeviceInfo info, const CudaOptions& options);
  CudaOptions options_;
  std::unique_ptr<CudaAllocator> allocator_;
  CudaTransfer transfer_;
  mutable PinnedPool pinned_;
  mutable std::mutex blas_mu_;
  mutable std::vector<cublasHandle_t> blas_free_;
  mutable std::vector<cudaStream_t> stream_free_;  // guarded by blas_mu_
};

// Returns the CUDA kernel table (cuda_kernel_table.cpp).
std::span<const runtime::KernelDef> cuda_kernels();
// Returns why the CUDA kernels cannot run `node` although the table has its op and dtype, or "" when they can
// (cuda_kernel_table.cpp).
std::string cuda_declines(const runtime::GraphView& view, const graph::Node& node);
// Returns `cap` (the kernel table's answer) less the nodes cuda_declines() names, with their reasons.
runtime::Capability drop_declined(runtime::Capability cap, const runtime::GraphView& view);

}  // namespace orchard::cuda
