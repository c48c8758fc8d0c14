#include "hal_hip.h"

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
extern "C" int xsched_hal_hip_init() { return 0; }
