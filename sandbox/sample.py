"""Build the sample Java web application (a WAR) that the sandbox deploys.

The deployment tool under test needs real artifacts to ship: WARs that a real
Jetty can run and that report which version is live.  The Java source lives in
``sandbox/webapp``; this module compiles it once (cached by source hash) and
packs one WAR per version, with Maven's ``pom.properties`` so the webapp can
discover its own coordinates, plus a baked-in behaviour mode (ok, broken,
hang, flaky, slow start) so the tool's failure handling can be exercised. A flaky
build answers ``/status`` well and every fifth request to ``/`` with a 500 whose body
starts ``flaky build``: healthy to a health check, 20 % errors to its users. A slow
build answers ``/`` after 300 ms: healthy, and slow for its users.

Two containers, one set of sources: Jetty 9 runs ``javax.servlet``, Tomcat 10
runs ``jakarta.servlet``. The Tomcat build (``container="tomcat"``) compiles
the same files with the package renamed at build time, against Tomcat's own
servlet API, and ships a Servlet 6.0 web.xml that marks the app distributable
(its login/whoami/logout servlets keep a Serializable user in the session).

Both builds log through slf4j and ship Debian's slf4j-api and logback in
``WEB-INF/lib``; the WAR carries no logback.xml, so the one a node puts on the
container's class path configures it (and is rescanned when it says ``scan``).

CLI: ``python -m sandbox.sample 1.0.1 1.0.2 --out DIR [--mode broken] [--container tomcat]``
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

WEBAPP_DIR = Path(__file__).resolve().parent / "webapp"
SRC_DIR = WEBAPP_DIR / "src"
WEB_XML = WEBAPP_DIR / "WEB-INF" / "web.xml"
SERVLET_API_JAR = Path("/usr/share/java/servlet-api.jar")
SLF4J_API_JAR = Path("/usr/share/java/slf4j-api.jar")  # 1.7: the API the code compiles against
# Packed into every WAR's WEB-INF/lib: the API and its binding, logback 1.2.
LIB_JARS = (
    SLF4J_API_JAR,
    Path("/usr/share/java/logback-classic.jar"),
    Path("/usr/share/java/logback-core.jar"),
)
JAVA_RELEASE = "11"
MODES = ("ok", "broken", "hang", "flaky", "slow")
MODE_FILE = "WEB-INF/sample-mode.properties"
DEFAULT_GROUP_ID = "com.example.search"
DEFAULT_ARTIFACT_ID = "search-web-frontend"


@dataclasses.dataclass(frozen=True)
class Container:
    """What a build for one servlet container compiles against and ships."""

    servlet_package: str  # the package the sources are compiled with
    api_jar: Path
    web_xml: Path


CONTAINERS = {
    "jetty": Container("javax.servlet", SERVLET_API_JAR, WEB_XML),
    "tomcat": Container(
        "jakarta.servlet",
        Path("/usr/share/tomcat10/lib/servlet-api.jar"),
        WEBAPP_DIR / "jakarta" / "web.xml",
    ),
}
_JAVAX_SERVLET = re.compile(r"\bjavax\.servlet\b")

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_MIB = 1024 * 1024
_compiled: dict[str, Path] = {}


def pom_properties_path(group_id: str, artifact_id: str) -> str:
    """Where Maven puts pom.properties in an archive (the webapp and the tests look there)."""
    return f"META-INF/maven/{group_id}/{artifact_id}/pom.properties"


def build_war(
    version: str,
    out_dir: Path,
    *,
    group_id: str = DEFAULT_GROUP_ID,
    artifact_id: str = DEFAULT_ARTIFACT_ID,
    mode: str = "ok",
    startup_delay_ms: int = 0,
    pad_mb: int = 0,
    file_name: str | None = None,
    container: str = "jetty",
    distributable: bool = True,
) -> Path:
    """Build ``<artifactId>-<version>.war`` (or ``file_name``) in ``out_dir``; return it.

    One archive per version: the tool under test tells builds apart by /status.
    ``container`` is ``jetty`` (javax, Servlet 3.1) or ``tomcat`` (jakarta, 6.0);
    ``distributable=False`` drops the Tomcat build's ``<distributable/>``.
    """
    _check_args(version, group_id, artifact_id, mode, startup_delay_ms, pad_mb, file_name)
    if container not in CONTAINERS:
        raise ValueError(f"container must be one of {tuple(CONTAINERS)}, not {container!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    war = out_dir / (file_name or f"{artifact_id}-{version}.war")
    with tempfile.TemporaryDirectory(prefix="sample-war-") as tmp:
        staging = Path(tmp) / "staging"
        _stage_code(staging, container)
        if not distributable:
            web_xml = staging / "WEB-INF" / "web.xml"
            web_xml.write_text(re.sub(r"\s*<distributable\s*/>", "", web_xml.read_text()))
        _write_pom_properties(staging, group_id, artifact_id, version)
        _write_mode_file(staging, mode, startup_delay_ms)
        if pad_mb > 0:
            _write_pad(staging / "WEB-INF" / "pad.bin", pad_mb)
        _jar(staging, war)
    return war


EXTENSION_SOURCE = """package sample.ext;

