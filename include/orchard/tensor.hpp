// Shape, Allocator, Tensor (owning or view; contiguous row-major) and Value (tensor, sequence or optional).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "orchard/dtype.hpp"
#include "orchard/status.hpp"

namespace orchard {

// Dimensions of a tensor, outermost first. A rank-0 shape (scalar) has one element.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}
  template <class It>
  Shape(It first, It last) : dims_(first, last) {}

  size_t rank() const { return dims_.size(); }
  int64_t operator[](size_t i) const { return dims_[i]; }
  int64_t& operator[](size_t i) { return dims_[i]; }
  // Returns the product of the dims (1 for a scalar).
  int64_t numel() const;
  const std::vector<int64_t>& dims() const { return dims_; }
  std::vector<int64_t>& dims() { return dims_; }
  auto begin() const { return dims_.begin(); }
  auto end() const { return dims_.end(); }
  void push_back(int64_t d) { dims_.push_back(d); }
  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }
  // Returns e.g. "[2,3,4]".
  std::string to_string() const;

 private:
  std::vector<int64_t> dims_;
};

// Where a tensor's bytes live. Host code may dereference a tensor's data only when host_visible().
enum class MemoryKind : unsigned char {
  host,         // ordinary CPU memory
  pinned_host,  // page-locked CPU memory (fast DMA to and from a device)
  unified,      // device memory the CPU can address too (Apple Silicon); host-visible
  device        // memory of an accelerator, reachable only through its backend's transfers
};

struct MemoryPlace {
  MemoryKind kind = MemoryKind::host;
  int device = 0;  // which device of its backend (0 for host memory)
  bool host_visible() const { return kind != MemoryKind::device; }
  bool operator==(const MemoryPlace&) const = default;
  // Returns "host", "pinned", "unified:0" or "device:1".
  std::string to_string() const;
};

// Source of aligned tensor memory. Implementations must be thread-safe.
class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns `bytes` of memory aligned to `alignment`, or nullptr when it cannot.
  virtual void* allocate(size_t bytes, size_t alignment) = 0;
  // Returns memory obtained from allocate(bytes, ...) on this allocator.
  virtual void deallocate(void* p, size_t bytes) = 0;
  // Returns where the memory this allocator hands out lives (default: host).
  virtual MemoryPlace place() const { return {}; }
};

// Returns the process-wide CPU allocator (64-byte aligned, malloc-backed).
Allocator& default_allocator();

// A dense, contiguous, row-major n-d array. Copies share storage (like a shared_ptr); clone() copies data.
class Tensor {
 public:
  static constexpr size_t kAlignment = 64;

  Tensor() = default;  // an undefined tensor: dtype undefined, no storage
  // Returns a tensor of uninitialized elements (strings are empty). Errors when the allocator fails.
  static Result<Tensor> create(DType dtype, Shape shape, Allocator& alloc = default_allocator());
  // Same, and the storage keeps `alloc` alive until it is freed (for per-request allocators).
  static Result<Tensor> create(DType dtype, Shape shape, std::shared_ptr<Allocator> alloc);
  // Like create, but aborts the process on allocation failure; for tests and small tensors.
  static Tensor empty(DType dtype, Shape shape);
  // Returns a zero-filled tensor (empty strings, false).
  static Tensor zeros(DType dtype, Shape shape);
  // Returns a non-owning view of `data`; the caller keeps it alive while any copy of the view exists.
  static Tensor view(DType dtype, Shape shape, void* data, MemoryPlace place = {});
  // Returns a tensor of `values` with `shape` (numel must match).
  template <class T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values);
  // Returns a rank-0 tensor holding `v`.
  template <class T>
  static Tensor scalar(T v) {
    return from_vector<T>(Shape{}, std::vector<T>{v});
  }

  bool defined() const { return dtype_ != DType::undefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  size_t rank() const { return shape_.rank(); }
  int64_t dim(size_t i) const { return shape_[i]; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  // True when this tensor owns (shares ownership of) its storage.
  bool owns_data() const { return owner_ != nullptr; }
  // Where the elements live; data() may be dereferenced on the CPU only when place().host_visible().
  MemoryPlace place() const { return place_; }

  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  template <class T>
  T* data() {
    return static_cast<T*>(data_);
  }
  template <class T>
  const T* data() const {
    return static_cast<const T*>(data_);
  }

  // Returns a tensor sharing this storage with another shape of the same numel.
  Tensor reshaped(Shape shape) const;
  // Returns an owning deep copy in host memory; requires place().host_visible().
  Tensor clone() const;
  // Returns "float32[2,3]" (with "@device:N" appended for memory the CPU cannot read).
  std::string description() const;

 private:
  DType dtype_ = DType::undefined;
  Shape shape_;
  int64_t numel_ = 0;
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;  // null for views
  MemoryPlace place_;

  static Result<Tensor> create_impl(DType dtype, Shape shape, Allocator& alloc, std::shared_ptr<Allocator> keep);
};

// A value flowing through a graph: a tensor, a sequence of tensors, or an optional (empty or holding one).
class Value {
 public:
  enum class Kind : unsigned char { none, tensor, sequence, optional };

  Value() = default;  // Kind::none: no value
  Value(Tensor t) : kind_(Kind::tensor), tensor_(std::move(t)) {}  // NOLINT: implicit by design
  // Returns a sequence of `items`, each of element type `elem` (needed when the sequence is empty).
  static Value sequence(std::vector<Tensor> items, DType elem);
  // Returns an optional holding `v` (a tensor or sequence).
  static Value optional(Value v);
  // Returns an empty optional.
  static Value optional_none();

  Kind kind() const { return kind_; }
  bool is_tensor() const { return kind_ == Kind::tensor; }
  bool is_sequence() const { return kind_ == Kind::sequence; }
  bool is_optional() const { return kind_ == Kind::optional; }
  const Tensor& tensor() const { return tensor_; }
  Tensor& tensor() { return tensor_; }
  const std::vector<Tensor>& items() const { return items_; }
  std::vector<Tensor>& items() { return items_; }
  DType sequence_dtype() const { return seq_dtype_; }
  // For an optional: whether it holds an element.
  bool has_element() const { return inner_ != nullptr; }
  // For an optional holding an element: the element.
  const Value& element() const { return *inner_; }
  // Returns "float32[2,3]", "seq<float32>[3]", "optional(...)" or "none".
  std::string description() const;

 private:
  Kind kind_ = Kind::none;
  Tensor tensor_;
  std::vector<Tensor> items_;
  DType seq_dtype_ = DType::undefined;
  std::shared_ptr<const Value> inner_;
};

template <class T>
Tensor Tensor::from_vector(Shape shape, const std::vector<T>& values) {
  Tensor t = empty(dtype_of<T>(), std::move(shape));
  T* out = t.data<T>();
  for (size_t i = 0; i < values.size() && static_cast<int64_t>(i) < t.numel(); ++i) out[i] = values[i];
  return t;
}

// std::vector<bool> has no data(); the boolean specialisation copies element by element.
template <>
Tensor Tensor::from_vector<bool>(Shape shape, const std::vector<bool>& values);

}  // namespace orchard
