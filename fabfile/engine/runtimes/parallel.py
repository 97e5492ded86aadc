"""The parallel-deployment runtime: a new version beside the running one, no restart.

How a release becomes live on one Tomcat instance: its files, already staged
on the node by checksum, are laid out as one version under
``releases_dir/versions/TAG`` (copied on the node, each copy checked against its
checksum; not hard links, through which an edit of a live version's file would
change the staged copy that a later rollback installs); the
instance's manager deploys that WAR from the node's own path under a tag that
sorts after every version the app holds (`fabfile.app.tag`); then ``/status``,
which Tomcat answers from the newest version, must name the release. The old
version keeps serving the sessions it holds. A version that fails is
undeployed again, so new sessions go back to the old one.

On the node, per version: ``versions/TAG.war``, ``versions/TAG.xml`` (the
context file: the WAR's own, plus ``<PreResources>`` for the version's
``WEB-INF/lib`` and ``WEB-INF/classes``) and ``versions/TAG/WEB-INF/...``
(the extensions, and ``config.properties`` in ``classes``, so each version
reads its own).
"""

from __future__ import annotations

import functools
import shlex
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from ...app import extensions
from ...app.tag import Tag, following
from ...cluster import become, placement, probe
from ...cluster.layout import VERSION_CONFIG, VERSION_FILES, Layout, hidden_beside
from ...cluster.manager import Deployed, Manager
from ...cluster.shell import sh_path
from ...errors import DeployError, NodeError, NotReady, RolloutError
from ...records.history import VERIFIED_AS, Action
from ..phase import Phase
from ..plan import Plan
from ..steps import Steps
from ..target import Outcome, Target

if TYPE_CHECKING:  # a type only: the status path loads this module, and no SSH
    from ...cluster.node import Node

MIB = 1024 * 1024


