"""The coordinator's app directory for the sandbox's Tomcat hosts, and their WARs.

The same app as on Jetty (``search-web-frontend``), built for Tomcat 10. With
one instance per host the ``.config`` is a rolling one; with blue and green,
``strategy = blue-green`` switches between them in haproxy. In both,
``~/bin/tomcat NAME restart`` is the restart, the WAR goes to the
instance's ``webapps/ROOT.war``, ``config.properties`` to its
``lib/`` (on Tomcat's common class path, where the app reads it), as does
``logback.xml`` (where the webapp's logback finds it, and rescans it), and the
``.jettyrc`` to its ``bin/setenv.sh`` (which catalina.sh sources: the same
"shell file of JVM options" role, under Tomcat's variable name).

With ``strategy = parallel`` the manager deploys each version beside the
others at ``/`` (``ROOT##TAG``); ``config.properties`` and the app
directory's ``extensions/`` (a jar the /extension page loads) go with each
version, mounted ahead of the WAR's own classes.
"""

from __future__ import annotations

from pathlib import Path

from .app import APP, VERSIONS, logback_xml
from .sample import build_extension_jar, build_war
from .tomcat import Tomcats
from .tomcat_conf import MANAGER_USER, SETENV

PARALLEL = "parallel"
EXTENSION_JAR = "extensions/WEB-INF/lib/greeting.jar"
EXTENSION_TEXT = "Greeting from an extension"
PROPERTIES = """# Delivered to every instance as ~/tomcat/NAME/lib/config.properties
greeting=Hello from the sandbox's Tomcat
search.backend=http://127.0.0.1:9200
"""
LOGBACK = logback_xml("every instance as ~/tomcat/NAME/lib/logback.xml (common class path)")


def config_text(
    tomcats: Tomcats,
    warmup: float = 1,
    balancer: str = "",
    ready_timeout: float = 30,
    strategy: str = "rolling",
) -> str:
    """The ``.config`` of the app on ``tomcats``' hosts (same keys for every host)."""
    cluster = tomcats.cluster
    several = len(tomcats.instances) > 1
    name = "{instance}" if several else tomcats.instances[0]
    lines = [
        "# The sandbox's Tomcat hosts written by `inv sandbox.up --kind tomcat...`: every",
        "# host is a real sshd on its own loopback address with Tomcat 10 instances.",
        "[deploy]",
        f"strategy = {strategy}",
        f"hosts = {', '.join(cluster.addresses)}",
        *([f"instances = {', '.join(tomcats.instances)}"] if several else []),
        "user = root",
        f"identity_file = {cluster.key}",
        f"known_hosts = {cluster.known_hosts}",
        f"status_url = http://{{host}}:{tomcats.http_port(tomcats.instances[0])}/status",
        f"restart = ~/bin/tomcat {name} restart",
        f"pid_file = ~/run/tomcat-{name}.pid",
        f"war_path = ~/tomcat/{name}/webapps/ROOT.war",
        f"config_path = ~/tomcat/{name}/lib/config.properties",
        f"jettyrc_path = ~/tomcat/{name}/bin/setenv.sh",
        f"logback_path = ~/tomcat/{name}/lib/logback.xml",
        "releases_dir = ~/releases/{app}",
        f"warmup = {warmup:g}",
        f"ready_timeout = {ready_timeout:g}",
        f"manager_user = {MANAGER_USER}",
        f"manager_password_file = {tomcats.password_file}",
    ]
    if strategy == PARALLEL:
        lines += ["retire_timeout = 30"]
    if balancer:  # each haproxy server is named as lb_server defaults: host[-instance]
        state = Path(balancer).with_name("haproxy.state")  # haproxy.state_path
        lines += [f"lb_socket = {balancer}", "lb_backend = web", f"lb_state_file = {state}"]
    if several:
        for instance in tomcats.instances:
            url = f"http://{{host}}:{tomcats.http_port(instance)}/status"
            lines += ["", f"[instance:{instance}]", f"status_url = {url}"]
    return "\n".join(lines) + "\n"


def write(
    tomcats: Tomcats,
    app_dir: Path,
    versions: tuple[str, ...] = VERSIONS,
    pad_mb: int = 0,
    warmup: float = 1,
    balancer: str = "",
    ready_timeout: float = 30,
    strategy: str = "rolling",
) -> list[Path]:
    """Write .config, config.properties, logback.xml, .jettyrc (setenv.sh) and build the
    Tomcat WARs."""
    app_dir.mkdir(parents=True, exist_ok=True)
    text = config_text(tomcats, warmup, balancer, ready_timeout, strategy)
    (app_dir / ".config").write_text(text)
    (app_dir / "config.properties").write_text(PROPERTIES)
    (app_dir / "logback.xml").write_text(LOGBACK)
    (app_dir / ".jettyrc").write_text(SETENV)
    if strategy == PARALLEL:
        build_extension_jar(app_dir / EXTENSION_JAR, EXTENSION_TEXT)
    return [
        build_war(v, app_dir, artifact_id=APP, pad_mb=pad_mb, container="tomcat") for v in versions
    ]
