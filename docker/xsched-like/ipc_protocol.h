// How the XSched-like clients and xserver talk: System V message queues, as XSched 1.2 does
// (XSCHED-FACTS.md section 5). The server's queue has key 0x1; each client holds a queue whose
// key is its pid. The message text is this project's own (one line of words); only the keys,
// the queues' lifetimes and the log lines they cause imitate the real build.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace xsched_like {

constexpr key_t kServerQueueKey = 0x1;

struct EventMessage {
    long type;          // always 1
    char text[1024];    // "connect PID CMDLINE", "xqueue-create PID HANDLE PRIORITY LEVEL THRESHOLD BATCH",
                        // "xqueue-destroy PID HANDLE", "close PID"
};

constexpr std::size_t kEventTextSize = sizeof(EventMessage::text);

}  // namespace xsched_like