class ParallelVersions:
    """Makes ``plan``'s release live on one instance at a time, beside the old version."""

    places: ClassVar[tuple[str, ...]] = (
        "jettyrc",
        "logback",
    )  # config.properties goes inside each version

    def __init__(self, plan: Plan, steps: Steps, manager: Manager) -> None:
        self.plan = plan
        self.steps = steps
        self.manager = manager
        self.seen: dict[str, list[Deployed]] = {}  # by node label, from the pre-flight

    # -- pre-flight -------------------------------------------------------------

    def settle(self, target: Target) -> None:
        """Read the versions the instance holds and its heap; refuse what would not work."""
        node = target.config
        deployed = self.manager.versions(node)
        foreign = [d.tag for d in deployed if d.tag and d.parsed is None]
        if foreign:
            raise NodeError(
                f"{target.host}: the Tomcat manager lists version(s) "
                f"{', '.join('##' + tag for tag in foreign)}, not tagged by this tool; Tomcat "
                "compares tags as strings and could keep serving new sessions from them: "
                "undeploy them first"
            )
        self.seen[target.host] = deployed
        if not self.plan.force:
            try:
                self._check_heap(target, deployed)
            except NodeError as error:
                if self.plan.action != Action.ROLLBACK:
                    raise
                self.steps.note(f"{error}; rolling back anyway (a way back is never refused)")
        self._forget_retired(target, deployed)

    def _check_heap(self, target: Target, deployed: list[Deployed]) -> None:
        """One more version holds its own copy of the app's heap: refuse when it won't fit."""
        node = target.config
        heap = self.manager.heap(node)
        running = max(1, sum(1 for d in deployed if d.state == "running"))
        need = node.version_heap_mb * MIB or heap.used // running
        if heap.free >= need:
            return
        how = "version_heap_mb" if node.version_heap_mb else f"heap in use / {running} version(s)"
        raise NodeError(
            f"{target.host}: one more version needs about {need // MIB} MiB of heap ({how}), "
            f"but only {heap.free // MIB} of {heap.max // MIB} MiB are free ({heap.used // MIB} "
            "in use); retire old versions first (deploy retire), raise -Xmx (.jettyrc, at "
            "Tomcat's next restart), or deploy with --force"
        )

    def _forget_retired(self, target: Target, deployed: list[Deployed]) -> None:
        """Remove the node's files of versions the manager no longer lists."""
        keep = shlex.quote(" ".join(sorted(d.tag for d in deployed if d.tag)))
        v = sh_path(Layout.of(target.config).versions)
        tag = 't="$f"' + "".join(f'; t="${{t%{shlex.quote(end)}}}"' for end in VERSION_FILES)
        script = (
            f'keep={keep}; cd {v} 2>/dev/null || exit 0; for f in *; do [ -e "$f" ] || continue; '
            f'{tag}; case " $keep " in *" $t "*) ;; '
            '*) rm -rf -- "$f" ;; esac; done'
        )
        target.node.run(script, "removing files of retired versions")

    def serving(self, target: Target) -> str:
        """``as ##TAG`` of the newest running version (what /status answers from), and its
        tag on ``target`` for the history: the node is verified as that version."""
        running = [d for d in self.seen.get(target.host, []) if d.state == "running"]
        target.tag = running[-1].tag if running else ""
        return VERIFIED_AS + target.tag if running else ""

    # -- making it live --------------------------------------------------------

    @functools.cached_property
    def tag(self) -> Tag:
        """One tag for every host: above every version any of them holds."""
        return following(_tags(self.seen.values()), self.plan.release.version)

    def make_live(self, target: Target) -> None:
        """Lay out, deploy beside, verify by version; undeploy it again if it fails."""
        tag = self.tag.text
        deployed = False
        try:
            self.steps.set_phase(target, Phase.INSTALLING, f"##{tag}")
            target.end(Outcome.INSTALLING)
            war, context = self._lay_out(target, tag)
            self.steps.set_phase(target, Phase.DEPLOYING, f"##{tag}")
            deployed, since = True, time.monotonic()
            self.manager.deploy(target.config, tag, war, context)
            target.end(Outcome.INSTALLED)
            self._verify(target)
            target.restart_to_ready = time.monotonic() - since  # the version's start
            target.node.record(self.plan.release_for(target.config))
        except (NodeError, NotReady) as error:  # NotReady: the rollout adds what it needed
            failure = error if isinstance(error, NotReady) else RolloutError(str(error))
            self._take_back(target, tag, deployed, failure)
            target.end(Outcome.FAILED, str(error))
            self.steps.set_phase(target, Phase.FAILED, str(error))
            raise failure from None
        except (DeployError, KeyboardInterrupt) as error:
            self._take_back(target, tag, deployed, error)
            raise
        target.end(Outcome.DEPLOYED, VERIFIED_AS + tag)
        target.tag = tag

    def _lay_out(self, target: Target, tag: str) -> tuple[str, str]:
        """The version's files on the node, linked from the staged blobs; the absolute
        paths of its WAR and context file."""
        node, release = target.node, self.plan.release_for(target.config)
        layout = Layout.of(target.config)
        base = node.absolute(layout.version(tag))
        war, xml = node.absolute(layout.version_war(tag)), node.absolute(layout.version_xml(tag))
        files = [(release.config, VERSION_CONFIG), *extensions.entries(release.extensions)]
        # the context file (JDBC passwords, often) comes on stdin, never on a command line
        lines = ["set -e", layout.assign(), f"b={shlex.quote(base)}"]
        lines += ['mkdir -p "$b"', f"cat > {shlex.quote(xml)}"]
        lines.append(become.PUT)
        lines += [f'mkdir -p "$b"/{shlex.quote(mount)}' for mount in extensions.MOUNTS]
        for sha, path in files:
            parent = path.rpartition("/")[0]
            lines += [
                f'mkdir -p "$b"/{shlex.quote(parent)}',
                *_copy(layout, sha, f'"$b"/{shlex.quote(path)}'),
            ]
        lines += _copy(layout, release.war, shlex.quote(war))
        lines += _copy_lines(layout, release.jettyrc, target.config.jettyrc_path, node)
        if release.logback and target.config.logback_path:
            lines += _copy_lines(layout, release.logback, target.config.logback_path, node)
        context = extensions.context_xml(release.context, base).encode()
        script, what = "\n".join(lines), f"laying out version ##{tag}"
        resent = node.put_in_place(script, what, self.plan.sources, stdin=context)
        if resent:
            target.sent += resent
            self.steps.note(
                f"{target.host}: a staged file had changed on the node; it was sent again "
                f"({resent} bytes) and checked before version ##{tag} was laid out"
            )
        return war, xml

    def _verify(self, target: Target) -> None:
        """New sessions go to the newest version, so ``/status`` (no session) answers from it."""
        release = self.plan.release
        self.steps.set_phase(target, Phase.WAITING)
        ready, status, steady = probe.wait_ready(
            target.config, release.coordinates, release.version
        )
        target.status = status
        if ready:
            return
        node = target.config
        within = "" if steady else f" within {node.ready_timeout:g} s (ready_timeout)"
        how = f" steadily for {node.error_grace:g} s" if steady else ""
        line = (
            f"{target.host}: not verified{within}: {status.url} answered "
            f"{status.describe()!r}{how}, expected 200 '{release.coordinates} "
            f"{release.version}' from ##{self.tag.text}"
        )
        if steady:  # a broken release: no limit to raise
            raise NodeError(line)
        raise NotReady(line)

    def withdraw(self, target: Target) -> None:
        """Undeploy this run's version from a node judged Failed (a canary, or with
        ``on_failure = stop``): new sessions go back to the version that served before, and
        the node stays in haproxy's pool for them. Raises `NodeError` if the manager refuses."""
        tag = self.tag.text
        self.manager.undeploy(target.config, tag)
        older = [d.label for d in self.seen.get(target.host, []) if d.state == "running"]
        serves = f"{older[-1]} serves new sessions again" if older else "no older version runs"
        self.steps.note(f"{target.host}: ##{tag} undeployed; {serves}")

    def _take_back(self, target: Target, tag: str, deployed: bool, error: BaseException) -> None:
        """Undeploy a version that failed (or was interrupted): new sessions go back to
        the one that served. Says so on ``error``."""
        if not deployed:
            return
        try:
            self.manager.undeploy(target.config, tag)
        except NodeError as undeploy_error:
            error.add_note(
                f"{target.host}: ##{tag} could not be undeployed ({undeploy_error}); it may take "
                "new sessions: run `deploy rollback` or undeploy it in the manager"
            )
            return
        older = [d.label for d in self.seen.get(target.host, []) if d.state == "running"]
        error.add_note(
            f"{target.host}: ##{tag} was undeployed again; "
            + (f"{older[-1]} keeps serving" if older else "no older version was running")
        )


def _copy_lines(layout: Layout, sha: str, path: str, node: Node) -> list[str]:
    """.jettyrc (the instance's JVM options) goes to ``jettyrc_path`` as with a restart,
    renamed into place with the old file's mode and owner, as ``become_user``; no
    restart here, so Tomcat reads it at its next start. So does logback.xml, to
    ``logback_path``: logback rereads it when it scans. (After `become.PUT`.)"""
    user, new = node.config.become_user, hidden_beside(path, node.run_id)
    return [
        placement.put(layout, sha, path, new, user),  # a copy: it may be edited
        f"{become.prefix(user)}mv -f {sh_path(new)} {sh_path(path)}",
    ]


def _copy(layout: Layout, sha: str, target: str) -> list[str]:
    """Copy a staged blob to ``target`` (one shell word) and check the copy's checksum."""
    return [
        f"cp -f {layout.word(layout.blob(sha))} {target}",
        placement.checked(layout, sha, target),
    ]


def _tags(lists: Iterable[list[Deployed]]) -> list[Tag]:
    return [tag for deployed in lists for d in deployed if (tag := d.parsed) is not None]
