#include "hal_hip.h"

#include "real_runtime.h"

namespace xsched {
namespace hip {

HipCommand::~HipCommand() = default;

int HipCommand::Launch() {
    ++launched_;
    return 0;
}

int HipCommand::Synchronize() { return 0; }

}  // namespace hip
}  // namespace xsched

#ifndef XSCHED_HAL_VERSION
#define XSCHED_HAL_VERSION "1.2.0"
#endif

extern "C" const char *xsched_hal_hip_version() { return XSCHED_HAL_VERSION; }
namespace {

// ROCm's folder, then the system library folders (Debian's libamdhip64-5 has only the .so.5 name).
const char *const kRuntimeCandidates[] = {
    "/opt/rocm/lib/libamdhip64.so",
    "/lib/x86_64-linux-gnu/libamdhip64.so",   "/usr/lib/x86_64-linux-gnu/libamdhip64.so",
    "/lib/x86_64-linux-gnu/libamdhip64.so.6", "/usr/lib/x86_64-linux-gnu/libamdhip64.so.6",
    "/lib/x86_64-linux-gnu/libamdhip64.so.5", "/usr/lib/x86_64-linux-gnu/libamdhip64.so.5",
};

const xsched_like::RuntimeLookup kRuntime = {
    "HIP", "XSCHED_HIP_LIB", kRuntimeCandidates, sizeof(kRuntimeCandidates) / sizeof(kRuntimeCandidates[0]),
    "xsched_shim_hip_version", "hipInit", 100 /* hipErrorNoDevice */,
};

}  // namespace

// Forward hipInit to the real HIP runtime (see real_runtime.h).
extern "C" int xsched_hal_hip_init(unsigned int flags) { return xsched_like::ForwardInit(kRuntime, flags); }
