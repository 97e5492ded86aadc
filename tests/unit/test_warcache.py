"""Known WARs: a WAR checked once and unchanged since is neither read whole nor hashed
again; any change to it, or a cache that cannot be used, means reading it again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fabfile.app import artifact
from fabfile.app.warcache import KEEP, NAME, Known, stamp
from tests.unit.test_artifact import APP, war


def no_reading(*args: object) -> None:
    raise AssertionError("read again")


def test_a_checked_war_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = war(tmp_path / f"{APP}-1.0.war")
    first = artifact.read(path, APP, Known(tmp_path))
    assert (tmp_path / NAME).is_file()
    monkeypatch.setattr(artifact, "_check_entries", no_reading)
    monkeypatch.setattr(artifact, "file_sha256", no_reading)
    again = artifact.read(path, APP, Known(tmp_path))
    assert again.sha256 == first.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert again.version == first.version


def test_a_war_changed_since_is_read_whole_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = war(tmp_path / f"{APP}-1.0.war")
    artifact.read(path, APP, Known(tmp_path))
    war(path, version="1.0", group_id="org.other")  # same name, other bytes
    checked: list[Path] = []
    monkeypatch.setattr(artifact, "_check_entries", lambda p, w: checked.append(p))
    again = artifact.read(path, APP, Known(tmp_path))
    assert checked == [path]
    assert again.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_touched_war_is_not_trusted(tmp_path: Path) -> None:
    path = war(tmp_path / f"{APP}-1.0.war")
    known = Known(tmp_path)
    artifact.read(path, APP, known)
    assert known.sha256(path)
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1))
    assert known.sha256(path) is None


def test_a_damaged_cache_is_only_a_miss(tmp_path: Path) -> None:
    path = war(tmp_path / f"{APP}-1.0.war")
    (tmp_path / NAME).write_text("{not json")
    assert Known(tmp_path).sha256(path) is None
    found = artifact.read(path, APP, Known(tmp_path))  # and is written anew
    assert Known(tmp_path).sha256(path) == found.sha256


def test_an_unwritable_directory_costs_nothing_but_a_reread(tmp_path: Path) -> None:
    path = war(tmp_path / f"{APP}-1.0.war")
    known = Known(tmp_path / "gone")  # its directory does not exist: nothing can be written
    assert artifact.read(path, APP, known).sha256
    assert known.sha256(path) is None
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_only_the_latest_wars_are_remembered(tmp_path: Path) -> None:
    known = Known(tmp_path)
    paths = [war(tmp_path / f"{APP}-1.{n}.war", version=f"1.{n}") for n in range(KEEP + 2)]
    for path in paths:
        known.remember(path, "0" * 64, stamp(path))
    assert known.sha256(paths[0]) is None and known.sha256(paths[1]) is None
    assert known.sha256(paths[-1]) == "0" * 64


def test_a_war_that_changed_while_it_was_read_is_not_remembered(tmp_path: Path) -> None:
    path = war(tmp_path / f"{APP}-1.0.war")
    before = stamp(path)
    war(path, version="1.0", group_id="org.other")  # a copy landing while it was read
    known = Known(tmp_path)
    known.remember(path, "0" * 64, before)
    assert known.sha256(path) is None
