"""Maven 3.9 version ordering (``ComparableVersion``), ported to Python.

Why: the deploy tool must pick "the newest" artifact exactly as Maven would, so
this is a faithful port of ``org.apache.maven.artifact.versioning.ComparableVersion``
from maven-artifact 3.9.6 (checked against the real jar), not a "nicer" semver.

How Maven reads a version: the lower-cased text is cut at ``.``, ``-`` and at
digit/letter transitions.  Numbers compare by value (Maven's int/long/BigInteger
items all do, so one kind suffices).  Known qualifiers order alpha (a) < beta (b)
< milestone (m) < rc (cr) < snapshot < "" (ga, final, release) < sp; unknown ones
come after, lexically.  ``-`` (and some transitions) open a nested sub-list, and
trailing nulls (0, "", empty list) are dropped.  A list holds at most one sub-list,
always last, so a version is a flat chain of segments and all work is iterative.

Inherited from Maven: the order is *not* transitive for some odd strings, e.g.
``1 < 1.sp.1 < 1-alpha < 1``; being exact is the point, so we agree.  ``==`` and
``hash`` use the normalised items (as Maven 3.9's ``equals`` does), so ``a == b``
exactly when ``compareTo`` is 0; the canonical text is not unique (``ga.1`` and
``1`` both render as ``"1"``, yet ``ga.1 < 1``).  Known gap: Java lower-cases "Σ"
to σ/ς by word-break rules, Python by Final_Sigma, so such qualifiers may differ.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field
from functools import total_ordering

__all__ = ["MavenVersion", "parse_version"]

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_RELEASE = (_QUALIFIERS.index(""), b"")
_UNKNOWN_RANK = len(_QUALIFIERS)
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
# Only applied when the letter is directly followed by a digit: "a1" == "alpha-1".
_SHORTHANDS = {"a": "alpha", "b": "beta", "m": "milestone"}


def _sign(left: tuple[int, str | bytes], right: tuple[int, str | bytes]) -> int:
    """Three-way compare of two sort keys, as -1/0/1."""
    return int(left > right) - int(left < right)


@dataclass(frozen=True, slots=True)
class _Number:
    """A numeric item; ``digits`` is ASCII without leading zeros ("0" for zero)."""

    digits: str

    def is_null(self) -> bool:
        return self.digits == "0"

    def __str__(self) -> str:
        return self.digits


@dataclass(frozen=True, slots=True)
class _Qualifier:
    """A string item, already lower-cased and de-aliased ("" means release)."""

    value: str

    def is_null(self) -> bool:
        return self.value == ""

    def rank(self) -> tuple[int, bytes]:
        """Maven's ``comparableQualifier``; unknown ones compare by UTF-16 units."""
        if self.value in _QUALIFIERS:
            return _QUALIFIERS.index(self.value), b""
        return _UNKNOWN_RANK, self.value.encode("utf-16-be", "surrogatepass")

    def __str__(self) -> str:
        return self.value


_Atom = _Number | _Qualifier
_Chain = tuple[tuple[_Atom, ...], ...]


class _Slot(enum.Enum):
    """Marks the position of a segment that holds its nested sub-list."""

    SUBLIST = "sublist"


_Element = _Atom | _Slot | None
_ZERO = _Number("0")


def _is_java_digit(char: str) -> bool:
    """Java's ``Character.isDigit(char)``: a BMP code unit of category Nd."""
    return char <= "\uffff" and unicodedata.category(char) == "Nd"


def _number(text: str) -> _Number:
    """Parse a run of (possibly non-ASCII) decimal digits without int() limits."""
    if not text.isascii():
        text = "".join(str(unicodedata.decimal(char)) for char in text)
    return _Number(text.lstrip("0") or "0")


def _qualifier(text: str, followed_by_digit: bool) -> _Qualifier:
    """Maven's ``StringItem`` constructor: shorthand expansion, then aliases."""
    if followed_by_digit:
        text = _SHORTHANDS.get(text, text)
    return _Qualifier(_ALIASES.get(text, text))


def _item(is_digit: bool, text: str) -> _Atom:
    """Maven's ``parseItem``: a finished run of digits or of other characters."""
    return _number(text) if is_digit else _qualifier(text, followed_by_digit=False)


def _tokenize(version: str) -> list[list[_Atom]]:
    """Maven's ``parseVersion`` loop; each new list becomes a new segment."""
    segments: list[list[_Atom]] = [[]]
    is_digit, start = False, 0
    for i, char in enumerate(version):
        if char in ".-":
            segments[-1].append(_item(is_digit, version[start:i]) if i > start else _ZERO)
            start = i + 1
            if char == "-":
                segments.append([])
        elif _is_java_digit(char):
            if not is_digit and i > start:
                if segments[-1]:
                    segments.append([])
                segments[-1].append(_qualifier(version[start:i], followed_by_digit=True))
                segments.append([])
                start = i
            is_digit = True
        else:
            if is_digit and i > start:
                segments[-1].append(_number(version[start:i]))
                segments.append([])
                start = i
            is_digit = False
    if len(version) > start:
        if not is_digit and segments[-1]:
            segments.append([])
        segments[-1].append(_item(is_digit, version[start:]))
    return segments


