"""One exception family whose ``str()`` is the sentence the user reads.

Every failure the user can act on is a `DeployError`; the CLI edge
(`fabfile.cli.program`) turns it into that sentence and its exit code. Anything
else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of ``deploy`` and the ``inv`` tasks, documented in the README."""

    OK = 0
    NODE_FAILED = 1  # a node failed verification, or status shows a node not Ok
    USAGE = 2  # bad command line
    BAD_INPUT = 3  # bad .config, app directory or artifact: nothing was contacted
    PREFLIGHT = 4  # a node refused the pre-flight: nothing was changed
    LOCKED = 5  # another deploy of this app is running
    HANGUP = 129  # SIGHUP (the terminal or SSH session closed): stopped as by Ctrl-C
    INTERRUPTED = 130  # Ctrl-C: the rollout stopped; the history says where
    TERMINATED = 143  # SIGTERM (kill, timeout, a CI job cancelled): stopped as by Ctrl-C


class DeployError(Exception):
    """Root of every error the user is meant to read."""

    exit_code = ExitCode.NODE_FAILED


class ConfigError(DeployError, ValueError):
    """The app directory or its ``.config`` is wrong; says file, line and key."""

    exit_code = ExitCode.BAD_INPUT


class ArtifactError(DeployError, ValueError):
    """The WAR cannot be deployed as it is (not a zip, not this app, missing)."""

    exit_code = ExitCode.BAD_INPUT


class UsageError(DeployError, ValueError):
    """The command line asks for something that does not make sense."""

    exit_code = ExitCode.USAGE


class PreflightError(DeployError):
    """A node cannot take the deploy; raised before anything changed anywhere."""

    exit_code = ExitCode.PREFLIGHT


class HookError(PreflightError):
    """A ``pre_deploy`` hook failed, timed out or was refused: the run stops before any
    node changed."""


class NodeError(DeployError):
    """A command on a node failed or the node could not be reached."""


class RolloutError(DeployError):
    """The rollout stopped at a node; the message says what was seen and how to roll back."""


class NotReady(RolloutError):
    """A node did not report the release within its ``ready_timeout``; the rollout adds
    which key that is, where it is set and what the node needed before
    (`fabfile.engine.readiness`)."""


class LockError(DeployError):
    """Another deploy of the same app holds the lock."""

    exit_code = ExitCode.LOCKED


class Interrupted(DeployError):
    """Ctrl-C, SIGTERM or SIGHUP stopped the run; raised after the history recorded
    where it stopped, with the exit code of that signal."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.INTERRUPTED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def explain(error: BaseException) -> str:
    """The whole sentence the user reads: the error and the context added on its way up
    (`BaseException.add_note`), one per line."""
    return "\n".join([str(error), *getattr(error, "__notes__", ())]).strip()
