// A stand-in for the real NVIDIA driver library libcuda.so.1 (SONAME libcuda.so.1), written by
// this project: the sandbox has no NVIDIA driver, so the CUDA scenarios place this file in
// /usr/lib/x86_64-linux-gnu as the "real driver" that XSCHED_CUDA_LIB must point at. It exports
// a few cu* entry points that report no device; it has nothing to do with XSched.
using CUresult = int;
constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;

extern "C" {

CUresult cuInit(unsigned int) { return CUDA_ERROR_NO_DEVICE; }

CUresult cuDriverGetVersion(int *version) {
    if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *version = 12040;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
    if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *count = 0;
    return CUDA_ERROR_NO_DEVICE;
}

const char *xsched_ops_cuda_driver_standin() { return "xsched-ops stand-in for libcuda.so.1"; }

}  // extern "C"
