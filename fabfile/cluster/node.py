"""Reaching one node over SSH: what it holds, uploads, installs and restarts.

Every remote command is a short POSIX ``sh`` script whose variable parts are
quoted with `shlex.quote` (paths under ``~/`` become ``"$HOME"/'rest'``); only
the ``restart`` command from ``.config`` runs as the user wrote it. Where each
thing is under ``releases_dir`` is `fabfile.cluster.layout`'s; what the node
holds is read by `fabfile.cluster.holdings`; the connection itself is
`fabfile.cluster.connection`'s.
"""

from __future__ import annotations

import shlex
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..app.release import Release
from ..errors import NodeError
from ..records.lock import Holder
from . import (
    become,
    ownership,
    placement,
    portowner,
    restartclaim,
    takenout,
)
from .address import url_port
from .holdings import Holdings
from .layout import hidden_beside
from .ownership import Owner
from .portowner import PortReport
from .restartclaim import Claim
from .session import Session, tail_of
from .shell import sh_path
from .takenout import TakenOut

Sources = Mapping[str, Path]  # sha256 -> the coordinator's copy of that file


class Node(Session):
    """A node as a deploy uses it: install a release, restart under its claim, the marks
    it leaves (taken out of rotation, the app that owns releases_dir), pruning."""

    def install(
        self, release: Release, only: tuple[str, ...] = (), sources: Sources | None = None
    ) -> int:
        """Put the release's files in place and record it, all or nothing; return the
        bytes sent again (`put_in_place`).

        Every file is first copied next to its target under a hidden name and its
        checksum checked; only when all copies exist are they renamed over the
        targets, the WAR last, so a hot-deploying Jetty never starts it with the old
        config. A copy, not a link: the fresh mtime makes Jetty unpack the WAR again
        even when an older release comes back (a kept file's old mtime would not),
        and no edit of the live file can reach the kept one.
        ``only`` limits it to some of the files (``logback``: `deploy logging`).
        """
        layout, instance = self.layout, self.config.instance
        files = placement.staged(self.config, release, only, self.run_id)
        recording = placement.recording(layout, instance, release, self.run_id)
        user = self.config.become_user
        lines = placement.placing(layout, files, user, self.run_id) + recording
        return self.put_in_place("\n".join(lines), "installing the release", sources)

    def prepare(
        self, release: Release, sources: Sources | None = None, fresh: frozenset[str] = frozenset()
    ) -> int:
        """Copy the release's files beside their targets, each copy checked, before the
        node's turn (`placement.preparing`); `install` then only renames them. Nothing
        live changes. ``fresh``: blobs just sent unchecked (`upload` without ``check``),
        checked by their copies here. Returns the bytes sent again (`put_in_place`)."""
        files = placement.staged(self.config, release, (), self.run_id)
        user = self.config.become_user
        script = placement.preparing(self.layout, files, user, self.run_id, fresh)
        return self.put_in_place("\n".join(script), "preparing the release's files", sources)

    def discard(self, release: Release) -> None:
        """Remove what `prepare` made for ``release`` (a run that stopped before the
        node's turn); the next run's pre-flight removes it if this cannot."""
        files = placement.staged(self.config, release, (), self.run_id)
        self.run(placement.discarding(files, self.config.become_user, self.run_id), "tidying")

    def place(self, sha256: str, target: str, sources: Sources | None = None) -> int:
        """Put one staged file at ``target`` (renamed into place), recording no release:
        a node that runs none this tool deployed still takes a logback.xml."""
        files = [(sha256, target, hidden_beside(target, self.run_id))]
        script = "\n".join(placement.placing(self.layout, files, self.config.become_user))
        return self.put_in_place(script, f"placing {target}", sources)

    def put_in_place(
        self, script: str, what: str, sources: Sources | None = None, stdin: bytes = b""
    ) -> int:
        """Run a script that copies staged blobs into place, each copy checked against
        its checksum (`placement.checked`), ``stdin`` on its input. A blob that changed on
        the node is never installed: it is sent again from ``sources`` and the script run once more;
        without a local copy, a `NodeError` says so. Returns the bytes sent again."""
        sent = 0
        for _ in range(2):
            result = self._exec(script, what, stdin=stdin)
            if result.exited == 0:
                return sent
            changed = placement.changed(str(result.stdout))
            if not changed:
                raise NodeError(
                    f"{self.host}: {what} failed (exit {result.exited}): {tail_of(result)}"
                )
            sent += self.resend(changed, sources or {})
        raise NodeError(f"{self.host}: {what}: the staged files changed again after being resent")

    def changed_blobs(self, shas: Iterable[str]) -> dict[str, str]:
        """Hash the node's staged copies of ``shas``; those that no longer match their
        name are removed there, and returned (checksum named -> checksum found)."""
        found = self.run(placement.checking(self.layout, shas), "checking the staged files")
        return placement.changed(found)

    def resend(self, changed: dict[str, str], sources: Sources) -> int:
        """Send again the blobs that ``changed`` on the node; return the bytes sent.
        A `NodeError` naming them when the coordinator has no copy."""
        lacking = [sha for sha in changed if sha not in sources]
        if lacking:
            named = ", ".join(
                f"{sha[:12]} (now {changed[sha][:12] or 'unreadable'})" for sha in lacking
            )
            raise NodeError(
                f"{self.host}: staged file(s) {named} in {self.layout.blobs} changed on the node "
                "since they were staged (edited in place? a damaged disk?), so they were removed "
                "and nothing was installed from them; the coordinator has no copy: deploy the "
                "WAR of that release explicitly (deploy WAR) to send them again"
            )
        return sum(self.upload(sources[sha], sha) for sha in changed)

    def record(self, release: Release) -> None:
        """Note ``release`` as what the instance runs (parallel: once it is verified)."""
        recording = placement.recording(self.layout, self.config.instance, release, self.run_id)
        self.run(
            "set -e\n" + "\n".join([self.layout.assign(), *recording]), "recording the release"
        )

    def restart(self, holder: str, run: str, stale: str = "") -> tuple[Claim | None, float]:
        """Claim the node's restart lock, then run the ``.config`` restart command.

        Returns (the claim in the way, when another holds; the node's uptime when
        ours was taken). ``stale`` is a claim judged over, to be taken over.
        """
        c = self.config
        script = restartclaim.claim_and_restart(
            c.releases_dir,
            holder,
            2 * c.ready_timeout,
            stale,
            become.shell(c.become_user, c.restart),
        )
        result = self._exec(script, "running the restart command", c.ready_timeout)
        stdout = str(result.stdout)
        blocked, at = restartclaim.parse_outcome(stdout)
        if blocked is None and result.exited != 0:
            said = str(result.stderr).strip() or restartclaim.own_output(stdout)
            released = (
                "; its restart claim was released, so no later run waits for it"
                if restartclaim.released(stdout)
                else ""
            )
            raise NodeError(
                f"{self.host}: the restart command failed (exit {result.exited}): "
                f"{said[-400:] or 'it printed nothing'}{released}"
            )
        return blocked, at or 0.0

    def release_restart(self, run: str) -> None:
        """Remove this run's restart claim: the new JVM is verified, or has failed."""
        self.run(
            restartclaim.release_script(self.config.releases_dir, run), "releasing the restart"
        )

    def clear_claim(self, line: str) -> None:
        """Remove a restart claim judged over, unless it changed meanwhile."""
        self.run(
            restartclaim.clear_script(self.config.releases_dir, line), "clearing a restart claim"
        )

    def take_out(self) -> None:
        """Mark the node as taken out of rotation by this run (before it is drained)."""
        record = self.holder or restartclaim.record(Holder.me("deploy"), self.run_id)
        script = takenout.mark_script(self.layout, self.config.instance, record, self.run_id)
        self.run(script, "marking the node as taken out of rotation")

    def put_back(self) -> None:
        """Remove that mark: the node is back in rotation."""
        script = takenout.clear_script(self.layout, self.config.instance)
        self.run(script, "clearing the out-of-rotation mark")

    def taken_out(self) -> TakenOut | None:
        """The tool's out-of-rotation mark on the node, if any (None: someone else's)."""
        script = takenout.read_script(self.layout, self.config.instance)
        return takenout.parse(self.run(script, "reading the out-of-rotation mark"))

    def claim_owner(self, owner: Owner) -> Owner | None:
        """Name ``owner`` as the releases directory's app unless another is named; the
        app named there now (None if its record cannot be read)."""
        script = ownership.claim_script(self.layout, owner, self.run_id)
        return ownership.parse(self.run(script, "naming the releases directory's app"))

    def port_report(self) -> PortReport:
        """Who listens on the status port, and the node's clocks."""
        return self._port_report("", "reading who holds the status port")[1]

    def restart_claim(self) -> tuple[Claim | None, PortReport]:
        """The node's restart claim (if any) and who holds the status port, in one round trip."""
        return self._port_report(
            restartclaim.read_script(self.config.releases_dir), "reading the restart claim"
        )

    def _port_report(self, before: str, what: str) -> tuple[Claim | None, PortReport]:
        c = self.config
        port = url_port(c.url)
        text = self.run(f"{before}\n{portowner.script(port, c.pid_file)}", what)
        claim = next(
            (Claim.parse(line[6:]) for line in text.splitlines() if line.startswith("claim ")),
            None,
        )
        return claim, portowner.parse(text, port, c.pid_file, _url_host(c.url))

    def prune(self, holdings: Holdings, keep: frozenset[str]) -> None:
        """Delete blobs no kept release refers to."""
        script = self.prune_script(holdings, keep)
        if script:
            self.run(script, "removing old releases")

    def prune_script(self, holdings: Holdings, keep: frozenset[str]) -> str:
        """The command `prune` runs ('' when there is nothing to delete)."""
        doomed = sorted(holdings.blobs - keep)
        if not doomed:
            return ""
        names = " ".join(shlex.quote(name) for name in doomed)
        return f"cd {sh_path(self.layout.blobs)} && rm -f -- {names}"


def _url_host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""
