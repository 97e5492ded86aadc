"""Tests for fabfile.app.maven: Maven 3.9 ``ComparableVersion`` ordering.

Most cases are ported from Maven's own ``ComparableVersionTest`` (3.9.x); the
rest were checked against maven-artifact-3.9.6.jar.  Every ``check_*`` helper
also asserts, like Maven's ``newComparable``, that the canonical form of each
version re-parses to itself.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabfile.app.maven import MavenVersion, parse_version

# --- Maven's ComparableVersionTest (3.9.x) -----------------------------------

VERSIONS_QUALIFIER = [
    "1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2",
    "1-m11", "1-rc", "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2",
    "1-sp123", "1-abc", "1-def", "1-pom-1", "1-1-snapshot", "1-1", "1-2", "1-123",
]  # fmt: skip

# 3.9 order: "2.0.a" now sorts before "2-1", and "2.0.0.a" == "2.0.a" (MNG-7644).
VERSIONS_NUMBER = [
    "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c",
    "2.1-1", "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11",
    "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
]  # fmt: skip

EQUAL_PAIRS = [
    # testVersionsEqual (3.9.x)
    ("1", "1"), ("1", "1.0"), ("1", "1.0.0"), ("1.0", "1.0.0"), ("1", "1-0"),
    ("1", "1.0-0"), ("1.0", "1.0-0"),
    ("1a", "1-a"), ("1a", "1.0-a"), ("1a", "1.0.0-a"), ("1.0a", "1-a"),
    ("1.0.0a", "1-a"), ("1x", "1-x"), ("1x", "1.0-x"), ("1x", "1.0.0-x"),
    ("1.0x", "1-x"), ("1.0.0x", "1-x"),
    ("1ga", "1"), ("1release", "1"), ("1final", "1"), ("1cr", "1rc"),
    ("1a1", "1-alpha-1"), ("1b2", "1-beta-2"), ("1m3", "1-milestone-3"),
    ("1X", "1x"), ("1A", "1a"), ("1B", "1b"), ("1M", "1m"), ("1Ga", "1"),
    ("1GA", "1"), ("1RELEASE", "1"), ("1RELeaSE", "1"), ("1Final", "1"),
    ("1FinaL", "1"), ("1FINAL", "1"), ("1Cr", "1Rc"), ("1cR", "1rC"),
    ("1m3", "1Milestone3"), ("1m3", "1MileStone3"), ("1m3", "1MILESTONE3"),
    # testVersionsEqual (older Maven), still true in 3.9
    ("1a", "1.a"), ("1.0a", "1.0.a"), ("1.0.0a", "1.0.0.a"), ("1x", "1.x"),
    ("1.0x", "1.0.x"), ("1.0.0x", "1.0.0.x"), ("1a1", "1alpha1"),
    ("1b2", "1beta2"), ("1m3", "1milestone3"),
    # testLocaleIndependent
    ("1-abcdefghijklmnopqrstuvwxyz", "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    # Checked against maven-artifact-3.9.6: an empty part is the number 0
    (".1", "0.1"), ("rc..1", "rc.0.1"), ("1-.1", "1-0.1"), ("1.-1", "1.0-1"),
]  # fmt: skip

# testMng7644: 2.0.X == 2-X == 2.0.0.X for any string X
for _x in ["abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC"]:
    EQUAL_PAIRS += [(f"2-{_x}", f"2.0.{_x}"), (f"2-{_x}", f"2.0.0.{_x}")]
    EQUAL_PAIRS += [(f"2.0.{_x}", f"2.0.0.{_x}")]

# testVersionEqualWithLeadingZeroes / testVersionZeroEqualWithLeadingZeroes
for _digit in "10":
    _padded = ["0" * n + _digit for n in range(19)]
    EQUAL_PAIRS += list(itertools.combinations(_padded, 2))

ORDERED_PAIRS = [
    # testVersionComparing
    ("1", "2"), ("1.5", "2"), ("1", "2.5"), ("1.0", "1.1"), ("1.1", "1.2"),
    ("1.0.0", "1.1"), ("1.0.1", "1.1"), ("1.1", "1.2.0"),
    ("1.0-alpha-1", "1.0"), ("1.0-alpha-1", "1.0-alpha-2"),
    ("1.0-alpha-1", "1.0-beta-1"), ("1.0-beta-1", "1.0-SNAPSHOT"),
    ("1.0-SNAPSHOT", "1.0"), ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
    ("1.0", "1.0-1"), ("1.0-1", "1.0-2"), ("1.0.0", "1.0-1"), ("2.0-1", "2.0.1"),
    ("2.0.1-klm", "2.0.1-lmn"), ("2.0.1", "2.0.1-xyz"), ("2.0.1", "2.0.1-123"),
    ("2.0.1-xyz", "2.0.1-123"),
    # testLeadingZeroes
    ("0.7", "2"), ("0.2", "1.0.7"),
    # testMng5568: used to be intransitive
    ("6.1.0rc3", "6.1.0"), ("6.1.0rc3", "6.1H.5-beta"), ("6.1.0", "6.1H.5-beta"),
    # testMng6572: int, long and BigInteger items compare by value
    ("20190126.230843", "1234567890.12345"),
    ("1234567890.12345", "123456789012345.1H.5-beta"),
    ("20190126.230843", "123456789012345.1H.5-beta"),
    ("123456789012345.1H.5-beta", "12345678901234567890.1H.5-beta"),
    ("1234567890.12345", "12345678901234567890.1H.5-beta"),
    ("20190126.230843", "12345678901234567890.1H.5-beta"),
    # testMng6964: "-0." qualifiers are no longer equal to the release
    ("1-0.alpha", "1"), ("1-0.beta", "1"), ("1-0.alpha", "1-0.beta"),
    # The spec's examples
    ("1.0.9", "1.0.10"), ("1.0-alpha", "1.0-beta"), ("1.0-beta", "1.0-rc"),
    ("1.0-rc", "1.0-SNAPSHOT"), ("1.0-SNAPSHOT", "1.0"), ("1.0", "1.0-sp"),
    # Maven 4 fixed MNG-7714 (final < sp); 3.9.6 still orders them this way
    ("1.0-sp1-redhat", "1.0.final-redhat"),
    # Checked against maven-artifact-3.9.6: number kinds, Unicode, UTF-16 order
    ("999999999", "1000000000"), ("999999999999999999", "1000000000000000000"),
    ("9" * 4999, "1" + "0" * 5000), ("1-😀", "1-\ue000"), ("ga.1", "1"),
    ("-1", "1"), ("1", "1-1"), ("1-foo", "1-foo.bar"), ("1-alpha", "1-0.alpha"),
    # 3.9 compares a sub-list with "nothing" by its first non-null item
    ("1", "1-0.1"), ("1", "1-ga.1"),
]  # fmt: skip

# testMng7644: 1.0.0.X1 < 1.0.0-X2 for any string X
for _x in ["abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC"]:
    ORDERED_PAIRS.append((f"1.0.0.{_x}1", f"1.0.0-{_x}2"))

CANONICAL = [
    # testGetCanonical (MNG-7700)
    ("0.x", "x"), ("0.2", "0.2"), ("0-x", "x"), ("0.rc", "rc"), ("0-1", "1"),
    # Checked against maven-artifact-3.9.6
    ("1.0.0", "1"), ("1-GA", "1"), ("1.0.0.Final", "1"), ("1.0-SNAPSHOT", "1-snapshot"),
    ("1a1", "1-alpha-1"), ("1-cr2", "1-rc-2"), ("1.0.0.x", "1-x"), ("007", "7"),
    ("2.0.1-xyz", "2.0.1-xyz"), ("1.0-alpha-1-SNAPSHOT", "1-alpha-1-snapshot"),
    ("6.1H.5-beta", "6.1-h.5-beta"), ("1-0.alpha", "1-alpha"), ("", ""),
    ("ga.1", "1"), ("-1", "1"), ("1.\u0663", "1.3"), ("1.\U0001d7ce", "1-\U0001d7ce"),
]  # fmt: skip


def parsed(text: str) -> MavenVersion:
    """Like Maven's ``newComparable``: parse and check the canonical re-parses."""
    version = parse_version(text)
    assert parse_version(version.canonical).canonical == version.canonical
    return version


