"""The [hooks] section and the hook runner, in a real ``sh`` on this machine."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from fabfile.app import config, hooks
from fabfile.engine.events import Event, Facts, Kind
from fabfile.engine.hookrunner import HookRunner, environment
from fabfile.errors import ConfigError, HookError, RolloutError

FACTS = Facts(
    app="shop",
    action="deploy",
    version="1.0.126",
    sha256="ab" * 32,
    coordinates="com.example:shop",
    war="shop-1.0.126.war",
    hosts=("web1", "web2"),
    strategy="rolling",
    run=7,
    run_id="f" * 32,
    user="alice",
)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / ".config"
    path.write_text("\n".join(["[deploy]", "hosts = web1", "user = deployer", *lines]) + "\n")
    path.chmod(0o644)
    return path


def runner(tmp_path: Path, said: list[str], *lines: str) -> HookRunner:
    loaded = config.load(write(tmp_path, "[hooks]", *lines), app="shop")
    return HookRunner(loaded.hooks, tmp_path, said.append)


def test_hooks_are_read_with_their_lines_and_timeout(tmp_path: Path) -> None:
    loaded = config.load(write(tmp_path, "[hooks]", "pre_deploy = make check", "timeout = 5"))
    assert loaded.hooks.commands == {"pre_deploy": "make check"}
    assert loaded.hooks.timeout == 5
    assert loaded.hooks.where("pre_deploy") == f"{tmp_path / '.config'}:5: [hooks] pre_deploy"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("pre-deploy = x", ":5: [hooks] pre-deploy: unknown hook; did you mean 'pre_deploy'?"),
        ("after_deploy = x", "unknown hook; did you mean 'post_deploy'?"),
        ("before-switch = x", "unknown hook; did you mean 'pre_switch'?"),
        ("timeout = soon", ":5: [hooks] timeout = 'soon': "),
    ],
)
def test_a_wrong_hook_names_file_line_and_key(tmp_path: Path, line: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, "[hooks]", line))
    assert said in str(caught.value)


def test_hooks_are_not_a_node_setting(tmp_path: Path) -> None:
    """``on_failure`` and the others live in [hooks] only: in [deploy] they are unknown."""
    with pytest.raises(ConfigError, match=r"\[deploy\] pre_deploy: unknown key"):
        config.load(write(tmp_path, "pre_deploy = x"))


def test_a_script_others_may_write_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "hooks" / "pre-deploy"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o757)
    loaded = config.load(write(tmp_path, "[hooks]", "pre_deploy = hooks/pre-deploy --fast"))
    with pytest.raises(ConfigError) as caught:
        hooks.check_safe(loaded.hooks, tmp_path)
    assert f"{script} is run on this machine by {tmp_path / '.config'}:5: [hooks] pre_deploy" in (
        str(caught.value)
    )
    assert "writable by others (mode 757)" in str(caught.value)
    assert f"chmod go-w {script}" in str(caught.value)
    script.chmod(0o755)
    hooks.check_safe(loaded.hooks, tmp_path)


@pytest.mark.parametrize("command", ["sh notify.sh --fast", "python3 ./notify.sh", "./notify.sh"])
def test_a_script_run_by_an_interpreter_is_checked_too(tmp_path: Path, command: str) -> None:
    script = tmp_path / "notify.sh"
    script.write_text("echo hi\n")
    script.chmod(0o646)
    loaded = config.load(write(tmp_path, "[hooks]", f"post_deploy = {command}"))
    with pytest.raises(ConfigError, match=r"writable by others \(mode 646\)"):
        hooks.check_safe(loaded.hooks, tmp_path)
    script.chmod(0o644)
    hooks.check_safe(loaded.hooks, tmp_path)


def test_no_hooks_no_check(tmp_path: Path) -> None:
    path = write(tmp_path)
    path.chmod(0o666)
    hooks.check_safe(config.load(path).hooks, tmp_path)


def test_the_output_is_shown_line_by_line_and_a_pre_hook_failure_stops(tmp_path: Path) -> None:
    said: list[str] = []
    run = runner(tmp_path, said, "pre_deploy = echo one; echo two >&2; exit 4")
    with pytest.raises(HookError, match=r"\[hooks\] pre_deploy: the hook exited with 4; the run"):
        run(Event(Kind.STARTED, FACTS))
    assert said == ["hook pre_deploy: running", "hook pre_deploy: one", "hook pre_deploy: two"]


def test_pre_switch_failing_is_a_rollout_error(tmp_path: Path) -> None:
    run = runner(tmp_path, [], "pre_switch = false")
    with pytest.raises(RolloutError, match="traffic was not switched"):
        run(Event(Kind.SWITCHING, FACTS, hosts=("web1/green",)))


def test_a_rollback_in_the_run_that_failed_runs_no_pre_hook(tmp_path: Path) -> None:
    """The rescue must not be blocked: its pre hooks are noted as not run, not run."""
    said: list[str] = []
    loaded = config.load(
        write(tmp_path, "[hooks]", "pre_deploy = exit 3", "pre_switch = exit 3"), app="shop"
    )
    rescue = HookRunner(loaded.hooks, tmp_path, said.append, pre=False)
    rollback = dataclasses.replace(FACTS, action="rollback")
    assert rescue(Event(Kind.STARTED, rollback)) == (
        "pre_deploy: not run (a rollback in the run that failed)"
    )
    assert rescue(Event(Kind.SWITCHING, rollback, hosts=("web1/blue",))).startswith("pre_switch")
    assert said == []  # nothing ran


def test_a_post_hook_failing_is_said_and_noted(tmp_path: Path) -> None:
    said: list[str] = []
    run = runner(tmp_path, said, "post_deploy = exit 2")
    note = run(Event(Kind.FINISHED, FACTS, "ok"))
    assert note.startswith("post_deploy: exited with 2 (")
    assert said[-1].startswith("warning: ") and "the run's outcome stands" in said[-1]
    assert run(Event(Kind.FAILED, FACTS, "failed")) == ""  # no on_failure set


def test_a_hook_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    run = runner(
        tmp_path, [], f"post_deploy = sleep 60 & echo $! > {pid_file}; wait", "timeout = 0.5"
    )
    started = time.monotonic()
    note = run(Event(Kind.FINISHED, FACTS, "ok"))
    assert "did not finish within 0.5 s, [hooks] timeout: killed" in note
    assert time.monotonic() - started < 5
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_facts_go_in_the_environment_and_secrets_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_SECRET_NOTIFY", "hush")
    monkeypatch.setenv("KEEP_ME", "1")
    event = Event(Kind.FAILED, FACTS, "failed", "web1: not verified", seconds=1.5)
    env = environment(event, "on_failure", tmp_path)
    assert "DEPLOY_SECRET_NOTIFY" not in env and env["KEEP_ME"] == "1"
    assert env["WARDEPLOY_HOSTS"] == "web1,web2"
    assert env["WARDEPLOY_RUN"] == "7"
    assert env["WARDEPLOY_OUTCOME"] == "failed"
    assert env["WARDEPLOY_MESSAGE"] == "web1: not verified"
    assert env["WARDEPLOY_RUNTIME"] == "1.500"


def test_a_hostile_value_stays_a_value(tmp_path: Path) -> None:
    """Facts are never pasted into the command: a version with shell in it is text."""
    canary = tmp_path / "pwned"
    facts = Facts(**{**FACTS.__dict__, "version": f"1.0; touch {canary}"})
    out = tmp_path / "out"
    run = runner(tmp_path, [], f'post_deploy = printf %s "$WARDEPLOY_VERSION" > {out}')
    assert run(Event(Kind.FINISHED, facts, "ok")).startswith("post_deploy: ok")
    assert out.read_text() == f"1.0; touch {canary}"
    assert not canary.exists()
    assert os.environ.get("WARDEPLOY_VERSION") is None
