"""Start-up: what ``deploy --version``, ``deploy --help`` and the status table load.

Each command runs in a fresh interpreter (this checkout's ``fabfile.cli.main``, what the
``deploy`` entry point runs) that prints the modules it loaded; SSH (Paramiko, Fabric),
the Tomcat manager client and matplotlib must not be among them where the command does
not use them. A property, not a timing: ``bench/startup.py`` measures the time.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import fabfile
from fabfile.cli import bare
from fabfile.cluster.probe import Status
from fabfile.commands import status
from fabfile.errors import ExitCode
from tests import cli

REPO = Path(__file__).resolve().parents[2]
# SSH and what needs it, and the drawing library of `deploy report`
UNUSED = ("paramiko", "fabric", "matplotlib", "fabfile.cluster.node", "fabfile.cluster.session")
# what the status table of a rolling app has no use for: Invoke's program and tasks (its
# fast path, `fabfile.cli.bare`), the Tomcat manager, the other strategies, the rollout's
# machinery, WAR reading, rich's emoji table; the delivery metrics and their statistics,
# concurrent.futures and the logging it brings (the probes run in `inflight.each`'s
# threads), tempfile and shutil (the WAR cache's writer); rich, piped (`fabfile.view.grid`
# prints its bytes), difflib (the config table's), the lock file's secrets and hmac and
# the warm-up (a rollout's)
NOT_FOR_STATUS = (
    "invoke",
    "fabfile.cli.program",
    "fabfile.cli.tasks",
    "fabfile.cluster.manager",
    "fabfile.engine.strategies.bluegreen",
    "fabfile.engine.strategies.parallel",
    "fabfile.engine.batches",
    "fabfile.engine.target",
    "fabfile.app.artifact",
    "javaproperties",
    "rich._emoji_codes",
    "fabfile.records.metrics",
    "statistics",
    "concurrent.futures",
    "logging",
    "tempfile",
    "shutil",
    "rich",
    "difflib",
    "secrets",
    "hmac",
    "fabfile.records.lock",
    "fabfile.cluster.takenout",
    "fabfile.engine.warmup",
)
RUN = """
import json, sys
from fabfile.cli import run  # what main runs, without ending the process at once
try:
    run(["deploy", *sys.argv[1:]])
except SystemExit as exit:
    code = exit.code
else:
    code = 0
sys.stdout.flush()
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""


def deploy(*argv: str, cwd: Path) -> tuple[int, str, str, set[str]]:
    """``deploy ARGV`` in a fresh interpreter: exit code, stdout, stderr and the modules
    it loaded."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", RUN, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    *err, modules = done.stderr.rstrip("\n").split("\n")
    return done.returncode, done.stdout, "\n".join(err), set(json.loads(modules))


def loaded(modules: set[str], *names: str) -> list[str]:
    """The modules among ``modules`` that are ``names`` or inside them."""
    return sorted(m for m in modules for n in names if m == n or m.startswith(n + "."))


class _Node(http.server.BaseHTTPRequestHandler):
    answer = (200, "com.example:shop 1.0.0\n")

    def do_GET(self) -> None:
        code, body = self.answer
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def node() -> Iterator[http.server.ThreadingHTTPServer]:
    """A /status on 127.0.0.1, a free port, answering what `_Node.answer` says."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        _Node.answer = (200, "com.example:shop 1.0.0\n")


@pytest.fixture
def app(tmp_path: Path, node: http.server.ThreadingHTTPServer) -> Path:
    """An app directory whose one node is `node`; its SSH port refuses at once (port 1)."""
    path = tmp_path / "shop"
    path.mkdir()
    port = node.server_address[1]
    (path / ".config").write_text(
        f"[deploy]\nhosts = 127.0.0.1\nuser = u\nport = 1\n"
        f"status_url = http://{{host}}:{port}/status\nconnect_timeout = 2\n"
    )
    return path


def test_version_loads_nothing_but_the_package(tmp_path: Path) -> None:
    code, out, _, modules = deploy("--version", cwd=tmp_path)
    assert (code, out) == (0, f"deploy {fabfile.__version__}\n")
    assert loaded(modules, "invoke", "rich", *UNUSED) == []
    assert loaded(modules, "fabfile") == ["fabfile", "fabfile.cli", "fabfile.version"]


