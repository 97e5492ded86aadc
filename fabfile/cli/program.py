"""The ``deploy`` command: an Invoke `Program` built by a factory, as Fabric builds ``fab``.

``deploy`` alone shows the status table and ``deploy app-1.2.war`` deploys
that WAR: `route` inserts the implied task name before Invoke parses the
command line, so every flag stays a task flag (``--hosts``, ``--json``, ...).
The core flags are ours (`DeployProgram.core_args`), not Invoke's, and so is
the help; every mistake on the command line exits with `ExitCode.USAGE`.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import sys
import textwrap
from collections.abc import Iterator, Sequence

from invoke import Argument, Program
from invoke.completion.complete import complete, print_completion_script
from invoke.exceptions import Exit, ParseError
from invoke.util import helpline

from ..errors import ExitCode
from ..version import __version__
from .boundary import reader_gone
from .flags import DRY_RUN, FLAGS
from .tasks import COMMANDS, Flag, namespace

TASKS = tuple(command.name for command in COMMANDS)
USAGE = {command.name: command.usage for command in COMMANDS}
EXAMPLES = (
    "deploy search-web-frontend-1.0.126.war --hosts web1,web2",
    "deploy rollback",
    "deploy stage app-1.0.126.war && deploy app-1.0.126.war --batch 25%",
    "deploy search-web-frontend-1.0.126.war --dry-run",
    "deploy search-web-frontend-1.0.126.war --no-switch && deploy switch",
    "deploy config diff --hosts web1 && deploy logging",
)
_VALUED_SHORT = {spec.short for spec in FLAGS.values() if spec.short and spec.value}
_VALUED = {f"--{name}" for name, spec in FLAGS.items() if spec.value}
_DEPLOYING = {"--artifact", "--latest", "--force", "--no-switch", "--dry-run"}
_DEPLOYING_SHORT = {FLAGS["latest"].short, FLAGS["force"].short}
_CORE = {"-h", "--help", "-V", "--version", "--complete", "--print-completion-script"}
_DRY = re.compile(r"--(dry([-_]?run)?|no-?op|simulate|what-?if)", re.IGNORECASE)
_COLUMN = 24  # the help text starts here
_WIDTH = 80


def route(argv: Sequence[str]) -> list[str]:
    """Insert the implied task: ``deploy``, ``deploy X.war``, ``deploy --latest``.

    A bare ``*.war`` word becomes ``--artifact X.war``, since Invoke has no
    optional positional arguments.
    """
    head, rest = list(argv[:1]), _joined(list(argv[1:]))
    if not rest:
        return [*head, "status"]
    if rest[0].split("=")[0] in _CORE:
        return head + rest
    named = [i for i, word in enumerate(rest) if word in TASKS and _bare(rest, i)]
    task = rest.pop(named[0]) if named else None  # `deploy --app-dir X rollback` too
    wars = [i for i, word in enumerate(rest) if word.endswith(".war") and _bare(rest, i)]
    for index in reversed(wars):
        rest.insert(index, "--artifact")
    if task is None:
        task = "deploy" if wars or any(_deploying(word) for word in rest) else "status"
    return [*head, task, *rest]


def _joined(words: list[str]) -> list[str]:
    """``config diff`` and ``config history`` are the tasks ``config-diff`` and
    ``config-history`` (Invoke has no sub-commands)."""
    for index, word in enumerate(words[:-1]):
        if word == "config" and _bare(words, index) and words[index + 1] in ("diff", "history"):
            return [*words[:index], f"config-{words[index + 1]}", *words[index + 2 :]]
    return words


def _bare(words: list[str], index: int) -> bool:
    """A word that is not the value of the flag before it."""
    if words[index].startswith("-"):
        return False  # --artifact=x.war already says what it is
    return index == 0 or not _takes_value(words[index - 1])


def _shorts(word: str) -> str:
    """The short flags in a word: ``-lf`` is l and f, ``-Hweb1`` is H (web1 is its value)."""
    if word.startswith("--") or not word.startswith("-"):
        return ""
    letters = ""
    for letter in word[1:]:
        letters += letter
        if letter in _VALUED_SHORT:
            break
    return letters


def _takes_value(word: str) -> bool:
    """A flag whose value is the next word: ``--hosts``, ``-H``, ``-fH``."""
    if word.startswith("--"):
        return word in _VALUED
    letters = _shorts(word)
    return letters == word[1:] and letters[-1:] in _VALUED_SHORT


def _deploying(word: str) -> bool:
    """A flag only ``deploy`` takes, so ``deploy --latest`` means the deploy task."""
    return word.split("=")[0] in _DEPLOYING or bool(set(_shorts(word)) & _DEPLOYING_SHORT)


def _refuse_dry_run(argv: Sequence[str]) -> None:
    """Refuse the kin of ``--dry-run`` (``--dry``, ``-R``, ``--noop``...): a flag a user
    believes makes a dry run must never deploy for real."""
    for word in argv:
        if word == "--":
            return
        name = word.split("=")[0]
        if word == "--dry-run":
            continue  # deploy's own flag
        if _DRY.fullmatch(name) or "R" in _shorts(word):
            raise _usage_exit(f"{name}: {DRY_RUN}")


class DeployProgram(Program):
    """Invoke's Program with our flags, our help and `route` applied to the command line."""

    def core_args(self) -> list[Argument]:
        """Help, version and completion: none of Invoke's flags for running shell commands."""
        return list(_core_flags())

    def run(self, argv: list[str] | str | None = None, exit: bool = True) -> None:
        words = argv.split() if isinstance(argv, str) else list(argv or sys.argv)
        super().run(route(words), exit=exit)

    def parse_core(self, argv: list[str] | None) -> None:
        with self._usage():
            _refuse_dry_run((argv or [])[1:])
            self.normalize_argv(argv)
            self.parse_core_args()

    def parse_tasks(self) -> None:
        with self._usage():
            super().parse_tasks()

    def parse_cleanup(self) -> None:
        """Answer ``--version``, ``--help`` and completion, after every flag was parsed."""
        if self.args.version.value:
            self.print_version()
            raise Exit
        with self._usage():
            if shell := self.args["print-completion-script"].value:
                print_completion_script(shell=shell, names=self.binary_names)
                raise Exit
            self._answer_help(self.args.help.value)
        if self.args.complete.value:
            complete(
                names=self.binary_names,
                core=self.core,
                initial_context=self.initial_context,
                collection=self.collection,
                parser=self._make_parser(),
            )

    def _answer_help(self, wanted: bool | str | None) -> None:
        if wanted is True:
            self.print_help()
            raise Exit
        if wanted and wanted not in TASKS:
            raise ParseError(f"-h is --help: it takes a command, not {wanted!r}")
        if wanted:
            self.print_task_help(wanted)
            raise Exit

    def update_config(self, merge: bool = True) -> None:
        """No run/sudo/timeout overrides: ``deploy`` has none of Invoke's flags for them."""
        if merge:
            self.config.merge()

    def print_help(self) -> None:
        print(f"Usage: {self.binary} [COMMAND] [FLAGS]")
        print(f"       {self.binary} WAR|--latest [FLAGS]\n\nCommands:")
        for name in TASKS:
            default = " (default)" if name == self.collection.default else ""
            shown = name.replace("-", " ")  # config diff, config history
            print(f"  {shown:<15}{helpline(self.collection[name])}{default}".rstrip())
        print("\nFlags:")
        owners = self._owners()
        for flag in [*self._task_flags(), *_core_flags(shown=True)]:
            print(_line(flag.spelling, _scoped(flag, owners.get(flag.names[0], TASKS))))
        print("\nExamples:\n" + "".join(f"  {example}\n" for example in EXAMPLES))
        print(f"Shell completion: {self.binary} --print-completion-script bash|zsh|fish")

    def print_task_help(self, name: str) -> None:
        print(f"Usage: {self.binary} {USAGE[name]}\n")
        print(f"{inspect.cleandoc(self.collection[name].__doc__ or '')}\n\nFlags:")
        for flag in self._task_flags(name):
            print(_line(flag.spelling, flag.help or ""))
        print(_line("-h, --help", "Show this help."))

    def _task_flags(self, task: str | None = None) -> list[Flag]:
        """The flags of one task, or of all, in the order of the `FLAGS` table."""
        found = {
            arg.names[0]: arg
            for context in self.collection.to_contexts()
            if task in (None, context.name)
            for arg in context.args.values()
            if isinstance(arg, Flag)
        }
        return [found[name] for name in FLAGS if name in found]

    def _owners(self) -> dict[str, tuple[str, ...]]:
        """Which tasks take each flag, by its long name."""
        owners: dict[str, tuple[str, ...]] = {}
        for context in self.collection.to_contexts():
            for name in context.args:
                owners[name] = (*owners.get(name, ()), str(context.name))
        return owners

    @contextlib.contextmanager
    def _usage(self) -> Iterator[None]:
        """Report a command-line mistake, naming the word, with the usage exit code."""
        try:
            yield
        except ParseError as error:
            raise _usage_exit(self._explain(error)) from None

    def _explain(self, error: ParseError) -> str:
        text = str(error).rstrip(".")
        if unknown := re.fullmatch(r"No idea what '(.*)' is!", text):
            text = self._unknown(unknown[1], error.context.name if error.context else None)
        elif needed := re.fullmatch(r"Flag (\S+) needed value and was not given one!", text):
            text = f"{needed[1]} needs a value"
        elif extra := re.fullmatch(r"Flag (\S+) doesn't take any value!", text):
            text = f"{extra[1]} takes no value"
        if "-h" in self.argv and "-h is --help" not in text:
            text += " (-h is --help; the nodes are -H/--hosts)"
        return text

    def _unknown(self, word: str, task: str | None) -> str:
        glued = [w.split("=")[0] for w in self.argv if w.startswith("-") and w.endswith(f"={word}")]
        if glued:  # Invoke splits --json=yes and then finds no place for "yes"
            return f"{glued[0]} takes no value"
        if not word.startswith("-"):
            commands = ", ".join(TASKS)
            return f"unknown word {word!r}: not a command ({commands}) nor a WAR (*.war)"
        owners = self._owners().get(_long(word), ())
        if owners and task:
            return f"{word} is not a flag of {task}, only of {', '.join(owners)}"
        return f"unknown flag {word}"


