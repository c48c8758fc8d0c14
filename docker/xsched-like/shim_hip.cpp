// The HIP shim of the XSched-like install: exports a handful of hip* entry points with trivial
// bodies. It uses HipCommand's typeinfo (dynamic_cast, and as the base of LaunchCommand's
// typeinfo) and its vtable (hipDeviceSynchronize constructs a plain HipCommand), so the loader
// must find both in libhalhip.so when the shim is loaded. Loading it also
// starts XSched's client side: the scheduler is chosen when libpreempt.so loads (preempt.cpp), as XSched's is.
#include <cstddef>

#include "hal_hip.h"

namespace {

class LaunchCommand final : public xsched::hip::HipCommand {
public:
    explicit LaunchCommand(const void *function) : function_(function) {}
    int Launch() override { return function_ == nullptr ? 1 : HipCommand::Launch(); }

private:
    const void *function_;
};

xsched::preempt::XQueue &DefaultQueue() {
    static xsched::preempt::XQueue queue(0);
    return queue;
}

int Submit(xsched::preempt::HwCommand *command) {
    // dynamic_cast needs the typeinfo of xsched::hip::HipCommand at load time.
    auto *hip_command = dynamic_cast<xsched::hip::HipCommand *>(command);
    int status = hip_command == nullptr ? 1 : DefaultQueue().Submit(hip_command);
    delete command;
    return status;
}

}  // namespace

using hipError_t = int;
using hipStream_t = void *;
constexpr hipError_t hipSuccess = 0;
constexpr hipError_t hipErrorInvalidValue = 1;
constexpr hipError_t hipErrorNoDevice = 100;

extern "C" {

// Forwarded to the real runtime through the HAL, as XSched does.
hipError_t hipInit(unsigned int flags) {
    const hipError_t status = xsched_hal_hip_init(flags);
    xsched_like_auto_xqueue("HIP", &DefaultQueue());  // the runtime's default stream
    return status;
}

hipError_t hipGetDeviceCount(int *count) {
    if (count == nullptr) return hipErrorInvalidValue;
    *count = 0;
    return hipErrorNoDevice;
}

hipError_t hipMalloc(void **pointer, std::size_t) {
    if (pointer == nullptr) return hipErrorInvalidValue;
    *pointer = nullptr;
    return hipErrorNoDevice;
}

hipError_t hipFree(void *) { return hipSuccess; }

hipError_t hipMemcpy(void *, const void *, std::size_t, int) { return hipErrorNoDevice; }

hipError_t hipStreamCreate(hipStream_t *stream) {
    if (stream == nullptr) return hipErrorInvalidValue;
    static char streams[64];
    static unsigned next_stream = 0;
    *stream = &streams[next_stream++ % sizeof(streams)];
    xsched_like_auto_xqueue("HIP", *stream);
    return hipSuccess;
}

hipError_t hipStreamDestroy(hipStream_t) { return hipSuccess; }

hipError_t hipStreamSynchronize(hipStream_t) { return hipSuccess; }

// A plain HipCommand: its construction stores HipCommand's vtable, so the shim refers to
// _ZTVN6xsched3hip10HipCommandE as well as to its typeinfo.
hipError_t hipDeviceSynchronize() { return Submit(new xsched::hip::HipCommand()) == 0 ? hipSuccess : hipErrorInvalidValue; }

hipError_t hipLaunchKernel(const void *function, unsigned int, unsigned int, void **, std::size_t, hipStream_t) {
    return Submit(new LaunchCommand(function)) == 0 ? hipSuccess : hipErrorInvalidValue;
}

const char *xsched_shim_hip_version() { return xsched_hal_hip_version(); }

}  // extern "C"
