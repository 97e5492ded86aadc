"""What hooks and notifications add to a run: one ``sh -c true`` hook, one notification
to a receiver on loopback, one to a port nothing listens on (medians of 20, this machine).

    PYTHONPATH=. python bench/hooks.py
"""

from __future__ import annotations

import dataclasses
import http.server
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fabfile.app.config import AppConfig
from fabfile.app.hooks import Hooks
from fabfile.engine import notifications
from fabfile.engine.events import Event, Facts, Kind
from fabfile.engine.hookrunner import HookRunner

FACTS = Facts(
    "shop", "deploy", "1.0.126", "ab" * 32, "g:a", "a.war", ("web1",), "rolling", 1, "f", "u"
)
EVENT = Event(Kind.FINISHED, FACTS, "ok")


class _Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _ms(call: Callable[[], object], times: int = 20) -> str:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        took.append(time.perf_counter() - started)
    return f"median {statistics.median(took) * 1e3:.1f} ms, max {max(took) * 1e3:.1f} ms"


def main() -> None:
    root = Path(tempfile.mkdtemp())
    (root / ".config").write_text("")
    (root / ".config").chmod(0o644)
    hook = HookRunner(
        Hooks({"post_deploy": "true"}, {}, 60, root / ".config"), root, lambda _: None
    )
    print("hook 'true':", _ms(lambda: hook(EVENT)))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = AppConfig(root / ".config", "shop", (), "rolling")
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    sent = notifications.Notifier(dataclasses.replace(base, notify_url=url), print)
    print("notification, loopback receiver:", _ms(lambda: sent(EVENT)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    lost = notifications.Notifier(dataclasses.replace(base, notify_url=dead), lambda _: None)
    print("notification, nothing listening:", _ms(lambda: lost(EVENT)))
    server.shutdown()


if __name__ == "__main__":
    main()
