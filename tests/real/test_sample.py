"""The sample WAR, checked as an archive and then served by one real Jetty 9.

The deployment tool's sandbox relies on these WARs reporting their own
version, so we check that against a real servlet container on loopback
rather than trusting the archive layout alone.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.app import LOGBACK
from sandbox.sample import LIB_JARS, MODE_FILE, build_war, pom_properties_path

pytestmark = pytest.mark.real

JETTY_HOME = Path("/usr/share/jetty9")
VERSION = "1.2.3"
GROUP_ID = "com.example.search"
ARTIFACT_ID = "search-web-frontend"
PORT = 18080
PREFERRED_HOST = "127.0.0.250"
FALLBACK_HOSTS = [f"127.0.0.{n}" for n in range(240, 255)]
SLOW_START_MS = 1000
READY_TIMEOUT_S = 30.0

# Loopback only: never let an http_proxy setting route test traffic elsewhere.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Jetty:
    """A running Jetty: where to reach it and how long it took to open its port."""

    base_url: str
    startup_s: float
    log: Path
    pid: int


@dataclass(frozen=True)
class Reply:
    """What an HTTP GET came back with, errors included."""

    status: int
    content_type: str
    body: str


def _get(url: str, timeout: float = 5.0) -> Reply:
    """GET without raising on HTTP error statuses, since 500 is an expected answer."""
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            ctype = resp.headers.get("Content-Type", "")
            return Reply(resp.status, ctype, resp.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        ctype = err.headers.get("Content-Type", "")
        return Reply(err.code, ctype, err.read().decode("utf-8", "replace"))


def _read_properties(text: str) -> dict[str, str]:
    """Enough of java.util.Properties for the key=value files the builder writes."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def _free_host() -> str:
    """Prefer 127.0.0.250, else another loopback address whose port is free."""
    for host in [PREFERRED_HOST, *FALLBACK_HOSTS]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Jetty does
            try:
                sock.bind((host, PORT))
            except OSError:
                continue
            return host
    pytest.skip(f"port {PORT} is taken on every address in 127.0.0.240-254")


def _make_base(base: Path, host: str) -> None:
    """A minimal JETTY_BASE: HTTP on loopback, webapps deployed once at startup."""
    start_ini = (
        "--module=server,http,deploy,resources\n"
        f"jetty.http.host={host}\njetty.http.port={PORT}\n"
        "jetty.deploy.scanInterval=0\n"
    )
    (base / "start.ini").write_text(start_ini)
    (base / "resources").mkdir()
    (base / "resources" / "config.properties").write_text("greeting=hello\n")
    (base / "resources" / "logback.xml").write_text(LOGBACK)
    (base / "work").mkdir()  # keeps Jetty's unpacked WARs here rather than in /tmp
    webapps = base / "webapps"
    build_war(VERSION, webapps, file_name="root.war")
    build_war(VERSION, webapps, file_name="broken.war", mode="broken")
    build_war(VERSION, webapps, file_name="hang.war", mode="hang")
    build_war(VERSION, webapps, file_name="slow.war", startup_delay_ms=SLOW_START_MS)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Poll /status until Jetty answers 200; fail early if the JVM dies."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Jetty exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if _get(url, timeout=1.0).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"Jetty not ready after {READY_TIMEOUT_S} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop our own Jetty by PID: SIGTERM for a clean shutdown, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def jetty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jetty]:
    """One Jetty for the module: root.war at /, plus broken, hang and slow builds."""
    if not (JETTY_HOME / "start.jar").exists():
        pytest.skip(f"no Jetty 9 at {JETTY_HOME}")
    base = tmp_path_factory.mktemp("jetty-base")
    host = _free_host()
    _make_base(base, host)
    log = base / "jetty.log"
    cmd = ["java", "-jar", str(JETTY_HOME / "start.jar")]
    cmd += [f"jetty.home={JETTY_HOME}", f"jetty.base={base}"]
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=base,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://{host}:{PORT}"
        _wait_ready(proc, f"{base_url}/status", log)
        yield Jetty(base_url, time.monotonic() - started, log, proc.pid)
    finally:
        _stop(proc)


def test_war_layout(tmp_path: Path) -> None:
    """The archive is a valid zip carrying Maven coordinates, mode file and code."""
    war = build_war(VERSION, tmp_path, mode="broken", startup_delay_ms=250)
    assert war == tmp_path / f"{ARTIFACT_ID}-{VERSION}.war"
    with zipfile.ZipFile(war) as zf:
        assert zf.testzip() is None
        names = set(zf.namelist())
        pom = _read_properties(zf.read(pom_properties_path(GROUP_ID, ARTIFACT_ID)).decode())
        mode = _read_properties(zf.read(MODE_FILE).decode())
    assert pom == {"groupId": GROUP_ID, "artifactId": ARTIFACT_ID, "version": VERSION}
    assert mode == {"mode": "broken", "startup_delay_ms": "250"}
    assert {"WEB-INF/web.xml", "WEB-INF/classes/sample/StatusServlet.class"} <= names
    assert {f"WEB-INF/lib/{jar.name}" for jar in LIB_JARS} <= names
    assert "WEB-INF/pad.bin" not in names
    assert not list(tmp_path.glob(".*.partial"))