def _core_flags(shown: bool = False) -> Iterator[Flag]:
    """The core flags; `shown`: only those the help lists (completion has its own line)."""
    yield Flag(
        "COMMAND",
        names=("help", "h"),
        optional=True,
        help="Show this help, or a command's (deploy rollback -h).",
    )
    yield Flag(names=("version", "V"), kind=bool, default=False, help="Print the version.")
    if not shown:
        yield Flag(names=("complete",), kind=bool, default=False, help="Complete a command line.")
        yield Flag("SHELL", names=("print-completion-script",), default="", help="bash|zsh|fish")


def _long(word: str) -> str:
    """A task flag's long name as typed: ``-H`` and ``--hosts`` are ``hosts``."""
    name = word.lstrip("-").split("=")[0]
    return next((long for long, spec in FLAGS.items() if name in (long, spec.short)), name)


def _scoped(flag: Flag, owners: Sequence[str]) -> str:
    """The help line, saying which commands take the flag unless all do."""
    help = flag.help or ""
    missing = [task for task in TASKS if task not in owners]
    if not missing:
        return help
    if len(owners) < len(missing):  # name the fewer: the commands that take it
        return f"{', '.join(owners)}: {help[:1].lower()}{help[1:]}"
    return f"{help} Not for {', '.join(missing)}."


def _line(spelling: str, help: str) -> str:
    """One flag and its help, wrapped under the help's column to stay within 80;
    long-only flags line up with the long names of the others."""
    indent = "      " if spelling.startswith("--") else "  "
    lines = textwrap.wrap(help, _WIDTH - _COLUMN, break_on_hyphens=False) or [""]
    first = f"{indent + spelling:<{_COLUMN}}{lines[0]}".rstrip()
    return "\n".join([first, *(" " * _COLUMN + line for line in lines[1:])])


def _usage_exit(message: str) -> Exit:
    return Exit(f"error: {message}; see deploy --help", code=int(ExitCode.USAGE))


def make_program() -> DeployProgram:
    """A fresh ``deploy`` program; tests build their own and run it in-process."""
    return DeployProgram(namespace=namespace(), version=__version__, binary="deploy", name="deploy")


def main(argv: list[str] | None = None) -> None:
    """``deploy ARGV`` (default: this process's) through the program."""
    try:
        make_program().run(argv)
    except BrokenPipeError:
        reader_gone()
