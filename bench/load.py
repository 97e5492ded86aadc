"""A paced HTTP load with wrk, kept up for as long as a scenario runs.

wrk prints its figures only when its duration ends, so the load runs as
back-to-back short wrk runs whose figures are added up. Each run is paced by
a Lua ``delay()`` (unpaced, wrk would take both cores and distort every
timing). Failures are non-2xx/3xx responses plus socket errors. With ``flaky``, the
sample app's own failures (``500 flaky build``, its ``flaky`` mode) are counted apart:
what a broken release does to its users, not what the tool did.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

CHUNK_SECONDS = 2
CONNECTIONS = 8
_PACE = "function delay()\n  return {delay_ms}\nend\n"
# the sample's own 500s, counted per wrk thread and added up at the end
_FLAKY = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) flaky = 0 end
function response(status, headers, body)
  if status == 500 and string.sub(body, 1, 11) == "flaky build" then flaky = flaky + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("flaky") end
  io.write(string.format("flaky build: %d\\n", total))
end
"""


@dataclasses.dataclass
class Figures:
    requests: int = 0
    failed: int = 0  # the release's own failures (`flaky`) included
    flaky: int = 0

    def add(self, text: str) -> None:
        if match := re.search(r"(\d+) requests in", text):
            self.requests += int(match[1])
        if match := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
            self.failed += int(match[1])
        if match := re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
        ):
            self.failed += sum(int(n) for n in match.groups())
        if match := re.search(r"flaky build: (\d+)", text):
            self.flaky += int(match[1])


class Load:
    """``with Load(url, rate) as load:`` keeps ~rate requests/s on url."""

    def __init__(self, url: str, rate: int, flaky: bool = False) -> None:
        self.url = url
        self.figures = Figures()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        delay_ms = max(1, round(1000 * CONNECTIONS / rate))
        descriptor, name = tempfile.mkstemp(suffix=".lua")
        os.close(descriptor)
        self._script = Path(name)
        self._script.write_text(_PACE.format(delay_ms=delay_ms) + (_FLAKY if flaky else ""))

    def _run(self) -> None:
        command = [
            "wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", f"{CHUNK_SECONDS}s",
            "--timeout", "5s", "-s", str(self._script), self.url,
        ]  # fmt: skip
        while not self._stop.is_set():
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            self.figures.add(done.stdout)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._script.unlink(missing_ok=True)