def test_help_loads_no_command_and_no_ssh(tmp_path: Path) -> None:
    code, out, _, modules = deploy("--help", cwd=tmp_path)
    assert code == 0 and out.startswith("Usage: deploy [COMMAND] [FLAGS]")
    assert "  rollback       Go back to the release before the current one." in out
    commands = ("fabfile.commands", "fabfile.cluster", "fabfile.engine.strategies")
    assert loaded(modules, *UNUSED, *commands, "fabfile.app.config", "rich") == []
    code, out, _, modules = deploy("rollback", "--help", cwd=tmp_path)
    assert code == 0 and out.startswith("Usage: deploy rollback [--dry-run] [FLAGS]")
    assert loaded(modules, *UNUSED, *commands) == []


def test_status_of_a_calm_cluster_loads_no_ssh_and_reads_no_lock(app: Path) -> None:
    code, out, err, modules = deploy(cwd=app)
    assert code == 0, out + err
    assert "127.0.0.1" in out and "Ok" in out and "1.0.0" in out
    assert "lock:" not in out + err
    assert loaded(modules, *UNUSED, "fabfile.commands.locks") == []


@pytest.mark.parametrize("argv", [[], ["--json"], ["status", "-j", "-H", "127.0.0.1"]])
def test_status_goes_by_its_fast_path_without_invoke(app: Path, argv: list[str]) -> None:
    code, out, err, modules = deploy(*argv, cwd=app)
    assert code == 0, out + err
    assert "1.0.0" in out
    assert loaded(modules, *NOT_FOR_STATUS) == []


@pytest.mark.parametrize(
    ("words", "given"),
    [
        ([], {}),
        (["status"], {}),
        (["--json"], {"json": True}),
        (["-j", "-H", "a,b"], {"json": True, "hosts": "a,b"}),
        (["status", "--hosts=a", "--lb", "x"], {"hosts": "a", "lb": "x"}),
        (["-C", "old.war", "--app", "shop"], {"app-dir": "old.war", "app": "shop"}),
        (["--app-dir=d", "status"], {"app-dir": "d"}),
    ],
)
def test_the_fast_path_takes_the_status_flags(
    words: list[str], given: dict[str, str | bool]
) -> None:
    assert bare.parse(words) == given


@pytest.mark.parametrize(
    "words",
    [
        ["rollback"],
        ["x.war"],
        ["--latest"],
        ["--help"],
        ["-h"],
        ["status", "-h"],
        ["status", "status"],
        ["config", "diff"],
        ["--json=yes"],
        ["--json", "--json"],
        ["--hosts"],
        ["--hosts="],
        ["--hosts", "-j"],
        ["-Ha"],
        ["-jH", "a"],
        ["--dry"],
        ["-R"],
        ["--limit", "5"],
        ["--"],
    ],
)
def test_anything_else_goes_to_the_program(words: list[str]) -> None:
    """Another command, help, or a mistake: the program's messages stay the only ones."""
    assert bare.parse(words) is None


def _steady(text: str) -> str:
    """What differs between two runs: the response times (and so the width of their
    column, the last one)."""
    text = re.sub(r"\b\d+ ms\b", "N ms", text)
    text = re.sub(r'"seconds": [0-9.e-]+', '"seconds": N', text)
    return "\n".join(line.rstrip() for line in text.splitlines())


