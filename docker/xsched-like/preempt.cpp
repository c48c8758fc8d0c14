#include "preempt.h"

#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ipc_protocol.h"
#include "xsched_log.h"

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

namespace {

const char *const kPolicies[] = {"HPF", "HHPF", "CHPF", "UP", "PUP", "SPUP", "KEDF",
                                 "LAX", "AWF",  "CFS",  "MLFQ"};

enum class Scheduler { kApp, kLocal, kGlobal };

Scheduler scheduler = Scheduler::kApp;
int server_queue = -1;
int client_queue = -1;
std::atomic<unsigned> xqueue_count{0};

bool KnownPolicy(const char *policy) {
    for (const char *known : kPolicies) {
        if (std::strcmp(policy, known) == 0) return true;
    }
    return false;
}

std::string CommandLine() {
    std::string text;
    if (FILE *file = std::fopen("/proc/self/cmdline", "rb")) {
        int c;
        while ((c = std::fgetc(file)) != EOF && text.size() < 700) text.push_back(c == '\0' ? ' ' : static_cast<char>(c));
        std::fclose(file);
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
}

// Fact (section 1): events go to the server's queue; with a stale queue left by a dead xserver
// they pile up there unread and nothing warns. IPC_NOWAIT: a full dead queue must not block.
bool SendEvent(const std::string &text) {
    xsched_like::EventMessage message{};
    message.type = 1;
    std::snprintf(message.text, sizeof(message.text), "%s", text.c_str());
    return msgsnd(server_queue, &message, std::strlen(message.text) + 1, IPC_NOWAIT) == 0 || errno == EAGAIN;
}

void Disconnect() {
    if (scheduler != Scheduler::kGlobal || server_queue < 0) return;
    SendEvent("close " + std::to_string(getpid()));
    if (client_queue >= 0) msgctl(client_queue, IPC_RMID, nullptr);
    client_queue = -1;
}

int IntSetting(const char *name, int fallback) {
    const char *text = std::getenv(name);
    if (text == nullptr || *text == '\0') return fallback;
    return std::atoi(text);
}

// Runs when the shim's libraries are loaded, before the program's main or right at its dlopen.
__attribute__((constructor)) void ChooseScheduler() {
    const char *policy = std::getenv("XSCHED_POLICY");
    const char *kind = std::getenv("XSCHED_SCHEDULER");
    // Fact (sections 1, 7): a valid XSCHED_POLICY gives a local scheduler and XSCHED_SCHEDULER is
    // ignored; XSCHED_POLICY=GBL (no policy) and XSCHED_SCHEDULER=LCL without a policy fall
    // through to the app-managed scheduler with only an INFO line.
    if (policy != nullptr && KnownPolicy(policy)) {
        scheduler = Scheduler::kLocal;
        // The real wording of this line is not in the facts; the other two are.
        xsched_like::Log("XSCHED", "INFO", "using local scheduler with policy %s", policy);
        return;
    }
    if (kind != nullptr && std::strcmp(kind, "GLB") == 0) {
        scheduler = Scheduler::kGlobal;
        xsched_like::Log("XSCHED", "INFO", "using global scheduler");
        server_queue = msgget(xsched_like::kServerQueueKey, 0);
        const pid_t pid = getpid();
        // Each client holds a queue keyed by its pid (section 4: left behind when the server is killed).
        if (server_queue >= 0) client_queue = msgget(static_cast<key_t>(pid), IPC_CREAT | 0666);
        if (server_queue < 0 || !SendEvent("connect " + std::to_string(pid) + " " + CommandLine())) {
            // Fact (section 1): no xserver -> the client dies at once, exit code 1, with this line.
            xsched_like::Log("XSCHED", "ERRO",
                             "Assertion failed: failed to send event to server @ "
                             "/xsched-like/sched/src/scheduler/global.cpp:54");
            if (client_queue >= 0) msgctl(client_queue, IPC_RMID, nullptr);
            _exit(1);
        }
        std::atexit(Disconnect);
        return;
    }
    scheduler = Scheduler::kApp;
    xsched_like::Log("XSCHED", "INFO", "using app-managed scheduler");
}

}  // namespace

extern "C" void xsched_like_auto_xqueue(const char *platform, const void *hw_queue) {
    const char *automatic = std::getenv("XSCHED_AUTO_XQUEUE");
    if (automatic == nullptr || std::strcmp(automatic, "ON") != 0) return;
    const int level = IntSetting("XSCHED_AUTO_XQUEUE_LEVEL", 1);
    // Fact (section 1): an out-of-range level is not refused: one warning per queue, no XQueue,
    // the process runs unscheduled. Fact (section 7): HIP implements level 1 only.
    const bool hip = std::strcmp(platform, "HIP") == 0;
    if (level < 1 || level > 3 || (hip && level > 1)) {
        if (hip && level > 1 && level <= 3) xsched_like::Log("XSCHED", "WARN", "HIP level-%d XQueue not yet implemented", level);
        xsched_like::Log("XSCHED", "WARN", "fail to auto-create XQueue (level-%d) for HwQueue %p, err: 2", level, hw_queue);
        return;
    }
    const pid_t pid = getpid();
    const unsigned long long handle = (static_cast<unsigned long long>(pid) << 36) ^
        (reinterpret_cast<std::uintptr_t>(hw_queue) & 0xfffffffffULL) ^ (++xqueue_count);
    const int priority = IntSetting("XSCHED_AUTO_XQUEUE_PRIORITY", 0);
    const int threshold = IntSetting("XSCHED_AUTO_XQUEUE_THRESHOLD", 16);
    const int batch = IntSetting("XSCHED_AUTO_XQUEUE_BATCH_SIZE", 8);
    if (scheduler == Scheduler::kGlobal) {
        char text[200];
        std::snprintf(text, sizeof(text), "xqueue-create %d 0x%llx %d %d %d %d", static_cast<int>(pid), handle,
                      priority, level, threshold, batch);
        SendEvent(text);
    } else if (scheduler == Scheduler::kLocal) {
        // Fact (section 1): a local scheduler logs its own XQueues in the process.
        xsched_like::Log("XSCHED", "INFO", "XQueue (0x%llx) from process %d created", handle, static_cast<int>(pid));
    }
    // App-managed: the XQueue exists but nothing schedules it; nothing is logged.
}