def check_order(low_text: str, high_text: str) -> None:
    low, high = parsed(low_text), parsed(high_text)
    assert low < high and high > low, f"expected {low_text} < {high_text}"
    assert low <= high and high >= low and low != high
    assert not (high < low or low > high or high <= low)


def check_equal(one_text: str, other_text: str) -> None:
    one, other = parsed(one_text), parsed(other_text)
    assert one == other and other == one, f"expected {one_text} == {other_text}"
    assert hash(one) == hash(other)
    assert one <= other and one >= other and not (one < other or one > other)


def chain(versions: list[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(versions, 2))


@pytest.mark.parametrize(("low", "high"), chain(VERSIONS_QUALIFIER))
def test_versions_qualifier(low: str, high: str) -> None:
    check_order(low, high)


@pytest.mark.parametrize(("low", "high"), chain(VERSIONS_NUMBER))
def test_versions_number(low: str, high: str) -> None:
    check_order(low, high)


@pytest.mark.parametrize(("low", "high"), ORDERED_PAIRS)
def test_ordered(low: str, high: str) -> None:
    check_order(low, high)


@pytest.mark.parametrize(("one", "other"), EQUAL_PAIRS)
def test_equal(one: str, other: str) -> None:
    check_equal(one, other)


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_canonical(text: str, canonical: str) -> None:
    assert parse_version(text).canonical == canonical


# --- Behaviour of the Python API ---------------------------------------------


def test_str_is_original_text_and_canonical_is_separate() -> None:
    version = MavenVersion("1.0.0-GA")
    assert str(version) == "1.0.0-GA"
    assert version.canonical == "1"
    assert version == parse_version("1") == parse_version("1.0")


def test_equal_versions_collapse_in_sets_and_dicts() -> None:
    versions = {MavenVersion(text) for text in ["1", "1.0", "1-ga", "1.0.0.FINAL"]}
    assert len(versions) == 1
    assert {MavenVersion("1-0"): "x"}[MavenVersion("1.release")] == "x"


def test_same_canonical_does_not_mean_equal() -> None:
    """Maven renders "ga.1" as "1" but orders it below "1"; == follows the order."""
    assert MavenVersion("ga.1").canonical == MavenVersion("1").canonical
    assert MavenVersion("ga.1") != MavenVersion("1")


def test_empty_string_is_accepted_like_maven() -> None:
    assert MavenVersion("") == MavenVersion("0") == MavenVersion(".-.")
    assert MavenVersion("") < MavenVersion("0.0.1")


def test_is_frozen() -> None:
    version = MavenVersion("1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        version.text = "2"  # type: ignore[misc]


@pytest.mark.parametrize("bad", [None, 1, b"1.0", ["1"]])
def test_non_string_raises_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="must be a str"):
        MavenVersion(bad)  # type: ignore[arg-type]


def test_comparing_with_other_types() -> None:
    assert MavenVersion("1") != "1"
    with pytest.raises(TypeError):
        _ = MavenVersion("1") < "2"


def test_deep_nesting_and_huge_numbers_do_not_blow_up() -> None:
    deep = "1-" * 5000
    assert MavenVersion(deep + "2") > MavenVersion(deep + "1")
    assert MavenVersion(deep) == MavenVersion("1-1" + "-1" * 4998)
    assert MavenVersion("1" + "0" * 10_000).canonical == "1" + "0" * 10_000


@pytest.mark.parametrize(
    "cycle",
    [
        ["1", "1.sp.1", "1-alpha"],
        ["1.0.alpha.1", "1", "1.sp.1"],
        ["1-0-alpha", "1", "1-sp"],
    ],
)
def test_maven_order_is_not_transitive_for_odd_strings(cycle: list[str]) -> None:
    """Maven 3.9.6 gives a < b < c < a here; we must agree, not "fix" it."""
    a, b, c = (MavenVersion(text) for text in cycle)
    assert a < b and b < c and c < a


# --- Properties ----------------------------------------------------------------

TOKENS = ["0", "1", "2", "5", "9", "10", "007", "a", "b", "m", "rc", "sp", "ga"]
TOKENS += ["final", "snapshot", "SNAPSHOT", "Final", ".", "-"]
any_versions = st.lists(st.sampled_from(TOKENS), max_size=10).map("".join)

# Maven's order is only a total order on "conventional" versions: a numeric
# core, then "-" segments that each hold a non-null item, then an optional
# release marker.  Null segments (-0-, -ga-, a0) and dotted qualifiers (1.sp.1)
# in the middle can make it intransitive (see the test above).
_number = st.sampled_from(["0", "1", "2", "5", "9", "10", "007"])
_nonzero = st.sampled_from(["1", "2", "5", "10", "01"])
_qualifier = st.sampled_from(["a", "b", "m", "rc", "sp", "snapshot", "SNAPSHOT", "xyz"])
_segment = st.one_of(_qualifier, _nonzero, st.tuples(_qualifier, _nonzero).map("".join))
_segment_tail = st.one_of(st.just(""), _number.map(".{}".format))
_core = st.lists(_number, min_size=1, max_size=4).map(".".join)
_segments = st.lists(st.tuples(_segment, _segment_tail).map("-".join), max_size=3)
_release = st.sampled_from(["", "-ga", "-final", ".Final", "-0", ".0"])
conventional_versions = st.tuples(_core, _segments, _release).map(
    lambda parts: parts[0] + "".join("-" + seg for seg in parts[1]) + parts[2]
)


@given(any_versions, any_versions)
def test_exactly_one_relation_holds_and_it_is_antisymmetric(a: str, b: str) -> None:
    left, right = MavenVersion(a), MavenVersion(b)
    assert [left < right, left == right, left > right].count(True) == 1
    assert (left < right) == (right > left)
    assert (left <= right) == (left < right or left == right)


@given(any_versions, any_versions)
def test_equal_implies_same_hash(a: str, b: str) -> None:
    left, right = MavenVersion(a), MavenVersion(b)
    if left == right:
        assert hash(left) == hash(right)
    assert MavenVersion(a) == left and hash(MavenVersion(a)) == hash(left)


@given(any_versions, st.sampled_from(["", ".0", "-0", ".ga", "-final", ".0-0"]))
def test_null_suffix_and_case_do_not_matter(a: str, suffix: str) -> None:
    version = MavenVersion(a + "1")  # a suffix only vanishes after a number
    assert version == MavenVersion(f"{a}1{suffix}".upper())
    assert hash(version) == hash(MavenVersion(f"{a}1{suffix}".upper()))


@given(conventional_versions, conventional_versions, conventional_versions)
def test_transitive_on_conventional_versions(a: str, b: str, c: str) -> None:
    versions = [MavenVersion(a), MavenVersion(b), MavenVersion(c)]
    for x, y, z in itertools.permutations(versions):
        if x <= y and y <= z:
            assert x <= z, f"{x} <= {y} <= {z} but {x} > {z}"


@settings(max_examples=200)
@given(st.lists(conventional_versions, max_size=12))
def test_sorted_is_consistent_on_conventional_versions(texts: list[str]) -> None:
    ordered = sorted(MavenVersion(text) for text in texts)
    for earlier, later in itertools.combinations(ordered, 2):
        assert earlier <= later