@pytest.mark.parametrize("answer", [(200, "com.example:shop 1.0.0\n"), (503, "starting")])
@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--json"],
        ["status", "-H", "127.0.0.1"],
        ["--hosts", "nope"],
        ["--lb", "x"],
        ["--app-dir", "missing"],
        ["--app", "nope"],
    ],
)
def test_the_fast_path_says_what_the_program_says(
    app: Path, argv: list[str], answer: tuple[int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _Node.answer = answer
    assert bare.parse(argv) is not None
    fast = cli.run(argv, app, capsys)
    program = cli.run(argv, app, capsys, program=True)
    assert (fast.code, _steady(fast.out), _steady(fast.err)) == (
        program.code,
        _steady(program.out),
        _steady(program.err),
    )


def test_status_reads_the_lock_when_a_node_fails_and_needs_no_ssh_where_sshd_refuses(
    app: Path,
) -> None:
    _Node.answer = (503, "starting")
    code, out, err, modules = deploy(cwd=app)
    assert code == 1, out + err
    assert "HTTP 503" in out
    said = "127.0.0.1: sshd at 127.0.0.1:1 refused the connection: is sshd running there"
    assert f"lock: not read on 127.0.0.1 ({said}" in out, out  # port 1 refuses
    assert loaded(modules, "fabfile.commands.locks")
    assert loaded(modules, *UNUSED) == []  # its refusal is told without SSH


def test_status_reads_the_lock_over_ssh_where_sshd_takes_the_connection(
    app: Path, tmp_path: Path
) -> None:
    listening = socket.create_server(("127.0.0.1", 0))  # takes it, never speaks SSH
    try:
        port = listening.getsockname()[1]
        config = app / ".config"
        config.write_text(
            config.read_text()
            .replace("port = 1\n", f"port = {port}\n")
            .replace("connect_timeout = 2", "connect_timeout = 0.5")
        )
        _Node.answer = (503, "starting")
        code, out, err, modules = deploy(cwd=app)
    finally:
        listening.close()
    assert code == 1, out + err
    assert f"lock: not read on 127.0.0.1 (127.0.0.1: sshd at 127.0.0.1:{port} " in out, out
    assert loaded(modules, "paramiko", "fabfile.cluster.node")


def test_status_json_says_the_lock_on_stderr_when_a_node_fails(app: Path) -> None:
    _Node.answer = (503, "starting")
    code, out, err, _ = deploy("--json", cwd=app)
    assert code == 1
    assert [row["host"] for row in json.loads(out)] == ["127.0.0.1"]
    assert "lock: not read on 127.0.0.1 (" in err


def test_the_namespace_is_built_on_first_use_and_lists_every_command(tmp_path: Path) -> None:
    script = (
        "import sys, fabfile\n"
        "assert 'fabfile.cli.tasks' not in sys.modules, 'built at import'\n"
        "from invoke import Collection\n"
        "ns = Collection.from_module(fabfile)\n"  # how inv and fab load it
        "from fabfile import ns as same\n"
        "assert same is fabfile.ns\n"
        "print(ns.default, sorted(ns.task_names))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('paramiko', 'fabric.'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    default, ssh = done.stdout.splitlines()
    assert default.startswith("status [") and "'rollback'" in default and "'report'" in default
    assert ssh == "[]"
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        fabfile.nope  # noqa: B018


def _ok(host: str, version: str = "1.0.1", ok: bool = True) -> Status:
    return Status(host, f"http://{host}/status", ok, "" if ok else "HTTP 503", 200, "g:a", version)


@pytest.mark.parametrize(
    ("statuses", "expected", "live", "unfinished", "calm"),
    [
        ([_ok("a"), _ok("b")], "1.0.1", None, False, True),
        ([_ok("a"), _ok("b")], None, None, False, True),  # no history here: one version
        ([_ok("a"), _ok("b", "1.0.2")], "1.0.1", None, False, False),  # a run half-way
        ([_ok("a", "1.0.2"), _ok("b", "1.0.2")], "1.0.1", None, False, False),  # another's
        ([_ok("a"), _ok("b", ok=False)], "1.0.1", None, False, False),
        ([_ok("a"), _ok("b")], "1.0.1", None, True, False),  # a run of ours has no end
        # blue/green: the idle colour runs another release by design, but must answer
        ([_ok("a/blue"), _ok("a/green", "1.0.0")], "1.0.1", {"a/blue": True}, False, True),
        ([_ok("a/blue"), _ok("a/green", ok=False)], "1.0.1", {"a/blue": True}, False, False),
    ],
)
def test_calm_is_every_node_ok_on_one_version_and_no_run_without_an_end(
    statuses: list[Status],
    expected: str | None,
    live: dict[str, bool] | None,
    unfinished: bool,
    calm: bool,
) -> None:
    assert status._calm(ExitCode.OK, statuses, expected, live, unfinished) is calm
    assert status._calm(ExitCode.NODE_FAILED, statuses, expected, live, unfinished) is False
