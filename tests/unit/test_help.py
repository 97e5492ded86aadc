"""``deploy --help``: our usage, our flags, one table of short flags; none of Invoke's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import fabfile
from fabfile.cli.flags import FLAGS
from fabfile.cli.program import EXAMPLES, TASKS
from fabfile.errors import ExitCode
from tests.cli import run

SHORT = {
    "H": "hosts",
    "C": "app-dir",
    "l": "latest",
    "f": "force",
    "j": "json",
    "n": "limit",
    "b": "batch",
    "o": "output",
}
INVOKE_INTERNALS = [
    "--prompt-for-sudo-password",
    "--write-pyc",
    "--echo",
    "--pty",
    "--dry",
    "--warn-only",
    "--config",
    "--collection",
    "--search-root",
    "--command-timeout",
    "--debug",
    "--hide",
    "--list",
    "--no-dedupe",
    "-e",
    "-p",
    "-R",
    "-w",
    "-T",
    "-D",
    "-F",
    "core-opts",
    "STRING",
    "Docstring:",
]


def lines_of(text: str) -> list[str]:
    return text.splitlines()


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_shows_our_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    result = run([flag], tmp_path, capsys)
    assert (result.code, result.err) == (ExitCode.OK, "")
    lines = lines_of(result.out)
    assert lines[:2] == [
        "Usage: deploy [COMMAND] [FLAGS]",
        "       deploy WAR|--latest [FLAGS]",
    ]
    commands = lines[lines.index("Commands:") + 1 : lines.index("Flags:") - 1]
    assert [line[:17].strip() for line in commands] == [t.replace("-", " ") for t in TASKS]
    assert commands[0].endswith("(default)")
    examples = lines[lines.index("Examples:") + 1 :]
    assert [e.strip() for e in examples[: len(EXAMPLES)]] == list(EXAMPLES)
    assert EXAMPLES == (
        "deploy search-web-frontend-1.0.126.war --hosts web1,web2",
        "deploy rollback",
        "deploy stage app-1.0.126.war && deploy app-1.0.126.war --batch 25%",
        "deploy search-web-frontend-1.0.126.war --dry-run",
        "deploy search-web-frontend-1.0.126.war --no-switch && deploy switch",
        "deploy config diff --hosts web1 && deploy logging",
    )


def test_help_lists_every_flag_of_the_table_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(["--help"], tmp_path, capsys).out
    lines = lines_of(out.replace("\n" + " " * 24, " "))  # a long help line goes on below
    flags = lines[lines.index("Flags:") + 1 : lines.index("Examples:") - 1]
    longs = [next(w for w in line.split() if w.startswith("--")) for line in flags]
    assert longs == [*(f"--{name}" for name in FLAGS), "--help", "--version"]
    for name, spec in FLAGS.items():
        [line] = [line for line in flags if f"--{name} " in f"{line} "]
        assert spec.help.rstrip(".")[1:] in line
        assert (f"-{spec.short}, --{name}" in line) == bool(spec.short)
    assert "  -h, --help [COMMAND]  " in out and "  -V, --version  " in out


def test_help_says_which_commands_take_a_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(["--help"], tmp_path, capsys).out
    assert (
        "  -j, --json            status, config-diff, config-history, history, report: as\n"
        "                        JSON.\n" in out  # wrapped under its column, within 80
    )
    assert "  -n, --limit N         config-history, history: last N records (default 20)." in out
    assert "-H, --hosts LIST      Only these nodes: a,b. Not for config-history, history,\n" in out
    assert "-C, --app-dir DIR     The app directory (default: the current directory).\n" in out


@pytest.mark.parametrize("argv", [["--help"], *([t, "--help"] for t in TASKS)])
def test_no_help_line_is_wider_than_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    out = run(argv, tmp_path, capsys).out
    assert max(len(line) for line in lines_of(out)) <= 80


@pytest.mark.parametrize("internal", INVOKE_INTERNALS)
@pytest.mark.parametrize("argv", [["--help"], *([t, "--help"] for t in TASKS)])
def test_help_shows_none_of_invokes_internals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], internal: str
) -> None:
    out = run(argv, tmp_path, capsys).out
    assert out
    assert not re.search(rf"(?<![\w-]){re.escape(internal)}(?![\w-])", out)


@pytest.mark.parametrize(
    "argv",
    [
        ["--prompt-for-sudo-password"],
        ["--write-pyc"],
        ["-e"],
        ["--echo"],
        ["-p"],
        ["--pty"],
        ["-w"],
        ["--warn-only"],
        ["--config", "x.yaml"],
        ["--collection", "x"],
        ["-c", "x"],
        ["--search-root", "."],
        ["-r", "."],
        ["--command-timeout", "3"],
        ["-T", "3"],
        ["--debug"],
        ["-d"],
        ["--hide", "both"],
        ["--list"],
        ["--list-depth", "1"],
        ["-D", "1"],
        ["--list-format", "json"],
        ["-F", "json"],
        ["--no-dedupe"],
        ["rollback", "--echo"],
        ["history", "--debug"],
    ],
)
def test_invokes_core_flags_are_not_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    result = run(argv, tmp_path, capsys)
    flag = next(word for word in argv if word.startswith("-"))
    assert result.code == ExitCode.USAGE
    assert result.err == f"error: unknown flag {flag}; see deploy --help\n"


@pytest.mark.parametrize(
    ("task", "flags"),
    [
        (
            "status",
            ["-H, --hosts LIST", "--lb LIST", "-C, --app-dir DIR", "--app NAME", "-j, --json"],
        ),
        (
            "deploy",
            [
                "-H, --hosts LIST",
                "--lb LIST",
                "-C, --app-dir DIR",
                "--app NAME",
                "--artifact WAR",
                "-l, --latest",
                "-f, --force",
                "--no-switch",
                "--dry-run",
                "-b, --batch N|P%",
                "--confirm",
                "--lock-wait N",
            ],
        ),
        (
            "rollback",
            [
                "-H, --hosts LIST",
                "--lb LIST",
                "-C, --app-dir DIR",
                "--app NAME",
                "-b, --batch N|P%",
                "--lock-wait N",
            ],
        ),
        (
            "switch",
            ["-H, --hosts LIST", "--lb LIST", "-C, --app-dir DIR", "--app NAME", "--lock-wait N"],
        ),
        ("unlock", ["-H, --hosts LIST", "-C, --app-dir DIR", "--app NAME", "-f, --force"]),
        (
            "history",
            [
                "-C, --app-dir DIR",
                "--app NAME",
                "-j, --json",
                "-n, --limit N",
                "--stats",
                "--since AGE",
            ],
        ),
    ],
)
def test_task_help_shows_that_tasks_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, flags: list[str]
) -> None:
    result = run([task, "--help"], tmp_path, capsys)
    assert result.code == ExitCode.OK
    lines = lines_of(result.out)
    assert lines[0].startswith("Usage: deploy ") and task in lines[0]
    shown = [line.strip().split("  ")[0] for line in lines[lines.index("Flags:") + 1 :]]
    assert shown == [*flags, "-h, --help"]


def test_task_help_is_the_same_however_it_is_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = [["rollback", "--help"], ["rollback", "-h"], ["--help", "rollback"], ["-h=rollback"]]
    outs = {run(argv, tmp_path, capsys).out for argv in asked}
    assert len(outs) == 1 and "Usage: deploy rollback [FLAGS]" in outs.pop()


def test_help_text_survives_a_second_program_in_the_same_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invoke pops a task's help dict when it builds the flags; ours come from FLAGS."""
    first = run(["history", "--help"], tmp_path, capsys).out
    second = run(["history", "--help"], tmp_path, capsys).out
    assert first == second and FLAGS["limit"].help in second


def test_one_table_of_short_flags_for_every_task() -> None:
    """The collection ``inv`` and ``fab`` load (``fabfile.ns``) and ``deploy`` use."""
    seen: dict[str, set[str]] = {}
    for context in fabfile.ns.to_contexts():
        for arg in context.args.values():
            for short in (n for n in arg.names if len(n) == 1):
                seen.setdefault(short, set()).add(arg.names[0])
    assert {short: sorted(names) for short, names in seen.items()} == {
        short: [name]
        for short, name in SHORT.items()  # one meaning per letter
    }
    assert {s.short: name for name, s in FLAGS.items() if s.short} == SHORT


def test_completion_still_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(["--complete", "--", "deploy", "rollback", "--"], tmp_path, capsys)
    assert result.code == ExitCode.OK
    assert set(result.out.split()) == {
        "--hosts",
        "--lb",
        "--app-dir",
        "--app",
        "--batch",
        "--lock-wait",
    }
    script = run(["--print-completion-script", "bash"], tmp_path, capsys)
    assert script.code == ExitCode.OK and "complete -F _complete_deploy" in script.out
