#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

#include "orchard/tensor.hpp"

namespace orchard {
namespace {

TEST(Shape, NumelRankAndString) {
  EXPECT_EQ(Shape{}.numel(), 1);  // a scalar has one element
  EXPECT_EQ(Shape{}.rank(), 0u);
  EXPECT_EQ((Shape{2, 3, 4}).numel(), 24);
  EXPECT_EQ((Shape{2, 0, 4}).numel(), 0);
  EXPECT_EQ((Shape{2, 3}).to_string(), "[2,3]");
  EXPECT_EQ(Shape{}.to_string(), "[]");
  EXPECT_NE((Shape{2, 3}), (Shape{3, 2}));
}

TEST(Tensor, DefaultIsUndefined) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_EQ(t.dtype(), DType::undefined);
  EXPECT_EQ(t.numel(), 0);
  EXPECT_FALSE(t.owns_data());
  EXPECT_FALSE(t.clone().defined());
}

TEST(Tensor, CreateIsAlignedAndSized) {
  auto r = Tensor::create(DType::float32, Shape{3, 5});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->numel(), 15);
  EXPECT_EQ(r->nbytes(), 60u);
  EXPECT_EQ(r->rank(), 2u);
  EXPECT_EQ(r->dim(1), 5);
  EXPECT_TRUE(r->owns_data());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r->raw_data()) % Tensor::kAlignment, 0u);
  EXPECT_EQ(r->description(), "float32[3,5]");
}

TEST(Tensor, CreateRejectsNegativeDim) {
  auto r = Tensor::create(DType::float32, Shape{2, -1});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(r.status().message().find("[2,-1]"), std::string::npos) << r.status().message();
}

// An allocator that always fails, and one that counts live bytes.
class FailingAllocator final : public Allocator {
 public:
  void* allocate(size_t, size_t) override { return nullptr; }
  void deallocate(void*, size_t) override {}
};

class CountingAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, size_t alignment) override {
    live += static_cast<int64_t>(bytes);
    return default_allocator().allocate(bytes, alignment);
  }
  void deallocate(void* p, size_t bytes) override {
    live -= static_cast<int64_t>(bytes);
    default_allocator().deallocate(p, bytes);
  }
  std::atomic<int64_t> live{0};
};

TEST(Tensor, CreateReportsAllocatorFailure) {
  FailingAllocator alloc;
  auto r = Tensor::create(DType::float64, Shape{4}, alloc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::out_of_memory);
  EXPECT_NE(r.status().message().find("32 bytes"), std::string::npos) << r.status().message();
}

TEST(Tensor, StorageIsReturnedWhenLastCopyDies) {
  CountingAllocator alloc;
  {
    auto r = Tensor::create(DType::int32, Shape{10}, alloc);
    ASSERT_TRUE(r.ok());
    Tensor copy = *r;
    EXPECT_EQ(alloc.live.load(), 40);
    Tensor reshaped = r->reshaped(Shape{2, 5});
  }
  EXPECT_EQ(alloc.live.load(), 0);
}

TEST(Tensor, ZerosFillsEveryDtype) {
  Tensor f = Tensor::zeros(DType::float32, Shape{7});
  for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(f.data<float>()[i], 0.0f);
  Tensor b = Tensor::zeros(DType::boolean, Shape{3});
  for (int64_t i = 0; i < 3; ++i) EXPECT_FALSE(b.data<bool>()[i]);
  Tensor s = Tensor::zeros(DType::string, Shape{2});
  EXPECT_TRUE(s.data<std::string>()[0].empty());
  EXPECT_TRUE(s.data<std::string>()[1].empty());
  Tensor empty = Tensor::zeros(DType::float32, Shape{0, 3});
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_EQ(empty.nbytes(), 0u);
}

TEST(Tensor, ViewDoesNotOwnAndAliasesCallerMemory) {
  float buf[6] = {1, 2, 3, 4, 5, 6};
  Tensor v = Tensor::view(DType::float32, Shape{2, 3}, buf);
  EXPECT_FALSE(v.owns_data());
  EXPECT_EQ(v.data<float>(), buf);
  buf[4] = 50;
  EXPECT_EQ(v.data<float>()[4], 50);
  Tensor deep = v.clone();
  EXPECT_TRUE(deep.owns_data());
  buf[4] = 500;
  EXPECT_EQ(deep.data<float>()[4], 50);
}

