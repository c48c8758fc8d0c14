// The scheduler daemon of the XSched-like install: `xserver POLICY PORT`.
// Listens on 0.0.0.0:PORT; every connection gets one status line, "XSERVER <policy> OK", and
// one log line on stdout, so readiness can be polled. Exits 0 on SIGTERM or SIGINT.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

const char *const kPolicies[] = {"HPF", "HHPF", "CHPF", "UP", "PUP", "SPUP", "KEDF",
                                 "LAX", "AWF",  "CFS",  "MLFQ"};

volatile std::sig_atomic_t stop_requested = 0;

void RequestStop(int) { stop_requested = 1; }

bool KnownPolicy(const std::string &policy) {
    for (const char *known : kPolicies) {
        if (policy == known) return true;
    }
    return false;
}

}  // namespace

int main(int argc, char **argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s POLICY PORT\n", argv[0]);
        return 2;
    }
    const std::string policy = argv[1];
    if (!KnownPolicy(policy)) {
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

    // No SA_RESTART: accept() returns EINTR so the loop sees the stop request.
    struct sigaction action {};
    action.sa_handler = RequestStop;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) {
        std::perror("xserver: socket");
        return 1;
    }
    const int reuse = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (bind(listener, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0) {
        std::fprintf(stderr, "xserver: cannot bind 0.0.0.0:%ld: %s\n", port, std::strerror(errno));
        return 1;
    }
    if (listen(listener, 16) != 0) {
        std::perror("xserver: listen");
        return 1;
    }
    std::printf("xserver: policy %s, listening on 0.0.0.0:%ld, pid %d\n", policy.c_str(), port,
                static_cast<int>(getpid()));

    const std::string status = "XSERVER " + policy + " OK\n";
    unsigned long connections = 0;
    while (!stop_requested) {
        sockaddr_in peer{};
        socklen_t peer_length = sizeof(peer);
        const int connection = accept(listener, reinterpret_cast<sockaddr *>(&peer), &peer_length);
        if (connection < 0) {
            if (errno == EINTR) continue;
            std::perror("xserver: accept");
            break;
        }
        ++connections;
        char peer_text[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &peer.sin_addr, peer_text, sizeof(peer_text));
        std::printf("xserver: connection %lu from %s:%u\n", connections, peer_text,
                    static_cast<unsigned>(ntohs(peer.sin_port)));
        ssize_t ignored = write(connection, status.data(), status.size());
        (void)ignored;
        close(connection);
    }
    close(listener);
    std::printf("xserver: stopping after %lu connections\n", connections);
    return 0;
}
