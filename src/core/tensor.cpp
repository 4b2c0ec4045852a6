#include "orchard/tensor.hpp"

#include <cstdio>
#include <cstdlib>
#include <new>
#include <sstream>

namespace orchard {

int64_t Shape::numel() const {
  // Saturates instead of overflowing: shapes can come from a model's data, and such a count matches no
  // tensor (Tensor::create refuses it). A shape with a 0 dim has no elements, whatever its other dims.
  for (int64_t d : dims_) {
    if (d == 0) return 0;
  }
  int64_t n = 1;
  for (int64_t d : dims_) {
    if (__builtin_mul_overflow(n, d, &n)) return INT64_MAX;
  }
  return n;
}

std::string Shape::to_string() const {
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

namespace {

class MallocAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, size_t alignment) override {
    size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    return std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
  }
  void deallocate(void* p, size_t) override { std::free(p); }
};

// Frees (and for strings, destroys) tensor storage obtained from an Allocator.
struct StorageDeleter {
  Allocator* alloc;
  size_t bytes;
  int64_t strings;  // number of std::string objects to destroy, 0 for other dtypes
  std::shared_ptr<Allocator> keep;  // keeps a per-request allocator alive; may be null
  void operator()(void* p) const {
    auto* s = static_cast<std::string*>(p);
    for (int64_t i = 0; i < strings; ++i) s[i].~basic_string();
    alloc->deallocate(p, bytes);
  }
};

}  // namespace

Allocator& default_allocator() {
  static MallocAllocator alloc;
  return alloc;
}

Result<Tensor> Tensor::create(DType dtype, Shape shape, Allocator& alloc) {
  return create_impl(dtype, std::move(shape), alloc, nullptr);
}

Result<Tensor> Tensor::create(DType dtype, Shape shape, std::shared_ptr<Allocator> alloc) {
  Allocator& a = *alloc;
  return create_impl(dtype, std::move(shape), a, std::move(alloc));
}

Result<Tensor> Tensor::create_impl(DType dtype, Shape shape, Allocator& alloc, std::shared_ptr<Allocator> keep) {
  // Element count and byte size are checked for overflow: shapes can come from a model's data.
  // A shape with a 0 dim has no elements, whatever its other dims.
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument("[tensor] negative dimension in shape ", shape.to_string());
    empty = empty || d == 0;
  }
  uint64_t numel = empty ? 0 : 1;
  for (int64_t d : shape) {
    if (!empty && __builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) {
      return out_of_memory("[tensor] shape ", shape.to_string(), " has more elements than memory can hold");
    }
  }
  uint64_t total_bytes = 0;
  if (numel > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, uint64_t{dtype_size(dtype)}, &total_bytes) ||
      total_bytes > (uint64_t{1} << 48)) {
    return out_of_memory("[tensor] ", dtype_name(dtype), shape.to_string(), " needs more memory than can be allocated");
  }
  const MemoryPlace place = alloc.place();
  if (dtype == DType::string && !place.host_visible()) {
    return unsupported("[tensor] string tensors live in host memory only, not ", place.to_string());
  }
  Tensor t;
  t.place_ = place;
  t.dtype_ = dtype;
  t.numel_ = static_cast<int64_t>(numel);
  t.shape_ = std::move(shape);
  const size_t bytes = t.nbytes();
  void* p = alloc.allocate(bytes, kAlignment);
  if (p == nullptr) {
    return out_of_memory("[tensor] cannot allocate ", bytes, " bytes for ", dtype_name(dtype), t.shape_.to_string());
  }
  int64_t strings = 0;
  if (dtype == DType::string) {
    auto* s = static_cast<std::string*>(p);
    for (; strings < t.numel_; ++strings) new (s + strings) std::string();
  }
  t.data_ = p;
  t.owner_ = std::shared_ptr<void>(p, StorageDeleter{&alloc, bytes, strings, std::move(keep)});
  return t;
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  auto r = create(dtype, std::move(shape));
  if (!r.ok()) {
    std::fprintf(stderr, "orchard: %s\n", r.status().to_string().c_str());
    std::abort();
  }
  return std::move(r).value();
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t = empty(dtype, std::move(shape));
  if (dtype != DType::string && t.nbytes()) std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, void* data, MemoryPlace place) {
  Tensor t;
  t.place_ = place;
  t.dtype_ = dtype;
  t.numel_ = shape.numel();
  t.shape_ = std::move(shape);
  t.data_ = data;
  return t;
}

template <>
Tensor Tensor::from_vector<bool>(Shape shape, const std::vector<bool>& values) {
  Tensor t = empty(DType::boolean, std::move(shape));
  bool* out = t.data<bool>();
  for (size_t i = 0; i < values.size() && static_cast<int64_t>(i) < t.numel(); ++i) out[i] = values[i];
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  Tensor t = *this;
  t.numel_ = shape.numel();
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  if (!place_.host_visible()) {
    std::fprintf(stderr, "orchard: Tensor::clone of %s, which the CPU cannot read\n", description().c_str());
    std::abort();
  }
  Tensor t = empty(dtype_, shape_);
  if (dtype_ == DType::string) {
    for (int64_t i = 0; i < numel_; ++i) t.data<std::string>()[i] = data<std::string>()[i];
  } else if (nbytes()) {
    std::memcpy(t.data_, data_, nbytes());
  }
  return t;
}

std::string Tensor::description() const {
  std::string s = std::string(dtype_name(dtype_)) + shape_.to_string();
  if (!place_.host_visible()) {
    s += '@';
    s += place_.to_string();
  }
  return s;
}

std::string MemoryPlace::to_string() const {
  switch (kind) {
    case MemoryKind::host: return "host";
    case MemoryKind::pinned_host: return "pinned";
    case MemoryKind::unified: return std::string("unified:").append(std::to_string(device));
    case MemoryKind::device: return std::string("device:").append(std::to_string(device));
  }
  return "?";
}

Value Value::sequence(std::vector<Tensor> items, DType elem) {
  Value v;
  v.kind_ = Kind::sequence;
  v.items_ = std::move(items);
  v.seq_dtype_ = elem;
  return v;
}

Value Value::optional(Value inner) {
  Value v;
  v.kind_ = Kind::optional;
  v.inner_ = std::make_shared<const Value>(std::move(inner));
  return v;
}

Value Value::optional_none() {
  Value v;
  v.kind_ = Kind::optional;
  return v;
}

std::string Value::description() const {
  switch (kind_) {
    case Kind::none: return "none";
    case Kind::tensor: return tensor_.description();
    case Kind::sequence:
      return "seq<" + std::string(dtype_name(seq_dtype_)) + ">[" + std::to_string(items_.size()) + "]";
    case Kind::optional: return inner_ ? "optional(" + inner_->description() + ")" : "optional(empty)";
  }
  return "?";
}

}  // namespace orchard
