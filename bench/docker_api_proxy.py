"""A logging proxy for the Docker engine API: counts the HTTP requests a client makes.

    .venv/bin/python bench/docker_api_proxy.py --listen /tmp/docker-proxy.sock [--log FILE]
        [--upstream /var/run/docker.sock]

Then point the client at it: ``DOCKER_HOST=unix:///tmp/docker-proxy.sock xsched-ops doctor ...``
(or ``--docker-host``). Every request (method, path, time) is printed to stderr, and appended as
one JSON line to ``--log`` when given. Bytes are passed through unchanged in both directions;
the client-to-engine stream is parsed only to find where each request starts (request line,
headers, a body of ``Content-Length`` bytes or chunked). A request that upgrades the connection
(``docker exec``'s attach: ``Connection: Upgrade``) ends the parsing of that connection: what
follows is the process's raw stdin.

Also importable: ``with ApiProxy(listen_path) as proxy: ...; proxy.requests`` (a list of
``(method, path)`` in arrival order; ``proxy.reset()`` empties it).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time

DEFAULT_UPSTREAM = "/var/run/docker.sock"


class _RequestParser:
    """Finds request lines in a client-to-engine byte stream (HTTP/1.1, keep-alive)."""

    def __init__(self, on_request) -> None:
        self.on_request = on_request
        self.buffer = b""
        self.body_left = 0  # bytes of a Content-Length body still to skip
        self.chunked = False
        self.raw = False  # after an upgrade: nothing more to parse

    def feed(self, data: bytes) -> None:
        if self.raw:
            return
        self.buffer += data
        while self.buffer and not self.raw:
            if self.body_left:
                taken = min(self.body_left, len(self.buffer))
                self.buffer = self.buffer[taken:]
                self.body_left -= taken
                continue
            if self.chunked:
                if not self._skip_chunk():
                    return
                continue
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.on_request(parts[0], parts[1] if len(parts) > 1 else "")
            if "upgrade" in headers.get("connection", "").lower():
                self.raw = True
                self.buffer = b""
                return
            if headers.get("transfer-encoding", "").lower() == "chunked":
                self.chunked = True
            else:
                self.body_left = int(headers.get("content-length", "0") or 0)

    def _skip_chunk(self) -> bool:
        end = self.buffer.find(b"\r\n")
        if end < 0:
            return False
        size = int(self.buffer[:end].split(b";")[0] or b"0", 16)
        if size == 0:  # last chunk: optional trailers, then an empty line
            trailer_end = self.buffer.find(b"\r\n\r\n", end)
            if self.buffer[end:end + 4] == b"\r\n\r\n":
                self.buffer = self.buffer[end + 4:]
            elif trailer_end >= 0:
                self.buffer = self.buffer[trailer_end + 4:]
            else:
                return False
            self.chunked = False
            return True
        if len(self.buffer) < end + 2 + size + 2:
            return False
        self.buffer = self.buffer[end + 2 + size + 2:]
        return True


class ApiProxy:
    """A unix-socket proxy in front of the engine's socket that records every request."""

    def __init__(self, listen: str, upstream: str = DEFAULT_UPSTREAM, log_path: str | None = None,
                 echo: bool = False) -> None:
        self.listen = listen
        self.upstream = upstream
        self.log_path = log_path
        self.echo = echo
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.listen}"

    def reset(self) -> list[tuple[str, str]]:
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))
        if self.echo:
            print(f"{time.strftime('%H:%M:%S')} {method} {path}", file=sys.stderr, flush=True)
        if self.log_path:
            with open(self.log_path, "a") as log:
                log.write(json.dumps({"time": time.time(), "method": method, "path": path}) + "\n")

    def start(self) -> ApiProxy:
        if os.path.exists(self.listen):
            os.unlink(self.listen)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.listen)
        server.listen(64)
        self._server = server
        self._thread = threading.Thread(target=self._accept, name="docker-api-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if os.path.exists(self.listen):
            os.unlink(self.listen)

    def __enter__(self) -> ApiProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while self._server is not None:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            engine.connect(self.upstream)
        except OSError:
            client.close()
            return
        parser = _RequestParser(self._record)

        def pump(source: socket.socket, sink: socket.socket, inspect) -> None:
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    if inspect is not None:
                        inspect(data)
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for end in (sink, source):
                    try:
                        end.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        backwards = threading.Thread(target=pump, args=(engine, client, None), daemon=True)
        backwards.start()
        pump(client, engine, parser.feed)
        backwards.join()
        client.close()
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="/tmp/docker-proxy.sock")
    parser.add_argument("--upstream", default=DEFAULT_UPSTREAM)
    parser.add_argument("--log", default=None, help="append one JSON line per request")
    args = parser.parse_args()
    proxy = ApiProxy(args.listen, args.upstream, args.log, echo=True).start()
    print(f"proxying unix://{args.listen} -> {args.upstream}; DOCKER_HOST=unix://{args.listen}", file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
        print(f"{len(proxy.requests)} requests", file=sys.stderr)


if __name__ == "__main__":
    main()
