"""A release: the WAR and the config files that go with it, by checksum.

Two releases are the same when their checksums are; the version and names
travel along for messages and for verifying ``/status``. A release of the
cluster also names the hosts whose files differ (`fabfile.app.overrides`);
`Release.for_host` is what one host installs and records as its own.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class Release:
    """What is installed on a node as one unit."""

    war: str
    config: str
    jettyrc: str
    version: str = dataclasses.field(compare=False)
    coordinates: str = dataclasses.field(compare=False)  # groupId:artifactId
    war_name: str = dataclasses.field(compare=False)
    # parallel: the app directory's extensions/, one "SHA256  PATH" line per file
    extensions: str = ""
    # parallel: the WAR's own META-INF/context.xml (a context file given at deploy
    # replaces it), kept so a rollback without the WAR at hand still has it
    context: str = dataclasses.field(default="", compare=False)
    logback: str = ""  # logback.xml's checksum; '' when the app directory has none
    # hosts whose files differ from the cluster's: "HOST CONFIG JETTYRC LOGBACK" lines
    hosts: str = ""

    @property
    def blobs(self) -> frozenset[str]:
        # here, not at the top: a release read from the history (the status table reads
        # the last one) needs no WAR reading, which extensions brings (zip, Maven, XML)
        from . import extensions

        shas = [sha for sha, _ in extensions.entries(self.extensions)]
        for files in self._own_files().values():
            shas += files
        return frozenset(s for s in (self.war, self.config, self.jettyrc, self.logback, *shas) if s)

    def for_host(self, host: str) -> Release:
        """What ``host`` installs: its own config files' checksums, no other host's."""
        config, jettyrc, logback = self._own_files().get(
            host, (self.config, self.jettyrc, self.logback)
        )
        return dataclasses.replace(self, config=config, jettyrc=jettyrc, logback=logback, hosts="")

    def with_logback(self, logback: str, own: dict[str, str]) -> Release:
        """This release with a new logback.xml: ``logback`` for the cluster, ``own`` for
        the hosts whose file is theirs (or that kept their old one)."""
        lines = []
        for host in dict.fromkeys([*self._own_files(), *own]):
            mine, theirs = self.for_host(host), own.get(host, logback)
            if (mine.config, mine.jettyrc, theirs) != (self.config, self.jettyrc, logback):
                lines.append(f"{host} {mine.config} {mine.jettyrc} {theirs or '-'}")
        return dataclasses.replace(self, logback=logback, hosts="\n".join(sorted(lines)))

    def _own_files(self) -> dict[str, tuple[str, str, str]]:
        found = {}
        for line in self.hosts.splitlines():
            host, config, jettyrc, logback = line.split()
            found[host] = (config, jettyrc, "" if logback == "-" else logback)
        return found

    @property
    def label(self) -> str:
        return f"{self.war_name} ({self.version})"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def node_record(self) -> str:
        """The record a node keeps (``current``, ``releases.log``): checksums and names,
        not the context file's text, which may hold passwords (JDBC resources); the
        coordinator's history keeps that, for a rollback."""
        return json.dumps(dataclasses.asdict(dataclasses.replace(self, context="")), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Release:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in fields})

    @classmethod
    def from_json(cls, text: str) -> Release | None:
        """Parse a record; a damaged one reads as no release rather than a crash."""
        try:
            data = json.loads(text)
            return cls.from_dict(data) if isinstance(data, dict) else None
        except (ValueError, TypeError):
            return None
