// The CUDA HAL of the XSched-like install. As for HIP, xsched::cuda::CudaCommand has an
// out-of-line virtual destructor, so that its typeinfo (_ZTIN6xsched4cuda11CudaCommandE) and
// vtable (_ZTVN6xsched4cuda11CudaCommandE) are emitted only in libhalcuda.so.
#pragma once

#include "preempt.h"

namespace xsched {
namespace cuda {

class CudaCommand : public preempt::HwCommand {
public:
    CudaCommand() = default;
    ~CudaCommand() override;  // out of line: anchors typeinfo and vtable in libhalcuda.so
    int Launch() override;
    virtual int Synchronize();
    int Launched() const { return launched_; }

protected:
    int launched_ = 0;
};

}  // namespace cuda
}  // namespace xsched

extern "C" const char *xsched_hal_cuda_version();
// Finds the real driver (XSCHED_CUDA_LIB, else the usual folders) and forwards cuInit to it.
extern "C" int xsched_hal_cuda_init(unsigned int flags);
