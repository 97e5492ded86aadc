"""The restart runtime: install the release's files, restart the container, verify.

This is how a release becomes live on a Jetty node (and on one Tomcat
instance): files copied into place all or nothing, the ``.config`` restart
command run under the node's restart claim (`fabfile.cluster.restartclaim`), then
``/status`` polled until it names the release. When the version does not
change, a 200 proves a restart only if the node was seen down since.
"""

from __future__ import annotations

import dataclasses
import time
from typing import ClassVar

from ...cluster import inflight, portowner, probe, restartclaim
from ...errors import DeployError, NodeError, NotReady, RolloutError
from .. import warmup
from ..phase import Phase
from ..plan import Plan
from ..steps import Steps
from ..target import Outcome, Target


class Restart:
    """Makes ``plan``'s release live on one target at a time, by a container restart."""

    places: ClassVar[tuple[str, ...]] = ("config", "jettyrc", "logback")

    def __init__(self, plan: Plan, steps: Steps, run_id: str, holder: str) -> None:
        self.plan = plan
        self.steps = steps
        self.run_id = run_id  # tells this run's restart claims from others'
        self.holder = holder  # who restarts, as a claim names it

    def settle(self, target: Target) -> None:
        """Pre-flight: a restart claimed by another run and still under way is waited for;
        one that is over is cleared."""
        assert target.holdings is not None
        if target.holdings.claim is not None:
            over = self._await_claim(target, target.holdings.claim)
            if over:
                target.node.clear_claim(over)

    def make_live(self, target: Target) -> None:
        """Install, restart, verify; a node error becomes the node's failure."""
        try:
            self.steps.set_phase(target, Phase.INSTALLING)
            target.end(Outcome.INSTALLING)
            resent = target.node.install(
                self.plan.release_for(target.config), sources=self.plan.sources
            )
            if resent:
                target.sent += resent
                self.steps.note(
                    f"{target.host}: a staged file had changed on the node; it was sent again "
                    f"({resent} bytes) and checked before it was installed"
                )
            target.end(Outcome.INSTALLED)
            self.steps.set_phase(target, Phase.RESTARTING)
            self._restart_and_verify(target)
        except NodeError as error:
            target.end(Outcome.FAILED, str(error))
            self.steps.set_phase(target, Phase.FAILED, str(error))
            raise RolloutError(str(error)) from None

    def _restart_and_verify(self, target: Target) -> None:
        """A watcher polls while the restart command runs, which catches the down
        window of a restart command that waits for the new JVM. The claim is
        released once the new JVM is verified or has failed; an interruption
        leaves it, since the restart may still be under way."""
        before = target.status
        same = before is not None and before.ok and before.version == self.plan.release.version
        watch = probe.DownWatch(target.config) if same else None
        try:
            restarted = self._claimed_restart(target)
        finally:
            saw_down = watch.stop() if watch else False
        try:
            self._verify(target, restarted, must_go_down=same and not saw_down)
        except DeployError:
            self._release_claim(target)
            raise
        self._release_claim(target)

    def _claimed_restart(self, target: Target) -> float:
        """Claim the node's restart and run it; wait out a restart in flight first."""
        for _ in range(5):
            restarted = time.monotonic()
            target.restarted = True
            blocked, at = target.node.restart(self.holder, self.run_id, target.stale_claim)
            if blocked is None:
                target.restarted_at = at
                return restarted
            target.restarted = False
            target.stale_claim = self._await_claim(target, blocked)
        raise NodeError(f"{target.host}: other restarts keep claiming the node; try again later")

    def _await_claim(self, target: Target, claim: restartclaim.Claim) -> str:
        """Wait while another restart of this node is in flight; return the claim
        to take over once it is over ('' when it was released).

        Bounded by the claim's own expiry, and by twice our ``ready_timeout``.
        """
        node, limit = target.node, 2 * target.config.ready_timeout
        deadline = time.monotonic() + limit
        said = False
        found, report = node.restart_claim()
        while found is not None and found.in_flight(report, self.run_id):
            if not said:
                said = True
                at_most = min(found.expires - report.uptime, limit)
                self.steps.note(
                    f"{target.host}: a restart started {report.uptime - found.at:.1f} s ago by "
                    f"{found.describe()} is still under way; waiting until it is over "
                    f"(at most {at_most:.0f} s)"
                )
            if time.monotonic() >= deadline:
                raise NodeError(
                    f"{target.host}: a restart by {found.describe()} is still in flight after "
                    f"{limit:g} s; run the deploy again once it is over"
                )
            inflight.pause(min(0.2, target.config.poll_interval * 4))  # a stopped fan-out ends it
            found, report = node.restart_claim()
        return found.line if found is not None else ""

    def _release_claim(self, target: Target) -> None:
        try:
            target.node.release_restart(self.run_id)
        except NodeError as error:  # it expires on its own; the next run says so
            self.steps.note(f"could not release the restart claim: {error}")

    def _verify(self, target: Target, since: float, must_go_down: bool) -> None:
        """Wait for the node to report the release; raise `RolloutError` if it does not."""
        release = self.plan.release
        self.steps.set_phase(target, Phase.WAITING)
        ready, status, steady = probe.wait_ready(
            target.config, release.coordinates, release.version, must_go_down=must_go_down
        )
        target.status = status
        if not ready and must_go_down and status.ok:
            status = dataclasses.replace(
                status, ok=False, reason=f"{status.describe()} from the old JVM: it never restarted"
            )
        if not ready:
            target.end(Outcome.FAILED, status.describe())
            self.steps.set_phase(target, Phase.FAILED, status.describe())
            failure = RolloutError if steady else NotReady  # NotReady: ready_timeout fired
            raise failure(self._unverified(target, status, steady))
        target.restart_to_ready = time.monotonic() - since
        target.end(Outcome.DEPLOYED)
        if target.config.warmup_urls:
            problems = warmup.fetch(target.config)
            fetched = len(target.config.warmup_urls) - len(problems)
            said = "; ".join(problems)
            self.steps.note(
                f"{target.host}: warm-up fetched {fetched} of {len(target.config.warmup_urls)} "
                f"path(s) from the node" + (f" (not: {said})" if said else "")
            )

    def _unverified(self, target: Target, status: probe.Status, steady: bool) -> str:
        """What /status said instead of the release, and for how long."""
        release, node = self.plan.release, target.config
        within = "" if steady else f" within {node.ready_timeout:g} s (ready_timeout)"
        how = f" steadily for {node.error_grace:g} s" if steady else ""
        line = (
            f"{target.host}: not verified{within}: {status.url} answered "
            f"{status.describe()!r}{how}, expected 200 '{release.coordinates} {release.version}'."
        )
        if status.code == 200:  # another version answers: who holds the port?
            line += self._port_holder(target)
        return line

    def _port_holder(self, target: Target) -> str:
        """Why the old version may still answer, read on the node ('' if unreadable)."""
        try:
            report = target.node.port_report()
        except NodeError:
            return ""
        why = portowner.explain(report, target.host, target.restarted_at, self.plan.command)
        return f"\n{why}" if why else ""
