"""The sandbox's haproxy configuration: who owns the runtime API socket."""

from __future__ import annotations

from pathlib import Path

from sandbox import cluster, haproxy, tomcat

NODES = cluster.Cluster(Path("/srv/sandbox"), ("127.0.9.2", "127.0.9.3"))


def _socket_line(text: str) -> str:
    (line,) = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("stats socket")]
    return line


def test_the_socket_is_roots_unless_a_user_is_named() -> None:
    assert _socket_line(haproxy.config_text(NODES)) == (
        "stats socket /srv/sandbox/haproxy.sock mode 600 level admin"
    )
    assert _socket_line(haproxy.config_text(NODES, socket_user="wd-operator")) == (
        "stats socket /srv/sandbox/haproxy.sock user wd-operator mode 600 level admin"
    )


def test_tomcat_hosts_name_the_socket_user_too() -> None:
    tomcats = tomcat.Tomcats(NODES, tomcat.BLUE_GREEN)
    text = haproxy.tomcat_config_text(tomcats, sticky=True, socket_user="wd-operator")
    assert _socket_line(text) == (
        "stats socket /srv/sandbox/haproxy.sock user wd-operator mode 600 level admin"
    )
    assert "    server 127.0.9.2-green 127.0.9.2:8081 check disabled cookie 127.0.9.2" in text
    assert _socket_line(haproxy.tomcat_config_text(tomcats)).endswith(
        "haproxy.sock mode 600 level admin"
    )
