// Backends for tests of the runtime and the Manager, installed ahead of the CPU with
// runtime::set_extra_backends_for_testing:
//   GateBackend   runs Identity, blocking each run until the test opens the gate (or the run is stopped);
//   FaultyBackend claims Relu but fails every run (unavailable), and claims Sigmoid but fails to compile it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "runtime/backend.hpp"

namespace orchard::testing {

class GateBackend final : public runtime::Backend {
 public:
  GateBackend() { info_.name = "gate"; }
  const runtime::DeviceInfo& device() const override { return info_; }
  bool supports_op(const std::string& domain, const std::string& op, int) const override {
    return domain.empty() && op == "Identity";
  }
  Result<std::unique_ptr<runtime::OpKernel>> create_kernel(const runtime::KernelCreateContext&) const override {
    return std::unique_ptr<runtime::OpKernel>(new Kernel(const_cast<GateBackend*>(this)));
  }

  void open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Returns how many runs have entered the kernel.
  int entered() const { return entered_.load(); }
  // Waits until `n` runs have entered (or 5 s pass); returns whether they did.
  bool wait_entered(int n) const {
    for (int i = 0; i < 5000 && entered_.load() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return entered_.load() >= n;
  }

 private:
  class Kernel final : public runtime::OpKernel {
   public:
    explicit Kernel(GateBackend* b) : b_(b) {}
    Status run(runtime::OpContext& ctx) const override {
      b_->entered_.fetch_add(1);
      std::unique_lock<std::mutex> lock(b_->mu_);
      while (!b_->open_) {
        ORCHARD_RETURN_IF_ERROR(ctx.check_abort());
        b_->cv_.wait_for(lock, std::chrono::milliseconds(1));
      }
      lock.unlock();
      ctx.set_output(0, ctx.value(0));
      return Status::OK();
    }

   private:
    GateBackend* b_;
  };

  runtime::DeviceInfo info_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::atomic<int> entered_{0};
};

class FaultyBackend final : public runtime::Backend {
 public:
  FaultyBackend() { info_.name = "faulty"; }
  const runtime::DeviceInfo& device() const override { return info_; }
  bool supports_op(const std::string& domain, const std::string& op, int) const override {
    return domain.empty() && (op == "Relu" || op == "Sigmoid");
  }
  Result<std::unique_ptr<runtime::OpKernel>> create_kernel(const runtime::KernelCreateContext& ctx) const override {
    if (ctx.node.op_type == "Sigmoid") return unavailable("injected compile fault");
    return std::unique_ptr<runtime::OpKernel>(new Kernel(const_cast<FaultyBackend*>(this)));
  }
  int runs() const { return runs_.load(); }

 private:
  class Kernel final : public runtime::OpKernel {
   public:
    explicit Kernel(FaultyBackend* b) : b_(b) {}
    Status run(runtime::OpContext&) const override {
      b_->runs_.fetch_add(1);
      return unavailable("injected run fault");
    }

   private:
    FaultyBackend* b_;
  };
  runtime::DeviceInfo info_;
  std::atomic<int> runs_{0};
};

}  // namespace orchard::testing
