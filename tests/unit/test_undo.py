"""The "To roll back" line appears only when a rollback has something to go back to."""

from __future__ import annotations

from pathlib import Path

from fabfile import actions
from fabfile.appdir import AppDir
from fabfile.history import History
from sandbox.sample import build_war
from tests.unit.helpers import release

APP = "shop"


def options(tmp_path: Path) -> actions.Options:
    app = tmp_path / APP
    app.mkdir(exist_ok=True)
    (app / ".config").write_text("[deploy]\nhosts = web1\nuser = u\n")
    return actions.Options(AppDir(app))


def test_nothing_to_go_back_to_says_so(tmp_path: Path) -> None:
    said = actions._undo(options(tmp_path), release(5))
    assert said == "There is no earlier release to roll back to (no history and no older WAR here)."


def test_an_older_war_in_the_app_directory_is_something_to_go_back_to(tmp_path: Path) -> None:
    chosen = options(tmp_path)
    build_war("1.0.4", chosen.app.path, artifact_id=APP)
    assert actions._undo(chosen, release(5)).startswith("To roll back: deploy rollback --app-dir ")


def test_a_newer_war_alone_is_not(tmp_path: Path) -> None:
    chosen = options(tmp_path)
    build_war("1.0.6", chosen.app.path, artifact_id=APP)
    assert actions._undo(chosen, release(5)).startswith("There is no earlier release")


def test_an_earlier_release_in_the_history_is(tmp_path: Path) -> None:
    chosen = options(tmp_path)
    History(chosen.app.history_path).append(
        {"action": "deploy", "outcome": "ok", "release": release(9).__dict__}
    )
    assert actions._undo(chosen, release(9)).startswith("There is no earlier release")
    assert actions._undo(chosen, release(5)).startswith("To roll back: ")
