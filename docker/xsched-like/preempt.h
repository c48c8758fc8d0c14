// The preempt library of the XSched-like install: the hardware-command base class that every
// HAL command derives from, and a tiny XQueue. Bodies are trivial; what matters is where the
// symbols live, so that the dynamic loader behaves as it does for a real XSched build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xsched {
namespace preempt {

class HwCommand {
public:
    HwCommand();
    // Out of line (preempt.cpp), so the typeinfo and vtable of HwCommand live in libpreempt.so.
    virtual ~HwCommand();
    virtual int Launch() = 0;
    std::uint64_t Index() const { return index_; }

private:
    std::uint64_t index_;
};

class XQueue {
public:
    explicit XQueue(int priority);
    int Submit(HwCommand *command);
    int Priority() const { return priority_; }
    std::size_t Submitted() const { return submitted_; }

private:
    int priority_;
    std::size_t submitted_ = 0;
};

}  // namespace preempt
}  // namespace xsched

extern "C" const char *xsched_preempt_version();

// The client side of XSched's scheduling (preempt.cpp). At load time libpreempt.so picks the
// process's scheduler from XSCHED_POLICY / XSCHED_SCHEDULER and, for the global one, connects
// to the xserver. The shims call this for every hardware queue they see (the runtime's default
// queue at init, each created stream): with XSCHED_AUTO_XQUEUE=ON it creates an XQueue for it.
extern "C" void xsched_like_auto_xqueue(const char *platform, const void *hw_queue);
