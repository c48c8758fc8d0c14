#include "preempt.h"

namespace xsched {
namespace preempt {

static std::uint64_t next_index = 0;

HwCommand::HwCommand() : index_(next_index++) {}
HwCommand::~HwCommand() = default;

XQueue::XQueue(int priority) : priority_(priority) {}

int XQueue::Submit(HwCommand *command) {
    if (command == nullptr) return -1;
    ++submitted_;
    return command->Launch();
}

}  // namespace preempt
}  // namespace xsched

extern "C" const char *xsched_preempt_version() { return "1.2.0"; }
