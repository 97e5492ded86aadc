"""A light node's HTTP server: what a Jetty with the sample webapp answers, in ~1/10 its memory.

Run on a node by ``~/bin/light`` (see `sandbox.scale`) with the system Python and no
site packages (``python3 -S -u light_server.py ADDRESS PORT DELAY_FILE WAR``), so it
needs nothing but the standard library. Like a container, it reads the installed WAR's
coordinates once at start-up, then takes the node's start delay (a JVM's start) before
it binds: until then connections are refused, as while a Jetty starts. ``GET /status``
answers as the sample webapp does (``groupId:artifactId version``, then facts); any other
path answers 200 with a short body (haproxy's traffic and warm-up URLs hit ``/``).
SIGTERM ends it at once, during the delay too.
"""

from __future__ import annotations

import os
import signal
import socketserver
import sys
import time
import zipfile
from types import FrameType


def coordinates(war: str) -> str:
    """``groupId:artifactId version`` from the WAR's Maven pom.properties ('' without one)."""
    try:
        with zipfile.ZipFile(war) as archive:
            names = [n for n in archive.namelist() if n.startswith("META-INF/maven/")]
            name = next(n for n in names if n.endswith("/pom.properties"))
            text = archive.read(name).decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile, StopIteration):
        return ""
    values = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[:1] != "#"
    )
    try:
        return f"{values['groupId']}:{values['artifactId']} {values['version']}"
    except KeyError:
        return ""


class Handler(socketserver.StreamRequestHandler):
    """Answers GET requests on one connection, kept alive as HTTP/1.1 allows.

    socketserver, not http.server: http.server brings the email package and ~7 MiB of
    RSS per node (18 against 11.7 MiB measured here) for what a GET needs."""

    status = b""  # the /status body; empty when no WAR was installed
    timeout = 60  # an idle kept-alive connection gives its thread back

    def handle(self) -> None:
        try:
            while self.answer_one():
                pass
        except OSError:  # the peer went away, or the idle timeout passed
            pass

    def answer_one(self) -> bool:
        """Read one request and answer it; whether the connection stays open."""
        line = self.rfile.readline(8192)
        words = line.split()
        if len(words) != 3:
            return False
        headers = set()
        while (header := self.rfile.readline(8192)) not in (b"\r\n", b"\n", b""):
            headers.add(b"".join(header.split()).lower())  # b"connection:close"
        path = words[1].partition(b"?")[0]
        if path != b"/status":
            code, body = b"200 OK", b"light node\n"
        elif self.status:
            code, body = b"200 OK", self.status
        else:
            code, body = b"404 Not Found", b"no WAR installed\n"
        if words[2] == b"HTTP/1.1":
            keep = b"connection:close" not in headers
        else:
            keep = b"connection:keep-alive" in headers
        head = (
            b"HTTP/1.1 " + code + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n"
            + (b"" if keep else b"Connection: close\r\n")
            + b"\r\n"
        )
        self.wfile.write(head + (b"" if words[0] == b"HEAD" else body))
        return keep


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def _stop(number: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> None:
    address, port, delay_file, war = argv
    signal.signal(signal.SIGTERM, _stop)
    found = coordinates(war)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    body = f"{found}\npid: {os.getpid()}\nstarted: {started}\n".encode() if found else b""
    try:
        with open(delay_file) as file:
            delay = float(file.read().strip() or 0)
    except (OSError, ValueError):
        delay = 0.0
    print(f"{started} {found or 'no WAR'}; binding {address}:{port} in {delay:g} s", flush=True)
    time.sleep(delay)
    Handler.status = body
    with Server((address, int(port)), Handler) as server:
        print(f"{time.strftime('%H:%M:%S')} listening", flush=True)
        try:
            server.serve_forever()
        finally:
            print(f"{time.strftime('%H:%M:%S')} stopped", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
