"""Running ``[hooks]`` (`fabfile.app.hooks`) on this machine as the run's events come.

A hook is ``sh -c COMMAND``, the command exactly as its owner wrote it, in the app
directory; the run's facts are in its environment (``WARDEPLOY_*``, `environment`),
never pasted into the command. Its output is shown line by line as it comes, prefixed
with the hook's name; it gets no terminal and no stdin. A hook that outlives
``[hooks] timeout`` is killed with its whole process group.

A ``pre`` hook that fails stops the run (`HookError` before any node changed,
`RolloutError` before a blue/green switch); the rollback a failed deploy starts in the
same run runs none (``pre=False``): nothing may block the way back. A ``post`` hook or
``on_failure`` that fails is said and recorded, and the run's outcome stays what it was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..app.credentials import redact
from ..app.hooks import Hooks, check_safe
from ..errors import HookError, RolloutError
from .events import Event, Kind

Say = Callable[[str], None]
# which hook an event runs
HOOK_OF = {
    Kind.STARTED: "pre_deploy",
    Kind.SWITCHING: "pre_switch",
    Kind.FINISHED: "post_deploy",
    Kind.ROLLED_BACK: "post_rollback",
    Kind.FAILED: "on_failure",
}
PRE = (Kind.STARTED, Kind.SWITCHING)  # the events whose hook may stop the run
_KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL to a hook's process group


class HookRunner:
    """The listener that runs the app's hooks; refuses unsafe ones when made."""

    def __init__(self, hooks: Hooks, app_dir: Path, say: Say, pre: bool = True) -> None:
        check_safe(hooks, app_dir)
        self.hooks = hooks
        self.app_dir = app_dir
        self.say = say
        self.pre = pre  # False: a rollback in the run that failed, which no pre hook blocks

    def __call__(self, event: Event) -> str:
        """Run the event's hook, if one is set; the line the history keeps ('' none)."""
        name = HOOK_OF.get(event.kind)
        command = self.hooks.commands.get(name or "")
        if name is None or command is None:
            return ""
        if not self.pre and event.kind in PRE:
            return f"{name}: not run (a rollback in the run that failed)"
        failure, seconds = self.run(name, command, event)
        said = f"{name}: {failure or 'ok'} ({seconds:.1f} s)"
        if not failure:
            return said
        where = self.hooks.where(name)
        if event.kind == Kind.STARTED:
            raise HookError(f"{where}: the hook {failure}; the run stops, nothing was changed")
        if event.kind == Kind.SWITCHING:
            raise RolloutError(f"{where}: the hook {failure}; traffic was not switched")
        self.say(f"warning: {where}: the hook {failure}; the run's outcome stands")
        return said

    def run(self, name: str, command: str, event: Event) -> tuple[str, float]:
        """Run one hook to its end or its timeout: why it failed ('' when it did not),
        and how long it took."""
        started = time.monotonic()
        self.say(f"hook {name}: running")
        process = subprocess.Popen(
            ["sh", "-c", command],
            cwd=self.app_dir,
            env=environment(event, name, self.app_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, to be killed whole; Ctrl-C is ours
        )
        reader = threading.Thread(target=self._show, args=(name, process), daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=self.hooks.timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            reader.join(timeout=1)
            timeout = f"{self.hooks.timeout:g} s, [hooks] timeout"
            return f"did not finish within {timeout}: killed", time.monotonic() - started
        finally:
            if process.poll() is None:  # Ctrl-C while it ran
                _kill(process)
        reader.join(timeout=1)
        seconds = time.monotonic() - started
        if code < 0:
            return f"was killed by signal {-code}", seconds
        return (f"exited with {code}" if code else ""), seconds

    def _show(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Each line of the hook's output as it comes, named (secrets masked)."""
        assert process.stdout is not None
        with process.stdout:
            for raw in process.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.say(f"hook {name}: {line}")


def _kill(process: subprocess.Popen[bytes]) -> None:
    """The hook's whole process group: SIGTERM, then SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, _KILL_GRACE), (signal.SIGKILL, 1.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def environment(event: Event, name: str, app_dir: Path) -> dict[str, str]:
    """This process's environment with the run's facts added and no secret in it
    (``DEPLOY_SECRET_*`` are ours to use, not to hand on)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOY_SECRET_")}
    facts = event.facts
    env |= {
        "WARDEPLOY_HOOK": name,
        "WARDEPLOY_EVENT": str(event.kind),
        "WARDEPLOY_APP": facts.app,
        "WARDEPLOY_APP_DIR": str(app_dir),
        "WARDEPLOY_ACTION": facts.action,
        "WARDEPLOY_VERSION": facts.version,
        "WARDEPLOY_SHA256": facts.sha256,
        "WARDEPLOY_COORDINATES": facts.coordinates,
        "WARDEPLOY_WAR": facts.war,
        "WARDEPLOY_HOSTS": ",".join(facts.hosts),
        "WARDEPLOY_STRATEGY": facts.strategy,
        "WARDEPLOY_RUN": str(facts.run),
        "WARDEPLOY_RUN_ID": facts.run_id,
        "WARDEPLOY_PERFORMER": facts.user,
        "WARDEPLOY_OUTCOME": event.outcome,
        "WARDEPLOY_RECORDED_AT": event.at,
        "WARDEPLOY_MESSAGE": redact(event.message),
        "WARDEPLOY_SWITCHING": ",".join(event.hosts),
        "WARDEPLOY_RUNTIME": "" if event.seconds is None else f"{event.seconds:.3f}",
    }
    return env
