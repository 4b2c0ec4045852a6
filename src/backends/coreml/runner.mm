// NOT EXECUTED, NOT BUILT BY APPLE'S COMPILER: no Mac exists in this project. Written against the API facts in
// ../shared/research/coreml-format.md §6 (MLModel compile/load, MLMultiArray zero-copy, MLComputePlan); clang
// checks it (ARC) against declarations written from Apple's docs (tests/backends/coreml/objc_check).
#import <CoreML/CoreML.h>
#import <Foundation/Foundation.h>

#include <TargetConditionals.h>
#include <cstring>
#include <mutex>

#include "backends/coreml/runner.hpp"

namespace orchard::coreml {

namespace {

MLComputeUnits to_ml(ComputeUnits u) {
  switch (u) {
    case ComputeUnits::cpu_and_ne: return MLComputeUnitsCPUAndNeuralEngine;
    case ComputeUnits::all: return MLComputeUnitsAll;
    case ComputeUnits::cpu_and_gpu: return MLComputeUnitsCPUAndGPU;
    case ComputeUnits::cpu_only: return MLComputeUnitsCPUOnly;
  }
  return MLComputeUnitsCPUAndNeuralEngine;
}

std::string os_version() {
  return std::string([[[NSProcessInfo processInfo] operatingSystemVersionString] UTF8String]);
}

std::string message(NSError* e) { return e ? std::string([[e localizedDescription] UTF8String]) : "unknown error"; }

}  // namespace

const char* compute_units_name(ComputeUnits u) {
  switch (u) {
    case ComputeUnits::cpu_and_ne: return "cpu_and_ne";
    case ComputeUnits::all: return "all";
    case ComputeUnits::cpu_and_gpu: return "cpu_and_gpu";
    case ComputeUnits::cpu_only: return "cpu_only";
  }
  return "cpu_and_ne";
}

struct Runner::Impl {
  MLModel* model = nil;
  NSURL* compiled = nil;
  MLComputeUnits units = MLComputeUnitsCPUAndNeuralEngine;
  mutable std::mutex mu;  // an MLModel is used from one thread at a time
};

Runner::Runner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Runner::~Runner() = default;

Result<std::unique_ptr<Runner>> Runner::load(const Package& pkg, ComputeUnits units, ModelCache& cache) {
  auto compiled = cache.get(pkg, {os_version(), compute_units_name(units)});
  if (!compiled.ok()) return compiled.status();
  @autoreleasepool {
    auto impl = std::make_unique<Impl>();
    impl->units = to_ml(units);
    impl->compiled = [NSURL fileURLWithPath:[NSString stringWithUTF8String:compiled->c_str()]];
    MLModelConfiguration* config = [[MLModelConfiguration alloc] init];
    config.computeUnits = impl->units;
    NSError* error = nil;
    impl->model = [MLModel modelWithContentsOfURL:impl->compiled configuration:config error:&error];
    if (!impl->model) return unavailable("[coreml] loading the compiled model failed: ", message(error));
    return std::unique_ptr<Runner>(new Runner(std::move(impl)));
  }
}

// The compiler the cache uses on macOS: +[MLModel compileModelAtURL:error:] returns a temporary
// .mlmodelc, which is moved to where the cache wants it.
Status compile_with_coreml(const std::filesystem::path& package_dir, const std::filesystem::path& out_dir) {
  @autoreleasepool {
    NSError* error = nil;
    NSURL* src = [NSURL fileURLWithPath:[NSString stringWithUTF8String:package_dir.c_str()]];
    NSURL* tmp = [MLModel compileModelAtURL:src error:&error];
    if (!tmp) return unavailable("[coreml] compileModelAtURL failed: ", message(error));
    NSURL* dst = [NSURL fileURLWithPath:[NSString stringWithUTF8String:out_dir.c_str()]];
    if (![[NSFileManager defaultManager] moveItemAtURL:tmp toURL:dst error:&error]) {
      return unavailable("[coreml] moving the compiled model failed: ", message(error));
    }
    return Status::OK();
  }
}

Result<NamedValues> Runner::run(const NamedValues& inputs) const {
  std::lock_guard lock(impl_->mu);
  @autoreleasepool {
    NSMutableDictionary<NSString*, MLFeatureValue*>* features = [NSMutableDictionary dictionary];
    for (const auto& [name, v] : inputs) {
      if (!v.is_tensor()) return invalid_argument("[coreml] input '", name, "' is not a tensor");
      const Tensor& t = v.tensor();
      MLMultiArrayDataType type;
      if (t.dtype() == DType::float32) type = MLMultiArrayDataTypeFloat32;
      else if (t.dtype() == DType::int32) type = MLMultiArrayDataTypeInt32;
      else return invalid_argument("[coreml] input '", name, "' has dtype ", dtype_name(t.dtype()), " (float32 or int32)");
      NSMutableArray<NSNumber*>* shape = [NSMutableArray array];
      NSMutableArray<NSNumber*>* strides = [NSMutableArray array];
      int64_t stride = 1;
      for (size_t i = t.rank(); i-- > 0;) {
        [shape insertObject:@(t.dim(i)) atIndex:0];
        [strides insertObject:@(stride) atIndex:0];
        stride *= t.dim(i);
      }
      NSError* error = nil;
      // Zero-copy: Core ML reads the caller's buffer, which outlives the prediction.
      MLMultiArray* array = [[MLMultiArray alloc] initWithDataPointer:const_cast<void*>(t.raw_data())
                                                                shape:shape
                                                             dataType:type
                                                              strides:strides
                                                          deallocator:^(void*) {}
                                                                error:&error];
      if (!array) return invalid_argument("[coreml] input '", name, "': ", message(error));
      features[[NSString stringWithUTF8String:name.c_str()]] = [MLFeatureValue featureValueWithMultiArray:array];
    }
    NSError* error = nil;
    MLDictionaryFeatureProvider* provider = [[MLDictionaryFeatureProvider alloc] initWithDictionary:features error:&error];
    if (!provider) return invalid_argument("[coreml] inputs: ", message(error));
    id<MLFeatureProvider> result = [impl_->model predictionFromFeatures:provider error:&error];
    if (!result) return unavailable("[coreml] prediction failed: ", message(error));
    NamedValues out;
    for (NSString* key in [result featureNames]) {
      MLMultiArray* array = [[result featureValueForName:key] multiArrayValue];
      if (!array) return internal_error("[coreml] output '", [key UTF8String], "' is not a multi-array");
      Shape shape;
      for (NSNumber* d in array.shape) shape.push_back([d longLongValue]);
      const bool f32 = array.dataType == MLMultiArrayDataTypeFloat32;
      if (!f32 && array.dataType != MLMultiArrayDataTypeInt32) return internal_error("[coreml] output '", [key UTF8String], "' has an unexpected type");
      Tensor t = Tensor::empty(f32 ? DType::float32 : DType::int32, shape);
      std::vector<int64_t> strides;
      for (NSNumber* s in array.strides) strides.push_back([s longLongValue]);
      // Outputs may be non-contiguous: copy element by element through the strides.
      [array getBytesWithHandler:^(const void* bytes, NSInteger) {
        const size_t rank = shape.rank();
        std::vector<int64_t> idx(rank, 0);
        for (int64_t i = 0; i < t.numel(); ++i) {
          int64_t off = 0;
          for (size_t k = 0; k < rank; ++k) off += idx[k] * strides[k];
          std::memcpy(static_cast<char*>(const_cast<void*>(t.raw_data())) + i * 4, static_cast<const char*>(bytes) + off * 4, 4);
          for (size_t k = rank; k-- > 0;) {
            if (++idx[k] < shape[k]) break;
            idx[k] = 0;
          }
        }
      }];
      out.emplace_back([key UTF8String], Value(t));
    }
    return out;
  }
}

Result<std::vector<OpPlacement>> Runner::placement() const {
  std::vector<OpPlacement> out;
  if (@available(macOS 14.4, *)) {
    MLModelConfiguration* config = [[MLModelConfiguration alloc] init];
    config.computeUnits = impl_->units;
    dispatch_semaphore_t done = dispatch_semaphore_create(0);
    __block MLComputePlan* plan = nil;
    __block NSError* error = nil;
    [MLComputePlan loadContentsOfURL:impl_->compiled
                       configuration:config
                   completionHandler:^(MLComputePlan* p, NSError* e) {
                     plan = p;
                     error = e;
                     dispatch_semaphore_signal(done);
                   }];
    dispatch_semaphore_wait(done, DISPATCH_TIME_FOREVER);
    if (!plan) return unavailable("[coreml] MLComputePlan: ", message(error));
    MLModelStructureProgramFunction* main = plan.modelStructure.program.functions[@"main"];
    for (MLModelStructureProgramOperation* op in main.block.operations) {
      MLComputePlanDeviceUsage* usage = [plan computeDeviceUsageForMLProgramOperation:op];
      if (!usage) continue;  // const ops report no usage
      id<MLComputeDeviceProtocol> d = usage.preferredComputeDevice;
      const char* device = [d isKindOfClass:[MLNeuralEngineComputeDevice class]] ? "ane" : [d isKindOfClass:[MLGPUComputeDevice class]] ? "gpu" : "cpu";
      out.push_back({[op.operatorName UTF8String], device});
    }
  }
  return out;
}

bool Runner::has_neural_engine() {
  if (@available(macOS 14.0, *)) {
    for (id<MLComputeDeviceProtocol> d in MLAllComputeDevices()) {
      if ([d isKindOfClass:[MLNeuralEngineComputeDevice class]]) return true;
    }
    return false;
  }
#if TARGET_OS_OSX && TARGET_CPU_ARM64
  return true;  // before macOS 14 every Apple Silicon Mac is assumed to have one
#else
  return false;
#endif
}

}  // namespace orchard::coreml
