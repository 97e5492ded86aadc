"""Secrets come from the environment or an owner-only file and are never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabfile.app import credentials
from fabfile.cli.boundary import boundary
from fabfile.errors import ConfigError, DeployError
from fabfile.records.history import Action, History, Record, Result

VALUE = "s3cr3t-Manager-Pw"


def test_the_environment_comes_first(tmp_path: Path) -> None:
    secret = credentials.load("tomcat_manager", environ={"DEPLOY_SECRET_TOMCAT_MANAGER": VALUE})
    assert secret.reveal() == VALUE
    assert VALUE not in str(secret) and VALUE not in repr(secret)
    assert "$DEPLOY_SECRET_TOMCAT_MANAGER" in repr(secret)


def test_an_owner_only_file_is_read(tmp_path: Path) -> None:
    file = tmp_path / "secret"
    file.write_text(VALUE + "\n")
    file.chmod(0o600)
    assert credentials.load("tomcat_manager", file, environ={}).reveal() == VALUE


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    file = tmp_path / "secret"
    file.write_text(VALUE)
    file.chmod(mode)
    with pytest.raises(ConfigError) as error:
        credentials.load("tomcat_manager", file, environ={})
    assert f"mode {mode:o}" in str(error.value) and f"chmod 600 {file}" in str(error.value)
    assert VALUE not in str(error.value)


def test_no_secret_at_all_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="export DEPLOY_SECRET_TOMCAT_MANAGER"):
        credentials.load("tomcat_manager", None, environ={})


def test_a_loaded_secret_never_reaches_the_user_or_the_history(tmp_path: Path) -> None:
    credentials.load("tomcat_manager", environ={"DEPLOY_SECRET_TOMCAT_MANAGER": VALUE})

    @boundary
    def failing() -> None:
        raise DeployError(f"manager refused user deployer with password {VALUE}")

    with pytest.raises(Exception) as shown:
        failing()
    assert VALUE not in str(shown.value) and credentials.MASK in str(shown.value)
    history = History(tmp_path / "history.jsonl")
    history.append(refused(f"curl --user deployer:{VALUE} http://..."))
    text = (tmp_path / "history.jsonl").read_text()
    assert VALUE not in text and json.loads(text)["message"].endswith("deployer:****** http://...")


def refused(message: str) -> Record:
    return Record(Action.DEPLOY, Result.REFUSED, "x.war", message=message)


def test_a_secret_with_quotes_is_still_kept_out_of_the_history(tmp_path: Path) -> None:
    tricky = 'pa"ss\\word'
    credentials.load("other", environ={"DEPLOY_SECRET_OTHER": tricky})
    history = History(tmp_path / "history.jsonl")
    history.append(refused(f"login with {tricky} failed"))
    text = (tmp_path / "history.jsonl").read_text()
    assert "pa" + '\\"' + "ss" not in text and "word" not in text
    assert json.loads(text)["message"] == f"login with {credentials.MASK} failed"
