"""Run the ``deploy`` program in-process and capture what the user sees."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from fabfile import cli
from fabfile.cli.program import make_program


@dataclasses.dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run(
    argv: Sequence[str], cwd: Path, capsys: pytest.CaptureFixture[str], program: bool = False
) -> Result:
    """``deploy ARGV`` in ``cwd`` as the entry point runs it (the status table by its fast
    path, `fabfile.cli.bare`); ``program``: always through the Invoke program. The exit
    code as the shell would see it."""
    capsys.readouterr()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        if program:
            make_program().run(["deploy", *argv])
        else:
            cli.run(["deploy", *argv])
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    finally:
        os.chdir(old)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)
