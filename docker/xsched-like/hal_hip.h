// The HIP HAL of the XSched-like install. The current HAL defines xsched::hip::HipCommand with
// an out-of-line virtual destructor, so that its typeinfo (_ZTIN6xsched3hip10HipCommandE) and
// vtable (_ZTVN6xsched3hip10HipCommandE) are emitted only in libhalhip.so: a shim that uses them
// fails to load when the loader picks an older libhalhip.so that lacks the class.
#pragma once

#include "preempt.h"

namespace xsched {
namespace hip {

class HipCommand : public preempt::HwCommand {
public:
    // Inline, as in XSched: a subclass constructed in another library writes HipCommand's vtable
    // pointer there, so that library refers to _ZTVN6xsched3hip10HipCommandE.
    HipCommand() = default;
    ~HipCommand() override;  // out of line: anchors typeinfo and vtable in libhalhip.so
    int Launch() override;
    virtual int Synchronize();
    int Launched() const { return launched_; }

protected:
    int launched_ = 0;
};

}  // namespace hip
}  // namespace xsched

extern "C" const char *xsched_hal_hip_version();
// Finds the real HIP runtime (XSCHED_HIP_LIB, else the usual folders) and forwards hipInit to it.
extern "C" int xsched_hal_hip_init(unsigned int flags);
