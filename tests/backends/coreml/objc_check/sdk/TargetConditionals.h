// Stand-in for Apple's TargetConditionals.h (see Foundation/Foundation.h here): an Apple Silicon Mac.
#pragma once
#define TARGET_OS_OSX 1
#define TARGET_CPU_ARM64 1
