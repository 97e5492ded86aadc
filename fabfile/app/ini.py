"""The ini file itself: reading and parsing ``.config``, its sections and keys, and
where each one is written (`Source`), so every mistake names file, line and key.

configparser does not keep line numbers; `Source` reads them from the text.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
from pathlib import Path

from ..errors import ConfigError
from .keys import CLUSTER_KEYS, INSTANCE_KEYS, KEYS_BY_NAME

DEPLOY = "deploy"
HOST_PREFIX = "host:"
INSTANCE_PREFIX = "instance:"
HOOKS = "hooks"  # commands run on this machine (`fabfile.app.hooks` reads its keys)
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]*)\]")
_OPTION = re.compile(r"^(?P<key>[^\s=:#;][^=:]*?)\s*[=:]")


@dataclasses.dataclass(frozen=True)
class Source:
    """Where ``.config`` says what: the line of each section and key, which configparser
    does not keep, and each key's text as written, which a parsed value no longer shows."""

    sections: dict[str, int] = dataclasses.field(default_factory=dict)  # first line of each
    keys: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    texts: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    names: tuple[str, ...] = ()  # the sections, as configparser names them

    @classmethod
    def read(cls, text: str, parser: configparser.ConfigParser) -> Source:
        sections: dict[str, int] = {}
        keys: dict[tuple[str, str], int] = {}
        section = ""
        for number, line in enumerate(text.split("\n"), start=1):
            if match := _SECTION.match(line):
                section = match["name"].strip()
                sections.setdefault(section, number)
            elif match := _OPTION.match(line):
                keys.setdefault((section, match["key"].strip().lower()), number)
        names = tuple(parser.sections())
        texts = {(name, key): parser.get(name, key) for name in names for key in parser[name]}
        return cls(sections, keys, texts, names)

    def line(self, section: str, key: str | None = None) -> int:
        """The key's line, else its section's, else 1."""
        if key is None:
            return self.sections.get(section, 1)
        return self.keys.get((section, key), self.sections.get(section, 1))

    def text(self, section: str, key: str) -> str | None:
        """What ``key`` is set to in ``section`` itself, as written; None when it is not."""
        return self.texts.get((section, key))

    def has(self, section: str) -> bool:
        return section in self.names

    def section(self, prefix: str, name: str) -> str:
        """The ``[host:NAME]`` or ``[instance:NAME]`` section of ``name``, however it is
        spaced; ``prefix + name`` when the file has none."""
        for section in self.names:
            if section.startswith(prefix) and section[len(prefix) :].strip() == name:
                return section
        return f"{prefix}{name}"


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; the app directory needs a .config (see README, '.config')"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read it ({error}); fix its permissions") from None


def parse(path: Path, text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, default_section="\0")
    try:
        parser.read_string(text, source=str(path))
    except configparser.DuplicateOptionError as error:
        raise ConfigError(
            f"{path}:{error.lineno}: key '{error.option}' appears twice in [{error.section}]; "
            "keep one"
        ) from None
    except configparser.DuplicateSectionError as error:
        raise ConfigError(
            f"{path}:{error.lineno}: section [{error.section}] appears twice; merge them"
        ) from None
    except configparser.MissingSectionHeaderError as error:
        raise ConfigError(
            f"{path}:{error.lineno}: a key before any section; start with [deploy]"
        ) from None
    except configparser.ParsingError as error:
        lineno = error.errors[0][0] if error.errors else 1
        raise ConfigError(f"{path}:{lineno}: not 'key = value' or '[section]'") from None
    except configparser.Error as error:
        raise ConfigError(f"{path}: {error.message}") from None
    return parser


def check_sections(path: Path, parser: configparser.ConfigParser, source: Source) -> None:
    for section in parser.sections():
        if section == HOOKS:
            continue
        if section != DEPLOY and not section.startswith((HOST_PREFIX, INSTANCE_PREFIX)):
            raise ConfigError(
                f"{path}:{source.line(section)}: unknown section [{section}]; "
                "sections are [deploy], [host:NAME], [instance:NAME] and [hooks]"
            )
        for key in parser.options(section):
            _check_key(path, source, section, key)


def _check_key(path: Path, source: Source, section: str, key: str) -> None:
    where = f"{path}:{source.line(section, key)}: [{section}] {key}"
    if key not in KEYS_BY_NAME:
        import difflib  # for a mistake only: a good .config does not pay its import

        close = difflib.get_close_matches(key, KEYS_BY_NAME, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "see the README's list of keys"
        raise ConfigError(f"{where}: unknown key; {hint}")
    if key in CLUSTER_KEYS and section != DEPLOY:
        raise ConfigError(f"{where}: {key} belongs in [deploy] only")
    if section.startswith(INSTANCE_PREFIX) and key not in INSTANCE_KEYS:
        raise ConfigError(
            f"{where}: not an instance setting; an instance sets {', '.join(INSTANCE_KEYS)}"
        )


def check_named_sections(
    path: Path, parser: configparser.ConfigParser, source: Source, prefix: str, names: list[str]
) -> None:
    """Every ``[host:NAME]`` names a host, every ``[instance:NAME]`` an instance."""
    kind = prefix.rstrip(":")  # "host" or "instance"
    for section in parser.sections():
        if section.startswith(prefix) and section[len(prefix) :].strip() not in names:
            raise ConfigError(
                f"{path}:{source.line(section)}: [{section}] names "
                f"{'an' if kind[0] == 'i' else 'a'} {kind} that is not in [deploy] {kind}s "
                f"({', '.join(names) or 'none'}); add it there or remove the section"
            )
