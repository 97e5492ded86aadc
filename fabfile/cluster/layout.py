"""Where things are on a node: the one place the names under ``releases_dir`` are spelled.

Under ``releases_dir`` a node keeps ``blobs/SHA256`` (every WAR, config.properties,
.jettyrc and logback.xml it was sent, by checksum; ``SHA256.part`` while one arrives),
``current`` (the release the node runs, one JSON line, replaced atomically through
``current.new``; ``current.INSTANCE`` for each of several instances), ``releases.log``
(every install, one JSON line each, from which pruning keeps the newest),
``restart.claim`` with its ``.lock`` and ``.new`` (`fabfile.cluster.restartclaim`),
``taken-out`` (``taken-out.INSTANCE``: the tool took it out of haproxy's rotation,
`fabfile.cluster.takenout`), ``owner`` (the app whose directory it is,
`fabfile.cluster.ownership`), ``deploy.lock`` with its ``.mutex`` and ``.new``
(`fabfile.cluster.nodelock`) and, for parallel deployment, ``versions/TAG/`` with
``TAG.war`` and ``TAG.xml`` beside it.

A file put in place outside it (the WAR, config.properties, ...) is first copied
beside its target, under a hidden name ending in ``.deploy-new``.

Every temporary name carries the run that made it (``SHA256.RUN.part``,
``.ROOT.war.RUN.deploy-new``, ``current.RUN.new``): two runs on one node (two
coordinators, a person's run beside a cron job's) never rename or delete each
other's files. What a run leaves behind (it was killed) is removed by a later
pre-flight once nobody has written it for `STALE_MINUTES`.
"""

from __future__ import annotations

import dataclasses
import shlex

from ..app.config import NodeConfig
from .shell import sh_path

_BLOBS = "blobs"
_PART = ".part"
_CURRENT = "current"
_NEW = ".new"
_LOG = "releases.log"
_VERSIONS = "versions"
_CLAIM = "restart.claim"
_TAKEN_OUT = "taken-out"
_OWNER = "owner"
_LOCK = ".lock"
_DEPLOY_LOCK = "deploy.lock"
_MUTEX = ".mutex"
_STAGED = ".deploy-new"
_VAR = "d"  # the shell variable `Layout.assign` sets to the releases directory

STALE_MINUTES = 60  # a temporary file unwritten this long is a dead run's: tidied
VERSION_FILES = (".war", ".xml")  # beside each versions/TAG directory: its WAR, its context
VERSION_CONFIG = "WEB-INF/classes/config.properties"  # inside versions/TAG: each reads its own


