"""Per-node files merged, the archive, the release per host and logback's settings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fabfile.app.overrides import File, Overrides
from fabfile.cli.program import route
from fabfile.cluster import logback
from fabfile.errors import ConfigError
from fabfile.records.archive import Archive
from tests.unit.helpers import release

BASE = """# the cluster's settings
greeting = Hello \\
  world
search.backend=http\\://127.0.0.1:9200
caf\\u00e9=cr\\u00e8me

pool.size=8
"""
JETTYRC = """# JVM options
export JAVA_OPTIONS="-Xmx192m"
JETTY_ARGS=jetty.port=8080
"""
LOGBACK = '<configuration scan="true" scanPeriod="1 seconds"><root level="INFO"/></configuration>'


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "config.properties").write_bytes(BASE.encode("latin-1"))
    (tmp_path / ".jettyrc").write_text(JETTYRC)
    return tmp_path


def read(app: Path, hosts: tuple[str, ...] = ("web1", "web2")) -> Overrides:
    return Overrides(app, hosts, app / ".config")


def test_a_host_without_overrides_gets_the_cluster_files_byte_for_byte(app: Path) -> None:
    files = read(app).files("web1")
    assert files.config.data == BASE.encode("latin-1")
    assert files.jettyrc.data == JETTYRC.encode()
    assert files.logback is None


def test_a_properties_override_replaces_its_line_and_keeps_the_rest(app: Path) -> None:
    (app / "config.web2.properties").write_text("# bigger\npool.size: 32\n")
    merged = read(app).files("web2").config.data.decode("latin-1")
    assert merged == BASE.replace("pool.size=8", "pool.size: 32")
    assert read(app).files("web1").config.data == BASE.encode("latin-1")


def test_a_jettyrc_override_replaces_the_assignment_and_keeps_export(app: Path) -> None:
    (app / ".jettyrc.web1").write_text('JAVA_OPTIONS="-Xmx512m"\n')
    merged = read(app).files("web1").jettyrc.data.decode()
    assert merged == JETTYRC.replace(
        'export JAVA_OPTIONS="-Xmx192m"', 'export JAVA_OPTIONS="-Xmx512m"'
    )


def test_a_multi_line_assignment_in_the_cluster_file_is_not_half_replaced(app: Path) -> None:
    (app / ".jettyrc").write_text('JAVA_OPTIONS="-Xmx1g \\\n  -Dx=1"\n')
    (app / ".jettyrc.web1").write_text('JAVA_OPTIONS="-Xmx2g"\n')
    with pytest.raises(ConfigError, match=r"\.jettyrc:1: JAVA_OPTIONS spans several lines"):
        read(app).files("web1")


def test_latin1_bytes_that_python_calls_line_breaks_stay_in_their_line(app: Path) -> None:
    (app / ".jettyrc").write_bytes(b'JAVA_OPTIONS="-Dn=\xc3\x85se"\nX=1\n')
    (app / ".jettyrc.web1").write_bytes(b'X="\xc3\x85x"\n')
    merged = read(app).files("web1").jettyrc.data
    assert merged == b'JAVA_OPTIONS="-Dn=\xc3\x85se"\nX="\xc3\x85x"\n'


def test_a_logback_file_per_host_replaces_the_cluster_one(app: Path) -> None:
    (app / "logback.xml").write_text(LOGBACK)
    (app / "logback.web2.xml").write_text(LOGBACK.replace("INFO", "DEBUG"))
    files = read(app)
    assert files.files("web1").logback == File("logback.xml", LOGBACK.encode())
    own = files.files("web2").logback
    assert own is not None and b"DEBUG" in own.data and own.name == "logback.xml"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("config.web9.properties", "pool.size=1\n", "config.web9.properties:1: 'web9' is not in"),
        (
            "config.web1.properties",
            "# ok\n\npool.sise=1\n",
            "config.web1.properties:3: key 'pool.sise'",
        ),
        (".jettyrc.web1", "# c\nJAVA_OPTS=-Xmx1g\n", ".jettyrc.web1:2: JAVA_OPTS is not set in"),
        (".jettyrc.web1", "echo hi\n", ".jettyrc.web1:1: not a one-line 'NAME=value'"),
        (".jettyrc.web1", 'JAVA_OPTIONS="-Xmx1g \\\n', ".jettyrc.web1:1: not a one-line"),
        (
            "logback.xml",
            "<configuration>\n<root>\n</configuration>",
            "logback.xml:3: not well-formed",
        ),
        ("logback.xml", "<logging/>", "logback.xml:1: the root element is <logging>"),
        ("logback.web1.xml", LOGBACK, "logback.web1.xml:1: an override without"),
    ],
)
def test_a_mistake_names_the_file_and_line(app: Path, name: str, text: str, message: str) -> None:
    (app / name).write_text(text)
    with pytest.raises(ConfigError) as refused:
        read(app)
    assert message in str(refused.value)


def test_an_unreadable_file_says_so(app: Path) -> None:
    (app / ".jettyrc").unlink()
    (app / ".jettyrc").mkdir()
    with pytest.raises(ConfigError, match=r"\.jettyrc: cannot read it"):
        read(app)


def test_a_release_gives_each_host_its_own_files_and_new_logging(tmp_path: Path) -> None:
    base = release(1)
    own = "\n".join(["web2 " + " ".join(["c" * 64, "j" * 64, "-"])])
    cluster = base.__class__(**{**base.__dict__, "hosts": own})
    assert cluster.for_host("web1") == base
    assert (cluster.for_host("web2").config, cluster.for_host("web2").jettyrc) == (
        "c" * 64,
        "j" * 64,
    )
    assert cluster != base and {"c" * 64, "j" * 64} <= cluster.blobs
    logged = cluster.with_logback("l" * 64, {"web1": "l" * 64, "web2": "m" * 64})
    assert logged.for_host("web1").logback == "l" * 64
    assert (logged.for_host("web2").config, logged.for_host("web2").logback) == ("c" * 64, "m" * 64)


def test_host_lines_are_in_one_order_whichever_way_the_release_was_made() -> None:
    base = release(1)
    two = "\n".join(f"{h} {'c' * 64} {'j' * 64} -" for h in ("web2", "web1"))
    cluster = base.__class__(**{**base.__dict__, "hosts": two})
    logged = cluster.with_logback("l" * 64, {"web1": "l" * 64, "web2": "l" * 64})
    assert logged.hosts.splitlines()[0].startswith("web1 ")


def test_the_archive_logs_a_file_only_when_it_changed(tmp_path: Path) -> None:
    archive, path = Archive(tmp_path), tmp_path / "config.properties"
    path.write_text("a=1\n")
    assert [v.file for v in archive.snapshot([path], "status")] == ["config.properties"]
    assert archive.snapshot([path], "status") == []
    path.write_text("a=2\nb=3\n")
    changed = archive.snapshot([path], "deploy")
    assert changed[0].sha256 == hashlib.sha256(b"a=2\nb=3\n").hexdigest()
    first = archive.versions()[0].sha256
    assert archive.change(first, changed[0].sha256) == "+2 -1"
    assert archive.find(first) is not None and archive.find(first).read_text() == "a=1\n"  # type: ignore[union-attr]
    path.unlink()
    assert [v.sha256 for v in archive.snapshot([path], "status")] == [""]


@pytest.mark.parametrize(
    ("attributes", "seconds"),
    [
        ('scanPeriod="1 seconds"', 1.0),
        ('scanPeriod="2 minutes"', 120.0),
        ("", 60.0),
        ('scanPeriod="500"', 0.5),
    ],
)
def test_logback_settings_read_the_scan_period(attributes: str, seconds: float) -> None:
    text = f'<configuration scan="true" {attributes}><root level="warn"/></configuration>'
    setting = logback.read_setting(File("logback.xml", text.encode()), "x/logback.xml")
    assert (setting.scan_seconds, setting.root_level) == (seconds, "WARN")


def test_a_logback_file_that_does_not_scan_is_refused() -> None:
    with pytest.raises(ConfigError, match=r'x/logback.xml:1: <configuration> has no scan="true"'):
        logback.read_setting(File("logback.xml", b"<configuration/>"), "x/logback.xml")


@pytest.mark.parametrize(
    ("argv", "routed"),
    [
        (["deploy", "config", "diff", "-H", "web1"], ["deploy", "config-diff", "-H", "web1"]),
        (["deploy", "config", "history"], ["deploy", "config-history"]),
        (
            ["deploy", "x.war", "--dry-run"],
            ["deploy", "deploy", "--artifact", "x.war", "--dry-run"],
        ),
        (["deploy", "--dry-run"], ["deploy", "deploy", "--dry-run"]),
    ],
)
def test_config_words_and_dry_run_route_to_their_tasks(argv: list[str], routed: list[str]) -> None:
    assert route(argv) == routed