def _normalize(segments: list[list[_Atom]]) -> _Chain:
    """Maven's ``normalize``: drop trailing null items, then empty sub-lists."""
    for segment in segments:
        while segment and segment[-1].is_null():
            segment.pop()
    while len(segments) > 1 and not segments[-1]:
        segments.pop()
    return tuple(tuple(segment) for segment in segments)


def _parse(text: str) -> _Chain:
    # Round-trip through UTF-16 so surrogate pairs become one code point, as
    # Java (which only ever sees UTF-16) would treat them.
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _normalize(_tokenize(text.lower()))


def _render(chain: _Chain) -> str:
    """Maven's ``ListItem.toString``: '.' between items, '-' before a sub-list."""
    parts: list[str] = []
    for depth, segment in enumerate(chain):
        filled = False  # Java checks "buffer.length() > 0", per (sub-)list
        for atom in segment:
            if filled:
                parts.append(".")
            parts.append(str(atom))
            filled = filled or bool(str(atom))
        if filled and depth + 1 < len(chain):
            parts.append("-")
    return "".join(parts)


def _atom_vs_null(atom: _Atom) -> int:
    """Compare an item with "nothing": 1.0 == 1, 1-rc < 1, 1-sp > 1."""
    if isinstance(atom, _Number):
        return 0 if atom.is_null() else 1
    return _sign(atom.rank(), _RELEASE)


def _compare_atoms(left: _Atom, right: _Atom) -> int:
    """Two items: numbers by value, qualifiers by rank, and any number wins."""
    if isinstance(left, _Number) and isinstance(right, _Number):
        return _sign((len(left.digits), left.digits), (len(right.digits), right.digits))
    if isinstance(left, _Qualifier) and isinstance(right, _Qualifier):
        return _sign(left.rank(), right.rank())
    return 1 if isinstance(left, _Number) else -1  # 1.1 > 1-sp


def _chain_vs_null(chain: _Chain, depth: int) -> int:
    """A (sub-)list against nothing: decided by its first non-null item."""
    for segment in chain[depth:]:
        for atom in segment:
            result = _atom_vs_null(atom)
            if result:
                return result
    return 0


def _vs_null(element: _Atom | _Slot, chain: _Chain, depth: int) -> int:
    """An element against the end of the other (shorter) list."""
    if element is _Slot.SUBLIST:
        return _chain_vs_null(chain, depth + 1)
    return _atom_vs_null(element)


def _element(chain: _Chain, depth: int, index: int) -> _Element:
    """What Maven's list iterator yields at ``index`` of the list at ``depth``."""
    segment = chain[depth]
    if index < len(segment):
        return segment[index]
    has_sublist = depth + 1 < len(chain)
    return _Slot.SUBLIST if has_sublist and index == len(segment) else None


def _compare_elements(
    left: _Element, right: _Element, chains: tuple[_Chain, _Chain], depth: int
) -> int:
    """One position of ``ListItem.compareTo``; never both sub-lists or both None."""
    if left is None:
        return -_vs_null(right, chains[1], depth) if right is not None else 0
    if right is None:
        return _vs_null(left, chains[0], depth)
    if left is _Slot.SUBLIST:
        return -1 if isinstance(right, _Number) else 1  # 1-1 < 1.0.x, 1-1 > 1-sp
    if right is _Slot.SUBLIST:
        return 1 if isinstance(left, _Number) else -1
    return _compare_atoms(left, right)


def _compare(left: _Chain, right: _Chain) -> int:
    """Maven's ``compareTo`` as -1/0/1, walking down the sub-list chain."""
    depth = 0
    while True:
        width = max(len(left[depth]) + 1, len(right[depth]) + 1)
        for index in range(width):
            one, other = _element(left, depth, index), _element(right, depth, index)
            if one is _Slot.SUBLIST and other is _Slot.SUBLIST:
                break  # both sub-lists are last: compare them in the next round
            result = _compare_elements(one, other, (left, right), depth)
            if result:
                return result
        else:
            return 0
        depth += 1


@total_ordering
@dataclass(frozen=True, eq=False)
class MavenVersion:
    """An immutable Maven version string, ordered exactly like Maven 3.9.

    ``str()`` gives the original text back; ``canonical`` is Maven's
    ``getCanonical()``.  Any string is accepted (Maven rejects none, and ""
    equals "0"); a non-string raises ``ValueError``.
    """

    text: str
    _chain: _Chain = field(init=False, repr=False)
    _canonical: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ValueError(f"a Maven version must be a str, not {type(self.text).__name__}")
        chain = _parse(self.text)
        object.__setattr__(self, "_chain", chain)
        object.__setattr__(self, "_canonical", _render(chain))

    @property
    def canonical(self) -> str:
        """Maven's canonical form, e.g. "1.0.0-GA" -> "1"; not unique, see module doc."""
        return self._canonical

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MavenVersion):
            return NotImplemented
        return self._chain == other._chain

    def __hash__(self) -> int:
        return hash(self._chain)

    def __lt__(self, other: object) -> bool:
        # functools.total_ordering derives <=, >, >= from this and __eq__,
        # which is sound because == holds exactly when Maven's compareTo is 0.
        if not isinstance(other, MavenVersion):
            return NotImplemented
        return _compare(self._chain, other._chain) < 0


def parse_version(text: str) -> MavenVersion:
    """Parse ``text`` as a Maven version; see :class:`MavenVersion`."""
    return MavenVersion(text)