/** An extension kept outside the WAR (built by sandbox.sample.build_extension_jar). */
public final class Greeting {
    private Greeting() {
    }

    public static String text() {
        return %s;
    }
}
"""


def build_extension_jar(out: Path, text: str) -> Path:
    """A jar holding ``sample.ext.Greeting`` whose ``text()`` returns ``text``: the
    class the webapp's /extension page loads from outside the WAR."""
    if not re.fullmatch(r"[A-Za-z0-9 ._-]{1,64}", text):
        raise ValueError(f"extension text is 1-64 letters, digits, space . _ -: {text!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sample-ext-") as tmp:
        source = Path(tmp) / "src" / "sample" / "ext" / "Greeting.java"
        source.parent.mkdir(parents=True)
        source.write_text(EXTENSION_SOURCE % f'"{text}"', encoding="utf-8")
        classes = Path(tmp) / "classes"
        _run(["javac", "--release", JAVA_RELEASE, "-d", str(classes), str(source)])
        _jar(classes, out)
    return out


def _stage_code(staging: Path, container: str = "jetty") -> None:
    """Lay out the compiled classes, the library jars and web.xml, the part shared by
    every build. The jars are copied from the system on every build (not cached)."""
    shutil.copytree(compiled_classes(container), staging / "WEB-INF" / "classes")
    shutil.copy2(CONTAINERS[container].web_xml, staging / "WEB-INF" / "web.xml")
    lib = staging / "WEB-INF" / "lib"
    lib.mkdir()
    for jar in LIB_JARS:
        shutil.copyfile(jar, lib / jar.name)


def _jar(staging: Path, war: Path) -> None:
    """Pack ``staging`` with jar, then rename into place.

    The rename is atomic, so a deployer scanning the output directory never
    picks up a half-written archive.
    """
    partial = war.parent / f".{war.name}.{os.getpid()}.partial"
    try:
        _run(["jar", "--create", "--file", str(partial), "-C", str(staging), "."])
        os.replace(partial, war)
    finally:
        partial.unlink(missing_ok=True)


