// The CUDA shim of the XSched-like install: exports a handful of cu* driver entry points with
// trivial bodies. Like the HIP shim it uses CudaCommand's typeinfo (dynamic_cast, and as the
// base of LaunchCommand's typeinfo) and its vtable (cuCtxSynchronize constructs a plain
// CudaCommand), so the loader must find both in libhalcuda.so. The install's softlinks
// lib/libcuda.so and lib/libcuda.so.1 point here: with the lib folder first on LD_LIBRARY_PATH,
// a program that loads libcuda.so.1 gets this shim. The scheduler is chosen when libpreempt.so loads (preempt.cpp).
#include <cstddef>

#include "hal_cuda.h"

namespace {

class LaunchCommand final : public xsched::cuda::CudaCommand {
public:
    explicit LaunchCommand(const void *function) : function_(function) {}
    int Launch() override { return function_ == nullptr ? 1 : CudaCommand::Launch(); }

private:
    const void *function_;
};

xsched::preempt::XQueue &DefaultQueue() {
    static xsched::preempt::XQueue queue(0);
    return queue;
}

int Submit(xsched::preempt::HwCommand *command) {
    // dynamic_cast needs the typeinfo of xsched::cuda::CudaCommand at load time.
    auto *cuda_command = dynamic_cast<xsched::cuda::CudaCommand *>(command);
    int status = cuda_command == nullptr ? 1 : DefaultQueue().Submit(cuda_command);
    delete command;
    return status;
}

}  // namespace

using CUresult = int;
using CUstream = void *;
using CUfunction = void *;
constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;

extern "C" {

// Forwarded to the real driver through the HAL, as XSched does.
CUresult cuInit(unsigned int flags) {
    const CUresult status = xsched_hal_cuda_init(flags);
    xsched_like_auto_xqueue("CUDA", &DefaultQueue());  // the context's default stream
    return status;
}

CUresult cuDriverGetVersion(int *version) {
    if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *version = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
    if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *count = 0;
    return CUDA_ERROR_NO_DEVICE;
}

CUresult cuStreamCreate(CUstream *stream, unsigned int) {
    if (stream == nullptr) return CUDA_ERROR_INVALID_VALUE;
    static char streams[64];
    static unsigned next_stream = 0;
    *stream = &streams[next_stream++ % sizeof(streams)];
    xsched_like_auto_xqueue("CUDA", *stream);
    return CUDA_SUCCESS;
}

CUresult cuStreamDestroy(CUstream) { return CUDA_SUCCESS; }

CUresult cuStreamSynchronize(CUstream) { return CUDA_SUCCESS; }

// A plain CudaCommand: its construction stores CudaCommand's vtable, so the shim refers to
// _ZTVN6xsched4cuda11CudaCommandE as well as to its typeinfo.
CUresult cuCtxSynchronize() {
    return Submit(new xsched::cuda::CudaCommand()) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuLaunchKernel(CUfunction function, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int,
                        unsigned int, unsigned int, CUstream, void **, void **) {
    return Submit(new LaunchCommand(function)) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

const char *xsched_shim_cuda_version() { return xsched_hal_cuda_version(); }

}  // extern "C"
