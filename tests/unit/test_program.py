"""The ``deploy`` command line: the implied task, and what the user sees in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Config, Context
from invoke.exceptions import Exit

from fabfile import __version__
from fabfile.cli import tasks
from fabfile.cli.program import DeployProgram, make_program, route
from fabfile.commands import deploy, history, rollback, status
from fabfile.commands.options import Options
from fabfile.errors import ExitCode
from tests.cli import run


@pytest.mark.parametrize(
    ("argv", "routed"),
    [
        pytest.param([], ["status"], id="bare"),
        pytest.param(["x.war"], ["deploy", "--artifact", "x.war"], id="war"),
        pytest.param(["--latest"], ["deploy", "--latest"], id="latest"),
        pytest.param(["--hosts", "a,b"], ["status", "--hosts", "a,b"], id="hosts"),
        pytest.param(["--json"], ["status", "--json"], id="json"),
        pytest.param(
            ["--hosts", "a", "x.war"],
            ["deploy", "--hosts", "a", "--artifact", "x.war"],
            id="hosts-then-war",
        ),
        pytest.param(
            ["x.war", "--force"], ["deploy", "--artifact", "x.war", "--force"], id="war-force"
        ),
        pytest.param(["deploy", "x.war"], ["deploy", "--artifact", "x.war"], id="deploy-war"),
        pytest.param(
            ["--app-dir", "old.war"], ["status", "--app-dir", "old.war"], id="app-dir-value"
        ),
        pytest.param(["rollback", "--hosts", "a"], ["rollback", "--hosts", "a"], id="rollback"),
        pytest.param(["history", "--limit", "5"], ["history", "--limit", "5"], id="history"),
        pytest.param(["-V"], ["-V"], id="-V"),
        pytest.param(["--version"], ["--version"], id="--version"),
        pytest.param(["--help"], ["--help"], id="--help"),
        pytest.param(["-h", "rollback"], ["-h", "rollback"], id="-h-task"),
        pytest.param(["--help=history"], ["--help=history"], id="--help=task"),
        pytest.param(
            ["--print-completion-script", "bash"],
            ["--print-completion-script", "bash"],
            id="completion-script",
        ),
        pytest.param(["-l"], ["deploy", "-l"], id="-l-is-latest"),
        pytest.param(["-f"], ["deploy", "-f"], id="-f"),
        pytest.param(["-lf"], ["deploy", "-lf"], id="-lf"),
        pytest.param(["--force=yes"], ["deploy", "--force=yes"], id="--force=value"),
        pytest.param(["-Hlocalhost"], ["status", "-Hlocalhost"], id="-H-glued-value"),
        pytest.param(["-j"], ["status", "-j"], id="-j"),
        pytest.param(["-H", "a", "x.war"], ["deploy", "-H", "a", "--artifact", "x.war"], id="-H"),
        pytest.param(["-C", "old.war"], ["status", "-C", "old.war"], id="-C-value"),
        pytest.param(["-fC", "old.war"], ["deploy", "-fC", "old.war"], id="-fC-value"),
        pytest.param(["-C", "apps/x", "rollback"], ["rollback", "-C", "apps/x"], id="-C-rollback"),
        pytest.param(["history", "-n", "5"], ["history", "-n", "5"], id="-n"),
        pytest.param(["-n", "history"], ["status", "-n", "history"], id="-n-value"),
    ],
)
def test_route_inserts_the_implied_task(argv: list[str], routed: list[str]) -> None:
    assert route(["deploy", *argv]) == ["deploy", *routed]


def test_route_sends_an_explicit_artifact_to_deploy() -> None:
    assert route(["deploy", "--artifact", "x.war"]) == ["deploy", "deploy", "--artifact", "x.war"]


def test_make_program_builds_a_fresh_program_each_time() -> None:
    first, second = make_program(), make_program()
    assert isinstance(first, DeployProgram)
    assert first is not second
    assert first.namespace is not second.namespace


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    result = run([flag], tmp_path, capsys)
    assert result.code == ExitCode.OK
    assert result.out.strip() == f"deploy {__version__}"


def test_help_lists_the_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(["--help"], tmp_path, capsys)
    assert result.code == ExitCode.OK
    for name in ("status", "deploy", "rollback", "history"):
        assert f"  {name} " in result.out
    status = next(line for line in result.out.splitlines() if line.startswith("  status "))
    assert status.endswith("(default)")


def test_an_unknown_flag_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["--no-such-flag"], tmp_path, capsys)
    # mypy takes the IntEnum member and 2 for literals that cannot be equal; they are.
    assert result.code == ExitCode.USAGE == 2  # type: ignore[comparison-overlap]
    assert result.err.startswith("error: ")
    assert "--no-such-flag" in result.err
    assert "deploy --help" in result.err


def test_no_config_is_a_usage_error_naming_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as caught:
        make_program().run(["deploy"])
    assert caught.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert f"{tmp_path.resolve()} is not an app directory (no .config)" in err


def test_a_bad_config_is_bad_input_naming_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / ".config"
    config.write_text("[deploy]\nhosts = web1.invalid\nuser = u\nwarmup = soon\n")
    result = run([], tmp_path, capsys)
    assert result.code == ExitCode.BAD_INPUT
    assert f"error: {config}:4: [deploy] warmup = 'soon'" in result.err


def test_hosts_outside_the_config_are_refused_before_any_contact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".config").write_text("[deploy]\nhosts = web1.invalid\nuser = u\n")
    result = run(["--hosts", "web9.invalid"], tmp_path, capsys)
    assert result.code == ExitCode.USAGE
    assert "--hosts names web9.invalid" in result.err


def test_history_without_a_history_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "shop"
    app.mkdir()
    (app / ".config").write_text("[deploy]\nhosts = web1.invalid\nuser = u\n")
    result = run(["history", "--app-dir", str(app)], tmp_path, capsys)
    assert result.code == ExitCode.OK
    assert "no deploys recorded" in result.out
    assert ".deploy-history.jsonl" in result.out


def test_route_leaves_an_artifact_given_with_equals_alone() -> None:
    assert route(["deploy", "--artifact=x.war"]) == ["deploy", "deploy", "--artifact=x.war"]


def test_a_flag_value_of_the_wrong_type_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["history", "--limit", "abc"], tmp_path, capsys)
    assert result.code == 2
    assert result.err == "error: --limit takes a whole number, not 'abc'; see deploy --help\n"


def test_route_finds_the_task_after_flags() -> None:
    assert route(["deploy", "--app-dir", "apps/x", "rollback"]) == [
        "deploy",
        "rollback",
        "--app-dir",
        "apps/x",
    ]
    assert route(["deploy", "--app-dir", "history"]) == ["deploy", "status", "--app-dir", "history"]


# -- what each short flag means, in every command ---------------------------------


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, object]]]:
    """Replace the four commands with recorders: which one ran, with what."""
    seen: list[tuple[str, dict[str, object]]] = []

    def recorder(name: str) -> object:
        def record(options: Options, *args: object, **kwargs: object) -> ExitCode:
            seen.append((name, {"options": options, "args": args, **kwargs}))
            return ExitCode.OK

        return record

    for module in (status, deploy, rollback, history):
        name = module.__name__.rpartition(".")[2]
        monkeypatch.setattr(module, name, recorder(name))
    return seen


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    path.mkdir()
    (path / ".config").write_text("[deploy]\nhosts = web1, web2, web3\nuser = u\n")
    return path


@pytest.mark.parametrize(
    ("argv", "action", "expected"),
    [
        pytest.param(["-l"], "deploy", {"latest": True, "force": False}, id="-l"),
        pytest.param(["-lf"], "deploy", {"latest": True, "force": True}, id="-lf"),
        pytest.param(["x.war", "-f"], "deploy", {"args": ("x.war",), "force": True}, id="-f"),
        pytest.param(["-j"], "status", {"as_json": True}, id="-j"),
        pytest.param(["history", "-n", "3"], "history", {"limit": 3}, id="-n"),
        pytest.param(["history", "-n3"], "history", {"limit": 3}, id="-n3"),
    ],
)
def test_each_short_flag_means_its_long_flag(
    app: Path,
    capsys: pytest.CaptureFixture[str],
    calls: list[tuple[str, dict[str, object]]],
    argv: list[str],
    action: str,
    expected: dict[str, object],
) -> None:
    assert run(argv, app, capsys).code == ExitCode.OK
    [(name, given)] = calls
    assert name == action
    assert {key: given[key] for key in expected} == expected


@pytest.mark.parametrize("command", [[], ["x.war"], ["rollback"]])
def test_dash_big_h_means_hosts_in_every_command_that_takes_hosts(
    app: Path,
    capsys: pytest.CaptureFixture[str],
    calls: list[tuple[str, dict[str, object]]],
    command: list[str],
) -> None:
    assert run([*command, "-H", "web1,web3"], app, capsys).code == ExitCode.OK
    options = calls[0][1]["options"]
    assert isinstance(options, Options)
    assert options.hosts == ("web1", "web3")


@pytest.mark.parametrize("command", [[], ["x.war"], ["rollback"], ["history"]])
def test_dash_big_c_means_app_dir_in_every_command(
    app: Path,
    capsys: pytest.CaptureFixture[str],
    calls: list[tuple[str, dict[str, object]]],
    command: list[str],
) -> None:
    assert run(["-C", str(app), *command], app.parent, capsys).code == ExitCode.OK
    options = calls[0][1]["options"]
    assert isinstance(options, Options)
    assert options.app.path == app.resolve()


def test_dash_l_deploys_the_newest_war_instead_of_listing_tasks(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["-l"], app, capsys)
    assert result.code == ExitCode.BAD_INPUT
    assert "no shop-VERSION.war here" in result.err
    assert "Subcommands" not in result.out


# -- only deploy --dry-run is a dry run: refuse its kin, never deploy --------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--dry"],
        ["-R"],
        ["x.war", "--dryrun"],
        ["--latest", "--dry"],
        ["-fR", "x.war"],
        ["rollback", "--dryrun"],
        ["--hosts", "web1", "--DRY-RUN", "rollback"],
    ],
)
def test_a_dry_run_flag_is_refused_and_nothing_runs(
    app: Path,
    capsys: pytest.CaptureFixture[str],
    calls: list[tuple[str, dict[str, object]]],
    argv: list[str],
) -> None:
    (app / "shop-1.0.1.war").write_bytes(b"")
    result = run(argv, app, capsys)
    assert result.code == ExitCode.USAGE
    assert "the dry run is `deploy WAR --dry-run`" in result.err
    assert result.err.startswith("error: ") and "see deploy --help" in result.err
    assert calls == []


@pytest.mark.parametrize(
    ("argv", "planned"),
    [
        (["rollback", "--dry-run"], "rollback"),
        (["--dry-run", "rollback", "--batch", "2"], "rollback"),
        (["switch", "--dry-run"], "switch"),
    ],
)
def test_rollback_and_switch_dry_runs_plan_and_never_run(
    app: Path,
    capsys: pytest.CaptureFixture[str],
    calls: list[tuple[str, dict[str, object]]],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    planned: str,
) -> None:
    """``--dry-run`` of rollback and switch reaches their plan, never the command."""
    from fabfile.commands import dry_run, switch

    plans: list[str] = []

    def planner(name: str) -> object:
        def plan(*args: object, **kwargs: object) -> ExitCode:
            plans.append(name)
            return ExitCode.OK

        return plan

    for name in ("rollback", "switch"):
        monkeypatch.setattr(dry_run, name, planner(name))
    monkeypatch.setattr(switch, "switch", lambda *a, **k: pytest.fail("switched for real"))
    result = run(argv, app, capsys)
    assert result.code == ExitCode.OK, result.text
    assert plans == [planned] and calls == []


def test_inv_dry_is_refused_by_the_task_itself(
    app: Path, monkeypatch: pytest.MonkeyPatch, calls: list[tuple[str, dict[str, object]]]
) -> None:
    """``inv --dry deploy`` would only echo c.run(); our tasks never call it."""
    monkeypatch.chdir(app)
    context = Context(Config(overrides={"run": {"dry": True}}))
    with pytest.raises(Exit) as refused:
        tasks.deploy_task(context, latest=True)
    assert refused.value.code == ExitCode.USAGE
    assert "the dry run is `deploy WAR --dry-run`" in str(refused.value.message)
    assert calls == []
    tasks.deploy_task(Context(Config()), latest=True)
    assert [name for name, _ in calls] == ["deploy"]


# -- usage errors: exit 2, the word that was wrong, and where to look --------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["-h", "127.0.0.2"], "-h is --help: it takes a command, not '127.0.0.2'"),
        (["rollback", "-h", "127.0.0.2"], "unknown word '127.0.0.2'"),
        (["--hosts"], "--hosts needs a value"),
        (["-H"], "--hosts needs a value"),
        (["--hosts="], "--hosts needs a value"),
        (["history", "-n"], "--limit needs a value"),
        (["--limit", "abc"], "--limit is not a flag of status, only of config-history, history"),
        (["history", "--limit", "abc"], "--limit takes a whole number, not 'abc'"),
        (["history", "-n", "abc"], "--limit takes a whole number, not 'abc'"),
        (["--no-such-flag"], "unknown flag --no-such-flag"),
        (["-a", "x.war"], "unknown flag -a"),
        (["frobnicate"], "unknown word 'frobnicate': not a command"),
        (["rollback", "frobnicate"], "unknown word 'frobnicate'"),
        (["--json=yes"], "--json takes no value"),
        (["status", "--latest"], "--latest is not a flag of status, only of deploy"),
        (["--print-completion-script", "tcsh"], 'Completion for shell "tcsh" not supported'),
    ],
)
def test_a_usage_error_exits_2_naming_the_word(
    app: Path,
    capsys: pytest.CaptureFixture[str],
    calls: list[tuple[str, dict[str, object]]],
    argv: list[str],
    says: str,
) -> None:
    result = run(argv, app, capsys)
    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert result.err.startswith(f"error: {says}")
    assert result.err.endswith("; see deploy --help\n")
    assert "No idea what" not in result.err
    assert calls == []


def test_dash_h_with_a_host_hints_at_dash_big_h(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["rollback", "-h", "127.0.0.2"], tmp_path, capsys)
    assert "(-h is --help; the nodes are -H/--hosts)" in result.err


def test_a_reader_that_left_ends_help_quietly(tmp_path: Path) -> None:
    """``deploy --help | head -1``: the pipe's reader is gone before we write; no traceback."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left before the first line: every write fails EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from fabfile.cli.program import main; main()", "--help"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == b""
