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

const char *const kPlatformDirs[] = {"/opt/rocm/lib"};
// libamdhip64.so as XSched names it; .so.6 and .so.5 are this project's assumption (Debian's
// libamdhip64-5 in the sandbox has only the .so.5 name).
const char *const kNames[] = {"libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5"};

const xsched_like::RuntimeLookup kRuntime = {
    "XSCHED_HIP_LIB", kPlatformDirs, 1, kNames, sizeof(kNames) / sizeof(kNames[0]),
    "xsched_shim_hip_version", "hipInit", 100 /* hipErrorNoDevice */,
};

}  // namespace

// Forward hipInit to the real HIP runtime (see real_runtime.h).
extern "C" int xsched_hal_hip_init(unsigned int flags) { return xsched_like::ForwardInit(kRuntime, flags); }
