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

// The NVIDIA container folders, then the system library folders.
const char *const kDriverCandidates[] = {
    "/usr/local/nvidia/lib64/libcuda.so.1", "/usr/local/cuda/compat/libcuda.so.1",
    "/usr/lib64/libcuda.so.1",              "/lib/x86_64-linux-gnu/libcuda.so.1",
    "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
};

const xsched_like::RuntimeLookup kDriver = {
    "CUDA", "XSCHED_CUDA_LIB", kDriverCandidates, sizeof(kDriverCandidates) / sizeof(kDriverCandidates[0]),
    "xsched_shim_cuda_version", "cuInit", 100 /* CUDA_ERROR_NO_DEVICE */,
};

}  // namespace

// Forward cuInit to the real driver (see real_runtime.h).
extern "C" int xsched_hal_cuda_init(unsigned int flags) { return xsched_like::ForwardInit(kDriver, flags); }
