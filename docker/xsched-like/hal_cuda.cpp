#include "hal_cuda.h"

#include "real_runtime.h"

namespace xsched {
namespace cuda {

CudaCommand::~CudaCommand() = default;

int CudaCommand::Launch() {
    ++launched_;
    return 0;
}

int CudaCommand::Synchronize() { return 0; }

}  // namespace cuda
}  // namespace xsched

#ifndef XSCHED_HAL_VERSION
#define XSCHED_HAL_VERSION "1.2.0"
#endif

extern "C" const char *xsched_hal_cuda_version() { return XSCHED_HAL_VERSION; }
namespace {

// CUDA has no platform folders of its own: /usr/local/nvidia/lib64 is never searched.
const char *const kNames[] = {"libcuda.so", "libcuda.so.1"};

const xsched_like::RuntimeLookup kDriver = {
    "XSCHED_CUDA_LIB", nullptr, 0, kNames, sizeof(kNames) / sizeof(kNames[0]),
    "xsched_shim_cuda_version", "cuInit", 100 /* CUDA_ERROR_NO_DEVICE */,
};

}  // namespace

// Forward cuInit to the real driver (see real_runtime.h).
extern "C" int xsched_hal_cuda_init(unsigned int flags) { return xsched_like::ForwardInit(kDriver, flags); }
