#include "hal_cuda.h"

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
extern "C" int xsched_hal_cuda_init() { return 0; }
