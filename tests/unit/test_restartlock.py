"""The node-side restart lock: its scripts run in a real ``sh``, its judgement of a claim."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from fabfile.cluster import restartclaim
from fabfile.cluster.layout import Layout
from fabfile.cluster.portowner import Listener, PortReport
from fabfile.cluster.restartclaim import BUSY_EXIT, Claim
from fabfile.records.lock import Holder, _start_time
from tests.unit.helpers import sh

RUN = "run-1"
HOSTILE = "$(touch canary1) `touch canary2`; touch canary3 'q\"x"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "releases" / "app").mkdir(parents=True)
    return tmp_path


def claim_file(home: Path) -> Path:
    return home / Layout("releases/app").claim


def holder(pid: int, command: str = "deploy app-1.war") -> Holder:
    return Holder(pid, "deployer", socket.gethostname(), "now", _start_time(pid), command)


def take(home: Path, record: str, stale: str = "", restart: str = "echo restarted") -> str:
    script = restartclaim.claim_and_restart("~/releases/app", record, 120, stale, restart)
    done = sh(script, home)
    return f"{done.returncode}\n{done.stdout}"


def test_a_free_node_is_claimed_then_restarted(home: Path) -> None:
    record = restartclaim.record(holder(os.getpid()), RUN)
    out = take(home, record)
    code, _, stdout = out.partition("\n")
    assert code == "0"
    blocked, at = restartclaim.parse_outcome(stdout)
    assert blocked is None and at is not None and at > 0
    assert stdout.splitlines()[-1] == "restarted"
    claim = Claim.parse(claim_file(home).read_text())
    assert claim is not None and claim.token == RUN
    assert claim.expires == pytest.approx(claim.at + 120, abs=0.02)


def test_a_held_claim_blocks_the_restart_and_names_its_holder(home: Path) -> None:
    first = restartclaim.record(holder(os.getpid(), "deploy first.war"), "run-a")
    take(home, first)
    out = take(home, restartclaim.record(holder(os.getpid()), "run-b"), restart="touch ran")
    code, _, stdout = out.partition("\n")
    assert code == str(BUSY_EXIT)
    blocked, _ = restartclaim.parse_outcome(stdout)
    assert blocked is not None and blocked.token == "run-a"
    assert "`deploy first.war`" in blocked.describe()
    assert not (home / "ran").exists()


def test_only_the_claim_judged_stale_is_taken_over(home: Path) -> None:
    take(home, restartclaim.record(holder(os.getpid()), "run-a"))
    held = claim_file(home).read_text().strip()
    assert take(home, restartclaim.record(holder(os.getpid()), "run-b"), stale="other").startswith(
        f"{BUSY_EXIT}\n"
    )
    assert take(home, restartclaim.record(holder(os.getpid()), "run-b"), stale=held).startswith(
        "0\n"
    )
    assert Claim.parse(claim_file(home).read_text()).token == "run-b"  # type: ignore[union-attr]


def test_release_removes_only_the_runs_own_claim(home: Path) -> None:
    take(home, restartclaim.record(holder(os.getpid()), "run-a"))
    sh(restartclaim.release_script("~/releases/app", "run-b"), home)
    assert claim_file(home).exists()
    sh(restartclaim.release_script("~/releases/app", "run-a"), home)
    assert not claim_file(home).exists()


def test_clear_removes_a_claim_only_while_it_is_the_one_judged(home: Path) -> None:
    take(home, restartclaim.record(holder(os.getpid()), "run-a"))
    line = claim_file(home).read_text().strip()
    sh(restartclaim.clear_script("~/releases/app", line + "x"), home)
    assert claim_file(home).exists()
    sh(restartclaim.clear_script("~/releases/app", line), home)
    assert not claim_file(home).exists()


def test_hostile_words_in_the_claim_never_reach_the_shell(home: Path) -> None:
    record = restartclaim.record(holder(os.getpid(), HOSTILE), HOSTILE)
    assert take(home, record, stale=HOSTILE).startswith("0\n")
    sh(restartclaim.release_script("~/releases/app", HOSTILE), home)
    assert not list(home.glob("canary*"))
    assert not claim_file(home).exists()


def test_the_claim_does_not_leak_its_lock_to_what_the_restart_starts(home: Path) -> None:
    out = take(home, restartclaim.record(holder(os.getpid()), RUN), restart="ls /proc/$$/fd")
    assert "9" not in out.split("\n", 2)[2].split()


# -- judging a claim --------------------------------------------------------------


def report(uptime: float, *started: float) -> PortReport:
    listeners = tuple(Listener("127.0.0.3", 100 + i, s, "java") for i, s in enumerate(started))
    return PortReport(8080, listeners, "", None, uptime, 1_800_000_000.0)


def claim(who: Holder | None, token: str = "other", at: float = 100.0) -> Claim:
    text = restartclaim.record(who, token) if who else "damaged"
    parsed = Claim.parse(f"{at:.2f} {at + 60:.2f} {text}")
    assert parsed is not None
    return parsed


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_an_expired_claim_or_one_from_before_a_reboot_does_not_hold() -> None:
    alive = holder(os.getppid())
    assert not claim(alive).in_flight(report(161.0), RUN)
    assert not claim(alive).in_flight(report(50.0), RUN)  # uptime below the claim: rebooted


def test_a_live_holder_in_another_process_holds_even_after_a_new_jvm_started() -> None:
    assert claim(holder(os.getppid())).in_flight(report(120.0, 110.0), RUN)


def test_a_gone_holder_holds_until_a_jvm_started_after_the_claim_holds_the_port() -> None:
    gone = holder(dead_pid())
    assert claim(gone).in_flight(report(120.0, 50.0), RUN)  # the old JVM still listens
    assert claim(gone).in_flight(report(120.0), RUN)  # nothing listens: start under way
    assert not claim(gone).in_flight(report(120.0, 101.5), RUN)


def test_an_earlier_run_of_this_same_process_counts_as_gone() -> None:
    earlier = claim(holder(os.getpid()), token="earlier")
    assert earlier.in_flight(report(120.0, 50.0), RUN)
    assert not earlier.in_flight(report(120.0, 101.0), RUN)
    assert not claim(holder(os.getpid()), token=RUN).in_flight(report(120.0), RUN)


def test_a_damaged_claim_holds_until_it_expires() -> None:
    damaged = claim(None)
    assert damaged.holder is None and damaged.describe() == "an unknown holder"
    assert damaged.in_flight(report(120.0, 110.0), RUN)
    assert not damaged.in_flight(report(200.0), RUN)
    assert Claim.parse("not a claim") is None
