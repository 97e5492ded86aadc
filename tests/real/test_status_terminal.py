"""The status table on a user's terminal (a pty on stdin, stdout and stderr, real Jetty
nodes behind haproxy): rich's colours at the terminal's width, printed without loading
rich; the same bytes rich prints there; bold without colours under NO_COLOR; a table
wider than the terminal is rich's to fold."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from sandbox import cluster

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parents[2]
COLUMNS = 160  # the terminal's width: the table of 3 nodes fits
# ``deploy`` as the entry point runs it; as it ends (`fabfile.cli.end`, which skips
# atexit), whether rich was loaded, in a file
WRAPPER = (
    "import sys\n"
    "from fabfile import cli\n"
    "told, ends = sys.argv.pop(1), cli.end\n"
    "def end(code):\n"
    "    open(told, 'w').write(str('rich' in sys.modules))\n"
    "    ends(code)\n"
    "cli.end = end\n"
    "cli.main()\n"
)
TERMINAL = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "COLORTERM")


def on_a_terminal(cwd: Path, tmp_path: Path, **env: str) -> tuple[int, str, bool]:
    """``deploy`` on a fresh pty `COLUMNS` wide, with ``env``: its exit code, what the
    terminal showed (line ends as printed) and whether it loaded rich."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    told = tmp_path / "rich-loaded"
    environ = {k: v for k, v in os.environ.items() if k not in TERMINAL}
    environ.update({"PYTHONPATH": str(REPO), "TERM": "xterm-256color", **env})
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", WRAPPER, str(told)],
            cwd=cwd,
            env=environ,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
    finally:
        os.close(slave)
    shown = b""
    try:
        while chunk := _read(master):
            shown += chunk
    finally:
        os.close(master)
    code = process.wait(timeout=60)
    return code, shown.decode().replace("\r\n", "\n"), told.read_text() == "True"


def _read(master: int) -> bytes:
    """The next bytes the terminal shows; none once the command's end closed it."""
    try:
        return os.read(master, 65536)
    except OSError:  # EIO: every end of the pty's slave is closed
        return b""


def _steady(text: str) -> str:
    """What differs between two runs: the response times, and so their column's width:
    the padding at a line's end, also inside the header's bold (``TIME  \x1b[0m``)."""
    timed = re.sub(r"\b\d+ ms\b", "N ms", text)
    return "\n".join(re.sub(r" +(\x1b\[0m)?$", r"\1", line) for line in timed.splitlines())


def test_the_status_table_on_a_terminal_is_in_rich_s_colours_without_rich(
    on_125: Path, sandbox: cluster.Cluster, tmp_path: Path
) -> None:
    code, shown, loaded = on_a_terminal(on_125, tmp_path)
    assert code == 0 and not loaded, shown
    rows = [line for line in shown.splitlines() if "http://" in line]
    assert len(rows) == len(sandbox.addresses), shown
    assert all("  \x1b[32mOk\x1b[0m  " in row and "  1.0.125  " in row for row in rows), rows
    assert shown.startswith("\x1b[1mURL"), shown
    code, by_rich, loaded = on_a_terminal(on_125, tmp_path, FORCE_COLOR="1")  # rich prints
    assert code == 0 and loaded, by_rich
    assert _steady(shown) == _steady(by_rich)
    assert "\x1b[" in by_rich


def test_under_no_color_the_status_table_is_bold_without_colours(
    on_125: Path, sandbox: cluster.Cluster, tmp_path: Path
) -> None:
    code, shown, loaded = on_a_terminal(on_125, tmp_path, NO_COLOR="1")
    assert code == 0 and not loaded, shown
    assert shown.startswith("\x1b[1mURL") and "\x1b[3" not in shown, shown
    rows = [line for line in shown.splitlines() if "http://" in line]
    assert len(rows) == len(sandbox.addresses), shown
    assert all("  Ok  " in row and "  1.0.125  " in row for row in rows), rows


def test_a_table_wider_than_the_terminal_is_left_to_rich(
    on_125: Path, sandbox: cluster.Cluster, tmp_path: Path
) -> None:
    code, shown, loaded = on_a_terminal(on_125, tmp_path, COLUMNS="90")  # the table: 102
    assert code == 0 and loaded, shown
    assert max(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in shown.splitlines()) <= 90
    assert "\x1b[32mUP\x1b[0m" in shown, shown  # in rich's colours
