// DeviceMemoryBudget (include/orchard/device_memory.hpp): charges under a cap, and the refusal record a run reads
// after an allocation failed.
#include "orchard/device_memory.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace orchard {
namespace {

TEST(DeviceMemoryBudget, ChargesUnderTheCapAndCountsRefusals) {
  DeviceMemoryBudget b("testdev:3", 1000);
  EXPECT_TRUE(b.try_charge(600));
  EXPECT_FALSE(b.try_charge(401));
  EXPECT_TRUE(b.try_charge(400));
  EXPECT_EQ(b.used(), 1000);
  EXPECT_EQ(b.peak(), 1000);
  EXPECT_EQ(b.refused(), 1);
  b.release(1000);
  EXPECT_EQ(b.used(), 0);
  const std::string msg = take_device_memory_refusal();
  EXPECT_NE(msg.find("[testdev:3] device memory cap of"), std::string::npos) << msg;
  EXPECT_NE(msg.find("401 bytes asked"), std::string::npos) << msg;
  EXPECT_TRUE(take_device_memory_refusal().empty()) << "a refusal is taken once";
}

TEST(DeviceMemoryBudget, RefusalOutlivesTheBudgetThatMadeIt) {
  // A backend made with its own limit owns its budget; its last refusal may be read (or cleared, as each
  // partition run does first) after the backend is gone. The record used to point at the budget: a
  // use-after-free that threw std::bad_alloc in the next test's run on the GPU machine.
  {
    auto b = std::make_shared<DeviceMemoryBudget>("testdev:7", 1000);
    EXPECT_TRUE(b->try_charge(600));
    EXPECT_FALSE(b->try_charge(600));
  }
  const std::string msg = take_device_memory_refusal();
  EXPECT_NE(msg.find("[testdev:7] device memory cap of"), std::string::npos) << msg;
  EXPECT_NE(msg.find("600 bytes asked"), std::string::npos) << msg;
  EXPECT_TRUE(take_device_memory_refusal().empty());
}

}  // namespace
}  // namespace orchard