@dataclasses.dataclass(frozen=True)
class Layout:
    """The paths under one node's ``releases_dir``, spelled as ``.config`` does (``~/``
    is the node's HOME): quote them with `sh_path` or `word`, never paste them."""

    root: str

    @classmethod
    def of(cls, config: NodeConfig) -> Layout:
        return cls(config.releases_dir)

    @property
    def blobs(self) -> str:
        """The directory of every file the node was sent, named by checksum."""
        return self._under(_BLOBS)

    def blob(self, sha256: str) -> str:
        return f"{self.blobs}/{sha256}"

    def part(self, sha256: str, run: str = "") -> str:
        """Where run ``run``'s upload arrives, until its checksum is checked on the node."""
        return self.blob(sha256) + _run(run) + _PART

    def current(self, instance: str = "") -> str:
        """The release an instance runs: ``current``, or ``current.NAME`` (a safe name)."""
        return self._under(f"{_CURRENT}.{instance}" if instance else _CURRENT)

    def current_new(self, instance: str = "", run: str = "") -> str:
        """Written first, then renamed over `current`: a reader never sees half a record."""
        return self.current(instance) + _run(run) + _NEW

    @property
    def log(self) -> str:
        """Every release installed, one JSON line each, oldest first."""
        return self._under(_LOG)

    @property
    def versions(self) -> str:
        """Parallel deployment's directory of versions laid out side by side."""
        return self._under(_VERSIONS)

    def version(self, tag: str) -> str:
        """One version's ``WEB-INF`` tree; its WAR and context file sit beside it."""
        return f"{self.versions}/{tag}"

    def version_war(self, tag: str) -> str:
        return self.version(tag) + VERSION_FILES[0]

    def version_xml(self, tag: str) -> str:
        return self.version(tag) + VERSION_FILES[1]

    @property
    def claim(self) -> str:
        """The restart claim: one restart at a time on a node."""
        return self._under(_CLAIM)

    @property
    def claim_lock(self) -> str:
        """The file ``flock`` holds while the claim is read and written."""
        return self.claim + _LOCK

    @property
    def claim_new(self) -> str:
        return self.claim + _NEW

    def taken_out(self, instance: str = "") -> str:
        """The tool's mark that it took the instance out of haproxy's rotation
        (`fabfile.cluster.takenout`): ``taken-out``, or ``taken-out.NAME``."""
        return self._under(f"{_TAKEN_OUT}.{instance}" if instance else _TAKEN_OUT)

    def taken_out_new(self, instance: str = "", run: str = "") -> str:
        return self.taken_out(instance) + _run(run) + _NEW

    @property
    def owner(self) -> str:
        """The app this releases directory belongs to (`fabfile.cluster.ownership`)."""
        return self._under(_OWNER)

    def owner_new(self, run: str) -> str:
        return self.owner + _run(run) + _NEW

    @property
    def deploy_lock(self) -> str:
        """The deploy lock: one run at a time on the node, whichever coordinator it is from."""
        return self._under(_DEPLOY_LOCK)

    @property
    def deploy_lock_mutex(self) -> str:
        """The file ``flock`` holds while the deploy lock is read and changed."""
        return self.deploy_lock + _MUTEX

    @property
    def deploy_lock_new(self) -> str:
        """Written first (under the mutex), then renamed over `deploy_lock`."""
        return self.deploy_lock + _NEW

    def _under(self, name: str) -> str:
        return f"{self.root}/{name}"

    # -- shell words relative to $d, which keep the node's scripts short ---------------

    def assign(self) -> str:
        """The shell line that sets ``$d`` to the releases directory, for `word`."""
        return f"{_VAR}={sh_path(self.root)}"

    def word(self, path: str) -> str:
        """``path`` (the root or one of its paths) as one shell word under ``$d``."""
        if path == self.root:
            return f'"${_VAR}"'
        rest = path.removeprefix(self.root + "/")
        if rest == path:
            raise ValueError(f"{path!r} is not under {self.root!r}")
        return f'"${_VAR}"/{shlex.quote(rest)}'

    def free_kib(self) -> str:
        """A shell command printing the free KiB where the releases directory is, or will
        be: ``df`` of its nearest existing parent. On a node never deployed to (and in a
        dry run, which makes no directory) the directory itself is not there yet, and
        ``df`` of it printed nothing, read as 0 KiB free."""
        return (
            f"up={self.word(self.root)}; "
            'while [ ! -d "$up" ]; do up=$(dirname "$up"); done; '
            "df -Pk \"$up\" | awk 'NR==2 {print $4}'"
        )

    def every_blob(self) -> str:
        """A shell glob of every blob (a literal pattern when there is none)."""
        return f"{self.word(self.blobs)}/*"

    def stale_temporaries(
        self, targets: tuple[str, ...], locked: bool = False, sudo: str = "", shared: bool = True
    ) -> str:
        """Shell lines removing the temporary files of runs long gone: uploads left
        half done and records under ``releases_dir``, and the copies beside each
        of ``targets`` (the WAR, config.properties, ...), unwritten for `STALE_MINUTES`.
        Another run's younger files stay: it may still be writing them; unless this run
        holds the node's deploy lock (``locked``): then no other run is alive there.
        ``sudo`` (words before a command) removes the copies beside the targets as the
        user who writes them (`fabfile.cluster.become`). Without ``shared``, only the
        copies beside ``targets``: the releases directory is another instance's to tidy."""
        root = self.word(self.root)
        # (who removes, the directory, the name before and after its one wildcard)
        places = [("", self.word(self.blobs), "", _PART)]
        # two dots at least: `current.NAME` (an instance's record) never matches
        places += [("", root, f"{name}.", _NEW) for name in (_CURRENT, _TAKEN_OUT, _OWNER)]
        places = places if shared else []
        for target in targets:
            places.append((sudo, sh_path(parent(target)), "." + target.rpartition("/")[2], _STAGED))
        if locked:
            return _removed_by_glob(places)
        age = f"-mmin +{STALE_MINUTES} "
        names: dict[tuple[str, str], list[str]] = {}  # one find per directory: fewer forks
        for who, where, head, tail in places:
            pattern = f"{_glob_escape(head)}*{_glob_escape(tail)}"
            names.setdefault((who, where), []).append(f"-name {shlex.quote(pattern)}")
        return "; ".join(
            f"{who}find {where} -maxdepth 1 -type f {_any_of(globs)} "
            f"{age}-exec rm -f {{}} + 2>/dev/null || true"
            for (who, where), globs in names.items()
        )

    def every_current(self) -> str:
        """Shell globs of the release of every instance on the node."""
        current = self.word(self.current())
        return f"{current} {current}.*"


