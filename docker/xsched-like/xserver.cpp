// The scheduler daemon of the XSched-like install: `xserver POLICY PORT`. What it imitates, each
// from XSCHED-FACTS.md (sections 2-5):
// - the server's System V message queue, key 0x1; one already there (stale, or a live server's)
//   is removed and made anew with the IPC library's line, as the real one does: a second xserver
//   does not refuse;
// - the log on stderr in XSched's format: policy, clients connected and closed (with their
//   command line), XQueues created and destroyed, the priority each got;
// - HTTP on PORT: GET /policy, GET /xqueues (JSON), 404 otherwise; no greeting on connect;
// - SIGINT and SIGQUIT: clean exit 0, the queue removed; SIGTERM and SIGKILL: the default death,
//   the queue left behind. A SIGINT ignored when it starts (a background job of a script) stays
//   ignored.
// It schedules nothing (the simulated device does, from what this server reports).
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ipc_protocol.h"
#include "xsched_log.h"

namespace {

const char *const kPolicies[] = {"HPF", "HHPF", "CHPF", "UP", "PUP", "SPUP", "KEDF",
                                 "LAX", "AWF",  "CFS",  "MLFQ"};

volatile std::sig_atomic_t stop_requested = 0;

void RequestStop(int) { stop_requested = 1; }

int PolicyNumber(const std::string &policy) {
    for (std::size_t index = 0; index < sizeof(kPolicies) / sizeof(kPolicies[0]); ++index) {
        if (policy == kPolicies[index]) return static_cast<int>(index) + 1;  // HPF is 1 (section 3)
    }
    return 0;
}

struct XQueueInfo {
    int pid;
    std::string handle;
    int priority, level, threshold, batch_size;
};

std::map<int, std::string> clients;  // pid -> command line
std::vector<XQueueInfo> xqueues;

std::string JsonString(const std::string &text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
            out += escaped;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string XQueuesJson() {
    std::ostringstream out;
    out << "{\"processes\": [";
    bool first = true;
    for (const auto &[pid, cmdline] : clients) {
        out << (first ? "" : ", ") << "{\"pid\": " << pid << ", \"cmdline\": " << JsonString(cmdline) << "}";
        first = false;
    }
    out << "], \"xqueues\": [";
    first = true;
    for (const XQueueInfo &queue : xqueues) {
        out << (first ? "" : ", ") << "{\"pid\": " << queue.pid << ", \"handle\": " << JsonString(queue.handle)
            << ", \"device\": 0, \"priority\": " << queue.priority << ", \"level\": " << queue.level
            << ", \"threshold\": " << queue.threshold << ", \"batch_size\": " << queue.batch_size
            << ", \"ready\": false, \"suspended\": false}";
        first = false;
    }
    out << "]}";
    return out.str();
}

void CloseClient(int pid) {
    if (clients.erase(pid) == 0) return;
    for (auto it = xqueues.begin(); it != xqueues.end();) {
        it = it->pid == pid ? xqueues.erase(it) : it + 1;
    }
    const int client_queue = msgget(static_cast<key_t>(pid), 0);
    if (client_queue >= 0) msgctl(client_queue, IPC_RMID, nullptr);
    xsched_like::Log("XSCHED", "INFO", "client process %d closed", pid);
}

void HandleEvent(const std::string &text) {
    std::istringstream words(text);
    std::string kind;
    int pid = 0;
    words >> kind >> pid;
    if (kind == "connect") {
        std::string cmdline;
        std::getline(words, cmdline);
        if (!cmdline.empty() && cmdline[0] == ' ') cmdline.erase(0, 1);
        clients[pid] = cmdline;
        xsched_like::Log("XSCHED", "INFO", "client process %d connected, cmdline: %s", pid, cmdline.c_str());
    } else if (kind == "xqueue-create") {
        XQueueInfo queue{pid, "", 0, 1, 16, 8};
        words >> queue.handle >> queue.priority >> queue.level >> queue.threshold >> queue.batch_size;
        xqueues.push_back(queue);
        xsched_like::Log("XSCHED", "INFO", "XQueue (%s) from process %d created", queue.handle.c_str(), pid);
        xsched_like::Log("XSCHED", "INFO", "set priority %d for XQueue %s", queue.priority, queue.handle.c_str());
    } else if (kind == "xqueue-destroy") {
        std::string handle;
        words >> handle;
        for (auto it = xqueues.begin(); it != xqueues.end(); ++it) {
            if (it->handle == handle) {
                xqueues.erase(it);
                break;
            }
        }
        xsched_like::Log("XSCHED", "INFO", "XQueue (%s) from process %d destroyed", handle.c_str(), pid);
    } else if (kind == "close") {
        CloseClient(pid);
    }
}

void ServeHttp(int connection, int policy) {
    char request[2048] = {0};
    pollfd wait{connection, POLLIN, 0};
    if (poll(&wait, 1, 1000) <= 0) return;
    const ssize_t length = read(connection, request, sizeof(request) - 1);
    if (length <= 0) return;
    std::istringstream line(request);
    std::string method, path;
    line >> method >> path;
    std::string status = "200 OK", body;
    if (method == "GET" && path == "/policy") {
        body = "{\"policy\" : " + std::to_string(policy) + "}";
    } else if (method == "GET" && path == "/xqueues") {
        body = XQueuesJson();
    } else {
        status = "404 Not Found";
        body = "{\"error\": \"not found\"}";
    }
    const std::string response = "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    ssize_t ignored = write(connection, response.data(), response.size());
    (void)ignored;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s POLICY PORT\n", argv[0]);
        return 2;
    }
    const std::string policy = argv[1];
    const int policy_number = PolicyNumber(policy);
    if (policy_number == 0) {
        std::fprintf(stderr, "xserver: unknown policy '%s' (HPF, HHPF, CHPF, UP, PUP, SPUP, KEDF, LAX, AWF, CFS, MLFQ)\n",
                     policy.c_str());
        return 2;
    }
    char *end = nullptr;
    const long port = std::strtol(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || port < 1 || port > 65535) {
        std::fprintf(stderr, "xserver: invalid port '%s'\n", argv[2]);
        return 2;
    }

    // No SA_RESTART: poll() returns EINTR so the loop sees the stop request. SIGTERM keeps its
    // default action (death, the queue left behind).
    struct sigaction action {};
    action.sa_handler = RequestStop;
    sigemptyset(&action.sa_mask);
    struct sigaction previous {};
    sigaction(SIGINT, nullptr, &previous);
    if (previous.sa_handler != SIG_IGN) sigaction(SIGINT, &action, nullptr);
    sigaction(SIGQUIT, &action, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    xsched_like::Log("XSCHED", "INFO", "scheduler created with policy %s", policy.c_str());
    int server_queue = msgget(xsched_like::kServerQueueKey, IPC_CREAT | IPC_EXCL | 0666);
    if (server_queue < 0 && errno == EEXIST) {
        xsched_like::Log("IPC", "INFO", "kReceiver of Node 'key-1' (key: 0x1) already exists, removing the stale queue");
        msgctl(msgget(xsched_like::kServerQueueKey, 0), IPC_RMID, nullptr);
        server_queue = msgget(xsched_like::kServerQueueKey, IPC_CREAT | IPC_EXCL | 0666);
    }
    if (server_queue < 0) {
        xsched_like::Log("XSCHED", "ERRO", "cannot create the server queue (key 0x1): %s", std::strerror(errno));
        return 1;
    }
    xsched_like::Log("XSCHED", "INFO", "events receiver started");

    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    const int reuse = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0 ||
        listen(listener, 16) != 0) {
        xsched_like::Log("XSCHED", "ERRO", "HTTP server cannot listen on port %ld: %s", port, std::strerror(errno));
        msgctl(server_queue, IPC_RMID, nullptr);
        return 1;
    }
    xsched_like::Log("XSCHED", "INFO", "HTTP server listening on port %ld", port);

    while (!stop_requested) {
        pollfd wait{listener, POLLIN, 0};
        const int ready = poll(&wait, 1, 50);
        if (ready > 0) {
            const int connection = accept(listener, nullptr, nullptr);
            if (connection >= 0) {
                ServeHttp(connection, policy_number);
                close(connection);
            }
        }
        xsched_like::EventMessage message{};
        while (msgrcv(server_queue, &message, xsched_like::kEventTextSize, 0, IPC_NOWAIT) >= 0) {
            message.text[xsched_like::kEventTextSize - 1] = '\0';
            HandleEvent(message.text);
        }
        if (errno == EIDRM || errno == EINVAL) {
            // Another xserver took the queue over (section 4); keep serving, as the real one does.
            server_queue = msgget(xsched_like::kServerQueueKey, 0);
        }
        // A client that died without closing (the real server watches pidfds).
        std::vector<int> gone;
        for (const auto &[pid, cmdline] : clients) {
            if (kill(pid, 0) != 0 && errno == ESRCH) gone.push_back(pid);
        }
        for (int pid : gone) CloseClient(pid);
    }
    close(listener);
    if (server_queue >= 0) msgctl(server_queue, IPC_RMID, nullptr);
    return 0;
}
