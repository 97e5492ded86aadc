"""The ``deploy`` command line: the implied task, and what the user sees in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile import __version__
from fabfile.errors import ExitCode
from fabfile.program import DeployProgram, make_program, route
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
        pytest.param(["-l"], ["-l"], id="-l"),
    ],
)
def test_route_inserts_the_implied_task(argv: list[str], routed: list[str]) -> None:
    assert route(["deploy", *argv]) == ["deploy", *routed]


@pytest.mark.parametrize("flag", ["--artifact", "-a"])
def test_route_sends_an_explicit_artifact_to_deploy(flag: str) -> None:
    assert route(["deploy", flag, "x.war"]) == ["deploy", "deploy", flag, "x.war"]


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
    assert "Default task: status" in result.out


def test_an_unknown_flag_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["--no-such-flag"], tmp_path, capsys)
    assert result.code == ExitCode.USAGE == 2
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
    assert result.code == ExitCode.BAD_INPUT
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


def test_a_flag_value_of_the_wrong_type_is_a_usage_error(tmp_path: Path, capsys) -> None:
    result = run(["history", "--limit", "abc"], tmp_path, capsys)
    assert result.code == 2 and "error:" in result.err


def test_route_finds_the_task_after_flags() -> None:
    assert route(["deploy", "--app-dir", "apps/x", "rollback"]) == [
        "deploy",
        "rollback",
        "--app-dir",
        "apps/x",
    ]
    assert route(["deploy", "--app-dir", "history"]) == ["deploy", "status", "--app-dir", "history"]