def _check_args(
    version: str,
    group_id: str,
    artifact_id: str,
    mode: str,
    startup_delay_ms: int,
    pad_mb: int,
    file_name: str | None,
) -> None:
    """Reject values that would escape the archive layout or the output directory."""
    for label, value in (
        ("version", version),
        ("group_id", group_id),
        ("artifact_id", artifact_id),
    ):
        if not _SAFE_NAME.fullmatch(value):
            raise ValueError(f"unsafe {label}: {value!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if startup_delay_ms < 0 or pad_mb < 0:
        raise ValueError("startup_delay_ms and pad_mb must be >= 0")
    if file_name is not None and (
        Path(file_name).name != file_name or file_name in ("", ".", "..")
    ):
        raise ValueError(f"file_name must be a plain file name: {file_name!r}")


def compiled_classes(container: str = "jetty") -> Path:
    """Return a directory of compiled classes, compiling only when the sources changed.

    javac costs about a second; tests build many WARs, so the result is kept
    in a temp directory keyed by the source hash (shared by processes) and
    memoised in this process.
    """
    digest = _source_digest(container)
    cached = _compiled.get(digest)
    if cached is not None and cached.is_dir():
        return cached
    # Per user, so no other local user can plant classes that end up in a WAR.
    target = Path(tempfile.gettempdir()) / f"sandbox-sample-classes-{os.getuid()}-{digest[:20]}"
    if not target.is_dir():
        _compile_into(target, container)
    _compiled[digest] = target
    return target


def _class_path(container: str = "jetty") -> tuple[Path, ...]:
    """What javac compiles against: the container's servlet API and slf4j's."""
    return (CONTAINERS[container].api_jar, SLF4J_API_JAR)


def _source_digest(container: str = "jetty") -> str:
    """Hash the Java sources and the compile settings that shape the class files,
    the jars of the class path included (by content: an upgraded API recompiles)."""
    h = hashlib.sha256(f"release={JAVA_RELEASE}\n".encode())
    if container != "jetty":
        h.update(f"container={container}\n".encode())
    for jar in _class_path(container):
        h.update(f"classpath={jar}\n".encode() + hashlib.sha256(jar.read_bytes()).digest())
    for path in sorted(SRC_DIR.rglob("*.java")):
        h.update(path.relative_to(SRC_DIR).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _compile_into(target: Path, container: str = "jetty") -> None:
    """Compile into a scratch dir, then rename, so readers never see a partial cache."""
    sources = sorted(str(p) for p in SRC_DIR.rglob("*.java"))
    if not sources:
        raise RuntimeError(f"no Java sources under {SRC_DIR}")
    scratch = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="sample-src-") as generated:
            if container != "jetty":
                package = CONTAINERS[container].servlet_package
                sources = _renamed_sources(Path(generated), package)
            cmd = ["javac", "--release", JAVA_RELEASE, "-encoding", "UTF-8"]
            class_path = os.pathsep.join(str(jar) for jar in _class_path(container))
            _run([*cmd, "-cp", class_path, "-d", str(scratch), *sources])
        try:
            scratch.rename(target)
        except OSError:
            if not target.is_dir():  # lost a race to another process only if it exists
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _renamed_sources(into: Path, package: str) -> list[str]:
    """Copies of the sources with ``javax.servlet`` renamed to ``package``, generated
    at build time so the Tomcat build never drifts from the Jetty one."""
    written = []
    for path in sorted(SRC_DIR.rglob("*.java")):
        copy = into / path.relative_to(SRC_DIR)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(_JAVAX_SERVLET.sub(package, path.read_text(encoding="utf-8")), "utf-8")
        written.append(str(copy))
    return written


def _write_pom_properties(staging: Path, group_id: str, artifact_id: str, version: str) -> None:
    """Write pom.properties as maven-archiver does (comment line, then sorted keys)."""
    path = staging / pom_properties_path(group_id, artifact_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "#Generated by sandbox.sample in Maven's pom.properties layout\n"
        f"artifactId={artifact_id}\ngroupId={group_id}\nversion={version}\n"
    )
    path.write_text(text, encoding="utf-8")


def _write_mode_file(staging: Path, mode: str, startup_delay_ms: int) -> None:
    """Bake the behaviour into the WAR, so a deployed build misbehaves the same everywhere."""
    text = (
        "# Behaviour of this build, read by the webapp at startup\n"
        f"mode={mode}\nstartup_delay_ms={startup_delay_ms}\n"
    )
    (staging / MODE_FILE).write_text(text, encoding="utf-8")


def _write_pad(path: Path, pad_mb: int) -> None:
    """Random, hence incompressible, ballast: makes the WAR as big on the wire as on disk."""
    with path.open("wb") as fh:
        for _ in range(pad_mb):
            fh.write(os.urandom(_MIB))


def _run(cmd: list[str]) -> None:
    """Run a JDK tool; failures become RuntimeError carrying the tool's stderr."""
    try:
        proc = subprocess.run(
            cmd, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
    except OSError as exc:
        raise RuntimeError(f"cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}): {detail}")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options mirror build_war's keyword arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.sample", description="Build sample WARs."
    )
    parser.add_argument("versions", nargs="+", metavar="VERSION")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--startup-delay-ms", type=int, default=0)
    parser.add_argument("--pad-mb", type=int, default=0)
    parser.add_argument("--group-id", default=DEFAULT_GROUP_ID)
    parser.add_argument("--artifact-id", default=DEFAULT_ARTIFACT_ID)
    parser.add_argument("--container", choices=tuple(CONTAINERS), default="jetty")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build one WAR per version and print each path, for shell scripts and demos."""
    args = _parse_args(argv)
    try:
        for version in args.versions:
            war = build_war(
                version,
                args.out,
                group_id=args.group_id,
                artifact_id=args.artifact_id,
                mode=args.mode,
                startup_delay_ms=args.startup_delay_ms,
                pad_mb=args.pad_mb,
                container=args.container,
            )
            print(war)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