def test_padding_and_coordinates(tmp_path: Path) -> None:
    """pad_mb adds incompressible bytes; other coordinates land in their own path."""
    war = build_war("2.0.0", tmp_path, group_id="org.acme", artifact_id="shop", pad_mb=2)
    assert war.name == "shop-2.0.0.war"
    assert war.stat().st_size > 2 * 1024 * 1024
    with zipfile.ZipFile(war) as zf:
        assert zf.getinfo("WEB-INF/pad.bin").file_size == 2 * 1024 * 1024
        pom = _read_properties(zf.read(pom_properties_path("org.acme", "shop")).decode())
    assert pom["version"] == "2.0.0"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"group_id": "../evil"},
        {"mode": "weird"},
        {"file_name": "a/b.war"},
        {"pad_mb": -1},
    ],
)
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    """Unsafe names and unknown modes fail before anything is written."""
    with pytest.raises(ValueError):
        build_war(VERSION, tmp_path, **kwargs)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def _facts(body: str) -> dict[str, str]:
    """The ``name: value`` lines of a /status body after its first."""
    pairs = (line.partition(":") for line in body.splitlines()[1:])
    return {key.strip(): value.strip() for key, _, value in pairs}


def test_status_reports_coordinates(jetty: Jetty) -> None:
    """/status is the machine-readable identity of the running build, on its first
    line; facts about the JVM follow as ``name: value`` lines."""
    reply = _get(f"{jetty.base_url}/status")
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain")
    first, _, _ = reply.body.partition("\n")
    assert first == f"{GROUP_ID}:{ARTIFACT_ID} {VERSION}"
    facts = _facts(reply.body)
    assert list(facts) == ["pid", "started", "heap-max-mb", "log-level"]
    assert facts["pid"] == str(jetty.pid)
    assert int(facts["started"]) > 0 and int(facts["heap-max-mb"]) > 0
    assert facts["log-level"] == "INFO"  # resources/logback.xml, on Jetty's class path


def test_logback_xml_in_resources_is_rescanned(jetty: Jetty) -> None:
    """Jetty's resources/logback.xml is rescanned: a new root level shows on /status
    within seconds, from the same JVM, and the DEBUG line of each /status gets logged."""
    logback = jetty.log.parent / "resources" / "logback.xml"
    before = _facts(_get(f"{jetty.base_url}/status").body)
    try:
        logback.write_text(LOGBACK.replace('<root level="INFO">', '<root level="DEBUG">'))
        deadline, after = time.monotonic() + 5, before
        while after["log-level"] != "DEBUG" and time.monotonic() < deadline:
            time.sleep(0.1)
            after = _facts(_get(f"{jetty.base_url}/status").body)
        assert after == {**before, "log-level": "DEBUG"}
        _get(f"{jetty.base_url}/status")  # logged at DEBUG, whatever the race above
        assert "sample.StatusServlet - status asked" in jetty.log.read_text()
    finally:
        logback.write_text(LOGBACK)


def test_root_page_shows_version_and_greeting(jetty: Jetty) -> None:
    """/ names the version and reads config.properties from Jetty's resources/."""
    reply = _get(f"{jetty.base_url}/")
    assert reply.status == 200
    assert reply.content_type.startswith("text/html")
    assert f"<h1>{ARTIFACT_ID} {VERSION}</h1>" in reply.body
    assert "hello" in reply.body


def test_unknown_path_is_404(jetty: Jetty) -> None:
    """Only / and /status are served; the rest falls to Jetty's default servlet."""
    assert _get(f"{jetty.base_url}/nope").status == 404


def test_broken_build_answers_500(jetty: Jetty) -> None:
    """mode=broken deploys fine but fails its health check."""
    reply = _get(f"{jetty.base_url}/broken/status")
    assert reply.status == 500
    assert reply.body == f"broken build {VERSION}\n"


def test_hanging_build_never_answers(jetty: Jetty) -> None:
    """mode=hang accepts the request and stays silent past the client's timeout."""
    with pytest.raises(TimeoutError):
        _get(f"{jetty.base_url}/hang/status", timeout=1.5)


def test_slow_start_delays_the_whole_server(jetty: Jetty) -> None:
    """Jetty 9 opens its port only after deploying every webapp, delay included."""
    assert jetty.startup_s >= SLOW_START_MS / 1000
    assert _get(f"{jetty.base_url}/slow/status").status == 200