TEST(Tensor, FromVectorAndScalar) {
  Tensor t = Tensor::from_vector<int64_t>({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(t.dtype(), DType::int64);
  EXPECT_EQ(t.data<int64_t>()[3], 4);
  Tensor b = Tensor::from_vector<bool>({3}, {true, false, true});
  EXPECT_EQ(b.dtype(), DType::boolean);
  EXPECT_TRUE(b.data<bool>()[0]);
  EXPECT_FALSE(b.data<bool>()[1]);
  EXPECT_TRUE(b.data<bool>()[2]);
  Tensor h = Tensor::from_vector<float16>({1}, {float16(1.5f)});
  EXPECT_EQ(h.dtype(), DType::float16);
  EXPECT_EQ(static_cast<float>(h.data<float16>()[0]), 1.5f);
  Tensor s = Tensor::scalar<double>(2.5);
  EXPECT_EQ(s.rank(), 0u);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.data<double>()[0], 2.5);
}

TEST(Tensor, CopiesAndReshapedShareStorageCloneCopies) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor copy = a;
  Tensor r = a.reshaped(Shape{3, 2});
  Tensor c = a.clone();
  EXPECT_EQ(copy.raw_data(), a.raw_data());
  EXPECT_EQ(r.raw_data(), a.raw_data());
  EXPECT_NE(c.raw_data(), a.raw_data());
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(a.shape(), (Shape{2, 3}));  // reshaped leaves the original alone
  a.data<float>()[0] = 100;
  EXPECT_EQ(copy.data<float>()[0], 100);
  EXPECT_EQ(r.data<float>()[0], 100);
  EXPECT_EQ(c.data<float>()[0], 1);
  EXPECT_EQ(c.shape(), a.shape());
  EXPECT_EQ(c.dtype(), a.dtype());
}

TEST(Tensor, StringTensorsCopyDeeplyOnClone) {
  Tensor s = Tensor::from_vector<std::string>({2}, {"hello", std::string(100, 'x')});
  EXPECT_EQ(s.dtype(), DType::string);
  EXPECT_EQ(s.nbytes(), 2 * sizeof(std::string));
  Tensor c = s.clone();
  s.data<std::string>()[0] = "changed";
  EXPECT_EQ(c.data<std::string>()[0], "hello");
  EXPECT_EQ(c.data<std::string>()[1], std::string(100, 'x'));
  Tensor fresh = Tensor::empty(DType::string, Shape{3});
  for (int64_t i = 0; i < 3; ++i) EXPECT_TRUE(fresh.data<std::string>()[i].empty());
}

TEST(Value, TensorSequenceOptionalKinds) {
  Value none;
  EXPECT_EQ(none.kind(), Value::Kind::none);
  EXPECT_EQ(none.description(), "none");

  Value t = Tensor::from_vector<float>({2}, {1, 2});
  EXPECT_TRUE(t.is_tensor());
  EXPECT_EQ(t.description(), "float32[2]");

  Value seq = Value::sequence({Tensor::from_vector<int32_t>({1}, {1}), Tensor::from_vector<int32_t>({3}, {1, 2, 3})}, DType::int32);
  EXPECT_TRUE(seq.is_sequence());
  EXPECT_EQ(seq.items().size(), 2u);
  EXPECT_EQ(seq.items()[1].numel(), 3);
  EXPECT_EQ(seq.sequence_dtype(), DType::int32);
  EXPECT_EQ(seq.description(), "seq<int32>[2]");

  Value empty_seq = Value::sequence({}, DType::float16);
  EXPECT_EQ(empty_seq.sequence_dtype(), DType::float16);
  EXPECT_TRUE(empty_seq.items().empty());

  Value opt = Value::optional(t);
  EXPECT_TRUE(opt.is_optional());
  ASSERT_TRUE(opt.has_element());
  EXPECT_TRUE(opt.element().is_tensor());
  EXPECT_EQ(opt.element().tensor().raw_data(), t.tensor().raw_data());
  EXPECT_EQ(opt.description(), "optional(float32[2])");

  Value opt_seq = Value::optional(seq);
  ASSERT_TRUE(opt_seq.has_element());
  EXPECT_TRUE(opt_seq.element().is_sequence());

  Value nothing = Value::optional_none();
  EXPECT_TRUE(nothing.is_optional());
  EXPECT_FALSE(nothing.has_element());
  EXPECT_EQ(nothing.description(), "optional(empty)");
}

}  // namespace
}  // namespace orchard
