#!/usr/bin/env python3
"""xsched-ops' STAND-IN for NVIDIA's nvidia-cuda-mps-control, for the sandbox only (no GPU there).

It is not MPS and shares no GPU context: it plays the control daemon's command-line contract so
that xsched-ops' MPS lifecycle can be tested without a GPU:
  nvidia-cuda-mps-control -d       start the daemon (pipe and log folders from
                                   CUDA_MPS_PIPE_DIRECTORY / CUDA_MPS_LOG_DIRECTORY), return at once
  echo CMD | nvidia-cuda-mps-control   get_server_list | get_client_list PID | quit
Its "server" is the daemon itself; its "clients" are the processes whose environment points
CUDA_MPS_PIPE_DIRECTORY at its pipe folder (what a real CUDA client uses to find the daemon).
"""
import os
import socket
import subprocess
import sys
import time

PIPE = os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps")
LOG = os.environ.get("CUDA_MPS_LOG_DIRECTORY", "/var/log/nvidia-mps")
SOCKET = os.path.join(PIPE, "control")
NAME = "nvidia-cuda-mps-control"


def log(text):
    with open(os.path.join(LOG, "control.log"), "a") as handle:
        handle.write("[%s] %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), text))


def clients():
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            environ = open("/proc/%s/environ" % name, "rb").read().split(b"\0")
            argv0 = open("/proc/%s/cmdline" % name, "rb").read().split(b"\0")[0]
        except OSError:
            continue
        if os.path.basename(argv0.decode(errors="replace")) == NAME:
            continue
        if ("CUDA_MPS_PIPE_DIRECTORY=" + PIPE).encode() in environ:
            found.append(int(name))
    return sorted(found)


def serve():
    os.makedirs(PIPE, exist_ok=True)
    os.makedirs(LOG, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(SOCKET):
        os.unlink(SOCKET)
    server.bind(SOCKET)
    server.listen(8)
    log("Control daemon started (xsched-ops stand-in), pid %d" % os.getpid())
    while True:
        connection, _ = server.accept()
        with connection:
            command = connection.makefile().readline().split()
            reply = ""
            if command[:1] == ["get_server_list"]:
                reply = "%d\n" % os.getpid() if clients() else ""
            elif command[:1] == ["get_client_list"]:
                reply = "".join("%d\n" % pid for pid in clients())
            elif command[:1] == ["quit"]:
                log("Control daemon quit")
                connection.sendall(b"")
                break
            else:
                reply = "unknown command\n"
            connection.sendall(reply.encode())
    server.close()
    os.unlink(SOCKET)


def control():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.connect(SOCKET)
                connection.sendall(line.strip().encode() + b"\n")
                connection.shutdown(socket.SHUT_WR)
                sys.stdout.write(connection.makefile().read())
        except OSError as err:
            sys.stderr.write("Cannot find MPS control daemon process (%s)\n" % err)
            return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["-d"]:
        # argv[0] becomes the real daemon's name, so that process listings find it as such.
        subprocess.Popen(["bash", "-c", 'exec -a %s python3 "$0" --serve' % NAME, os.path.abspath(__file__)],
                         start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(SOCKET) and time.monotonic() < deadline:
            time.sleep(0.05)
        sys.exit(0 if os.path.exists(SOCKET) else 1)
    if sys.argv[1:] == ["--serve"]:
        serve()
        sys.exit(0)
    sys.exit(control())
