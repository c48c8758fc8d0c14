#include "hal_cuda.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

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

using CuInit = int (*)(unsigned int);

// Where the HAL looks for the real driver when XSCHED_CUDA_LIB is not set: the NVIDIA container
// folders, then the system library folders, each by full path (a bare dlopen("libcuda.so.1")
// would find this install's own softlink first under route libpath).
const char *const kDriverCandidates[] = {
    "/usr/local/nvidia/lib64/libcuda.so.1", "/usr/local/cuda/compat/libcuda.so.1",
    "/usr/lib64/libcuda.so.1",              "/lib/x86_64-linux-gnu/libcuda.so.1",
    "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
};

// A library that exports the shim's version function is the shim (or one of its softlinks).
bool IsTheShim(void *handle) { return dlsym(handle, "xsched_shim_cuda_version") != nullptr; }

[[noreturn]] void RecursionAbort(const char *path) {
    // XSched itself would forward cuInit to its own cuInit until the stack overflows; the
    // stand-in says why and stops at once instead.
    std::fprintf(stderr,
                 "xsched-like HAL: the real CUDA driver %s is the XSched shim itself "
                 "(XSCHED_CUDA_LIB points at the shim or its softlink); forwarding to it would "
                 "recurse\n",
                 path);
    std::fflush(stderr);
    std::abort();
}

}  // namespace

// Find the real driver as XSched's HAL does (XSCHED_CUDA_LIB, else the candidates) and forward
// cuInit to it. Returns the driver's CUresult, or 100 (CUDA_ERROR_NO_DEVICE) without a driver.
extern "C" int xsched_hal_cuda_init(unsigned int flags) {
    const char *override_path = std::getenv("XSCHED_CUDA_LIB");
    void *driver = nullptr;
    const char *driver_path = nullptr;
    if (override_path != nullptr && *override_path != '\0') {
        driver = dlopen(override_path, RTLD_NOW | RTLD_LOCAL);
        driver_path = override_path;
        if (driver == nullptr) {
            std::fprintf(stderr, "xsched-like HAL: cannot load XSCHED_CUDA_LIB=%s: %s\n", override_path, dlerror());
            return 100;
        }
        if (IsTheShim(driver)) RecursionAbort(override_path);
    } else {
        for (const char *candidate : kDriverCandidates) {
            void *handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL);
            if (handle == nullptr) continue;
            if (IsTheShim(handle)) RecursionAbort(candidate);
            driver = handle;
            driver_path = candidate;
            break;
        }
        if (driver == nullptr) return 100;
    }
    auto real_init = reinterpret_cast<CuInit>(dlsym(driver, "cuInit"));
    if (real_init == nullptr) {
        std::fprintf(stderr, "xsched-like HAL: %s has no cuInit\n", driver_path);
        return 100;
    }
    return real_init(flags);
}
