// Declarations of the Core ML API that src/backends/coreml/*.mm use, written from Apple's documentation
// (developer.apple.com/documentation/coreml) and ../shared/research/coreml-format.md §6: the stand-in described
// in ../Foundation/Foundation.h. Availability is the documented macOS version.
#pragma once
#import <Foundation/Foundation.h>

#define ORCHARD_MACOS(v) __attribute__((availability(macos, introduced = v)))

typedef enum : NSInteger {
  MLComputeUnitsCPUOnly = 0,
  MLComputeUnitsCPUAndGPU = 1,
  MLComputeUnitsAll = 2,
  MLComputeUnitsCPUAndNeuralEngine ORCHARD_MACOS(13.0) = 3,
} MLComputeUnits;

typedef enum : NSInteger {
  MLMultiArrayDataTypeDouble = 0x10000 | 64,
  MLMultiArrayDataTypeFloat32 = 0x10000 | 32,
  MLMultiArrayDataTypeFloat16 ORCHARD_MACOS(12.0) = 0x10000 | 16,
  MLMultiArrayDataTypeInt32 = 0x20000 | 32,
} MLMultiArrayDataType;

ORCHARD_MACOS(10.14) @interface MLModelConfiguration : NSObject
@property(readwrite) MLComputeUnits computeUnits;
@end

ORCHARD_MACOS(10.13) @interface MLMultiArray : NSObject
- (instancetype)initWithDataPointer:(void*)dataPointer
                              shape:(NSArray<NSNumber*>*)shape
                           dataType:(MLMultiArrayDataType)dataType
                            strides:(NSArray<NSNumber*>*)strides
                        deallocator:(void (^)(void* bytes))deallocator
                              error:(NSError**)error;
@property(readonly) MLMultiArrayDataType dataType;
@property(readonly, copy) NSArray<NSNumber*>* shape;
@property(readonly, copy) NSArray<NSNumber*>* strides;
- (void)getBytesWithHandler:(void (^)(const void* bytes, NSInteger size))handler ORCHARD_MACOS(12.3);
@end

ORCHARD_MACOS(10.13) @interface MLFeatureValue : NSObject
+ (instancetype)featureValueWithMultiArray:(MLMultiArray*)value;
@property(readonly, nullable) MLMultiArray* multiArrayValue;
@end

@protocol MLFeatureProvider <NSObject>
@property(readonly, nonatomic) NSSet<NSString*>* featureNames;
- (MLFeatureValue*)featureValueForName:(NSString*)featureName;
@end

ORCHARD_MACOS(10.13) @interface MLDictionaryFeatureProvider : NSObject <MLFeatureProvider>
- (instancetype)initWithDictionary:(NSDictionary<NSString*, id>*)dictionary error:(NSError**)error;
@end

ORCHARD_MACOS(10.13) @interface MLModel : NSObject
+ (NSURL*)compileModelAtURL:(NSURL*)modelURL error:(NSError**)error;
+ (instancetype)modelWithContentsOfURL:(NSURL*)url
                         configuration:(MLModelConfiguration*)configuration
                                 error:(NSError**)error ORCHARD_MACOS(10.14);
- (id<MLFeatureProvider>)predictionFromFeatures:(id<MLFeatureProvider>)input error:(NSError**)error;
@end

@protocol MLComputeDeviceProtocol <NSObject>
@end
ORCHARD_MACOS(14.0) @interface MLCPUComputeDevice : NSObject <MLComputeDeviceProtocol>
@end
ORCHARD_MACOS(14.0) @interface MLGPUComputeDevice : NSObject <MLComputeDeviceProtocol>
@end
ORCHARD_MACOS(14.0) @interface MLNeuralEngineComputeDevice : NSObject <MLComputeDeviceProtocol>
@property(readonly) NSInteger totalCoreCount;
@end
extern "C" NSArray<id<MLComputeDeviceProtocol>>* MLAllComputeDevices(void) ORCHARD_MACOS(14.0);

ORCHARD_MACOS(14.4) @interface MLModelStructureProgramOperation : NSObject
@property(readonly, copy) NSString* operatorName;
@end
ORCHARD_MACOS(14.4) @interface MLModelStructureProgramBlock : NSObject
@property(readonly, copy) NSArray<MLModelStructureProgramOperation*>* operations;
@end
ORCHARD_MACOS(14.4) @interface MLModelStructureProgramFunction : NSObject
@property(readonly, strong) MLModelStructureProgramBlock* block;
@end
ORCHARD_MACOS(14.4) @interface MLModelStructureProgram : NSObject
@property(readonly, copy) NSDictionary<NSString*, MLModelStructureProgramFunction*>* functions;
@end
ORCHARD_MACOS(14.4) @interface MLModelStructure : NSObject
@property(readonly, strong, nullable) MLModelStructureProgram* program;
@end
ORCHARD_MACOS(14.4) @interface MLComputePlanDeviceUsage : NSObject
@property(readonly, strong) id<MLComputeDeviceProtocol> preferredComputeDevice;
@end
ORCHARD_MACOS(14.4) @interface MLComputePlan : NSObject
+ (void)loadContentsOfURL:(NSURL*)url
            configuration:(MLModelConfiguration*)configuration
        completionHandler:(void (^)(MLComputePlan* computePlan, NSError* error))handler;
@property(readonly, strong) MLModelStructure* modelStructure;
- (MLComputePlanDeviceUsage*)computeDeviceUsageForMLProgramOperation:(MLModelStructureProgramOperation*)operation;
@end
