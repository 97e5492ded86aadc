"""The coordinator's app directory for a sandbox cluster, and its sample WARs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .cluster import Cluster
from .sample import build_war

APP = "search-web-frontend"
VERSIONS = ("1.0.124", "1.0.125", "1.0.126")
INITIAL = "1.0.125"  # what sandbox.up deploys, so the demo has a newer one and a rollback

PROPERTIES = """# Delivered to every node as ~/jetty-base/resources/config.properties
greeting=Hello from the sandbox
search.backend=http://127.0.0.1:9200
"""


def logback_xml(where: str) -> str:
    """The sample app's logback.xml, delivered to ``where`` (said in its comment)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Delivered to {where},
     where the webapp's logback finds it. Rescanned every second: a new root level
     takes effect in the running JVM, without a restart. -->
<configuration scan="true" scanPeriod="1 seconds">
  <appender name="CONSOLE" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%d{{HH:mm:ss.SSS}} %-5level [%thread] %logger{{36}} - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="CONSOLE" />
  </root>
</configuration>
"""


LOGBACK = logback_xml("every node as ~/jetty-base/resources/logback.xml (on Jetty's class path)")

JETTYRC = """# Sourced by jetty.sh on every node: JVM options for Jetty.
JAVA_OPTIONS="-Xms32m -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto"
"""


@dataclasses.dataclass(frozen=True)
class Runtime:
    """What runs on a sandbox node, as ``.config`` names it: Jetty, or a light server."""

    header: str  # the file's opening comment
    restart: str = "~/bin/jetty restart"
    pid_file: str = "~/run/jetty.pid"
    logback_path: str = "~/jetty-base/resources/logback.xml"  # '' for none


JETTY = Runtime(
    "# The sandbox cluster written by `inv sandbox.up`: every node is a real sshd\n"
    "# and a real Jetty on its own loopback address. See README, '.config'."
)


def config_text(
    cluster: Cluster,
    warmup: float = 1,
    balancer: str = "",
    ready_timeout: float = 30,
    runtime: Runtime = JETTY,
) -> str:
    """The ``.config`` of an app deployed to ``cluster`` (same keys for every node)."""
    lines = [
        runtime.header,
        "[deploy]",
        f"hosts = {', '.join(cluster.addresses)}",
        "user = root",
        f"identity_file = {cluster.key}",
        f"known_hosts = {cluster.known_hosts}",
        f"status_url = http://{{host}}:{cluster.http_port}/status",
        f"restart = {runtime.restart}",
        f"pid_file = {runtime.pid_file}",
        "war_path = ~/jetty-base/webapps/root.war",
        "config_path = ~/jetty-base/resources/config.properties",
        "jettyrc_path = ~/.jettyrc",
        *([f"logback_path = {runtime.logback_path}"] if runtime.logback_path else []),
        "releases_dir = ~/releases/{app}",
        f"warmup = {warmup:g}",
        f"ready_timeout = {ready_timeout:g}",
    ]
    if balancer:
        state = Path(balancer).with_name("haproxy.state")  # haproxy.state_path
        lines += [f"lb_socket = {balancer}", "lb_backend = web", f"lb_state_file = {state}"]
        lines += _server_names(cluster)
    return "\n".join(lines) + "\n"


def _server_names(cluster: Cluster) -> list[str]:
    lines = []
    for index, address in enumerate(cluster.addresses, start=1):
        lines += ["", f"[host:{address}]", f"lb_server = node{index}"]
    return lines


def write(
    cluster: Cluster,
    app_dir: Path,
    versions: tuple[str, ...] = VERSIONS,
    pad_mb: int = 0,
    warmup: float = 1,
    balancer: str = "",
    ready_timeout: float = 30,
) -> list[Path]:
    """Write .config, config.properties, logback.xml, .jettyrc and build the WARs;
    return the WARs."""
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / ".config").write_text(config_text(cluster, warmup, balancer, ready_timeout))
    (app_dir / "config.properties").write_text(PROPERTIES)
    (app_dir / "logback.xml").write_text(LOGBACK)
    (app_dir / ".jettyrc").write_text(JETTYRC)
    return [build_war(v, app_dir, artifact_id=APP, pad_mb=pad_mb) for v in versions]