def _removed_by_glob(places: list[tuple[str, str, str, str]]) -> str:
    """`Layout.stale_temporaries` under the run's lock, whatever their age: the shell's
    own globs find them, so a node with none (nearly always) forks nothing, where one
    ``find`` per directory forked five times a node in every pre-flight. The ``*``
    between each name's head and tail is its only unquoted character."""
    lines = []
    for who, where, head, tail in places:
        glob = f"{shlex.quote(head) if head else ''}*{shlex.quote(tail)}"
        lines.append(f'for f in {where}/{glob}; do [ -f "$f" ] && {who}rm -f "$f"; done; true')
    return "; ".join(lines)


def _any_of(tests: list[str]) -> str:
    """``find`` tests joined by -o (in parentheses when more than one)."""
    return tests[0] if len(tests) == 1 else "\\( " + " -o ".join(tests) + " \\)"


def parent(target: str) -> str:
    """The directory of a file outside the releases directory (``/`` or ``.`` at the top)."""
    head, slash, _ = target.rpartition("/")
    return head or ("/" if slash else ".")


def hidden_beside(target: str, run: str = "") -> str:
    """Run ``run``'s hidden name in the target's directory: same filesystem, so the
    rename is atomic."""
    name = target.rpartition("/")[2]
    return f"{parent(target).rstrip('/')}/.{name}{_run(run)}{_STAGED}"


def prepared(target: str, run: str, sha: str) -> str:
    """Run ``run``'s checked copy of blob ``sha`` for ``target``, made before the node's
    turn (`fabfile.cluster.placement.preparing`): hidden beside it, so the pre-flight's
    tidying (`Layout.stale_temporaries`) removes one a stopped run left. The name holds
    the blob's checksum: a copy is only ever taken for the very file it was made from."""
    return hidden_beside(target, f"{run}-{sha[:16]}")


def beside(target: str, run: str = "") -> str:
    """A name beside ``target`` (not hidden), for run ``run``."""
    return target + _run(run) + _STAGED


def is_temporary(name: str) -> bool:
    """Whether a file name under ``blobs/`` is an upload still arriving, not a blob."""
    return name.endswith(_PART)


def _run(run: str) -> str:
    """The run's part of a temporary name ('' for none: the names before runs had one)."""
    if run and not run.replace("-", "").isalnum():
        raise ValueError(f"a run id is letters, digits and '-', not {run!r}")
    return f".{run}" if run else ""


def _glob_escape(name: str) -> str:
    """``name`` matched literally by find's ``-name`` (its glob characters escaped)."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in name)
