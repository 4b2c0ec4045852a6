#include <gtest/gtest.h>

#include <cstdint>

#include "core/capped_allocator.hpp"

namespace orchard {
namespace {

TEST(CappedAllocator, RefusesWhatWouldPassTheCapAndCountsFrees) {
  CappedAllocator alloc(1000);
  void* a = alloc.allocate(600, 64);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(alloc.allocate(401, 64), nullptr);  // 1001 > 1000
  EXPECT_EQ(alloc.used(), 600u);                 // a refusal leaves nothing counted
  void* b = alloc.allocate(400, 64);             // exactly at the cap
  ASSERT_NE(b, nullptr);
  alloc.deallocate(a, 600);
  alloc.deallocate(b, 400);
  EXPECT_EQ(alloc.used(), 0u);
  EXPECT_EQ(alloc.allocate(SIZE_MAX, 64), nullptr);  // no wrap-around past the cap
  EXPECT_EQ(alloc.used(), 0u);
}

TEST(CappedAllocator, TensorCreationPastTheCapIsOutOfMemory) {
  auto alloc = std::make_shared<CappedAllocator>(1024);
  auto small = Tensor::create(DType::float32, {16}, alloc);
  ASSERT_TRUE(small.ok());
  auto big = Tensor::create(DType::float32, {1024}, alloc);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::out_of_memory) << big.status().message();
}

}  // namespace
}  // namespace orchard
