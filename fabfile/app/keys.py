"""The keys a ``.config`` may hold: their parsers, defaults and documentation.

One table serves the parser (`fabfile.app.config`), the README's key reference and
the test that keeps the two in step, so a key cannot exist in one and not the
other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from . import pace
from .values import (
    parse_bool,
    parse_count,
    parse_http_via,
    parse_lb_name,
    parse_lb_socket,
    parse_manager_url,
    parse_names,
    parse_notify_format,
    parse_notify_url,
    parse_optional,
    parse_optional_port,
    parse_optional_template,
    parse_paths,
    parse_positive_seconds,
    parse_rate,
    parse_retire,
    parse_seconds,
    parse_status_url,
    parse_strategy,
    parse_template,
    parse_text,
    parse_user,
)

Parser = Callable[[str], Any]


@dataclasses.dataclass(frozen=True)
class Key:
    """One ``.config`` key: how to read it, its default and what it means."""

    name: str
    parse: Parser
    default: str | None  # None: required
    doc: str


KEYS: tuple[Key, ...] = (
    Key("hosts", parse_text, None, "Nodes, comma-separated: addresses or names that resolve."),
    Key(
        "strategy",
        parse_strategy,
        "rolling",
        "How a release reaches the nodes: rolling; blue-green (two instances per host, "
        "switched in haproxy); parallel (Tomcat versions side by side, no restart).",
    ),
    Key(
        "instances",
        parse_names,
        "",
        "Instances on every host, e.g. blue, green (see [instance:NAME]); empty: one.",
    ),
    Key(
        "user",
        parse_optional,
        "",
        "SSH user; empty: ssh_config's User, else the user running deploy.",
    ),
    Key(
        "become_user",
        parse_user,
        "",
        "Install the app's files (WAR, config.properties, .jettyrc, logback.xml) and run "
        "restart as this user, through sudo -n -u USER (e.g. root, jetty, tomcat); "
        "pre-flight refuses a node where sudo wants a password. Empty: as the SSH user, "
        "no sudo.",
    ),
    Key("port", parse_optional_port, "", "SSH port; empty: ssh_config's Port, else 22."),
    Key(
        "identity_file",
        parse_optional,
        "",
        "SSH private key, tried before ssh_config's IdentityFile; empty: those, the agent "
        "and ~/.ssh keys.",
    ),
    Key(
        "ssh_config",
        parse_optional,
        "",
        "The ssh_config file read for Host aliases, HostName, User, Port, IdentityFile, "
        "ProxyJump, UserKnownHostsFile and GlobalKnownHostsFile (Include followed; no "
        "command in it is run); empty: ~/.ssh/config when it exists.",
    ),
    Key(
        "known_hosts",
        parse_optional,
        "",
        "Known-hosts file checked on connect, for every node and jump host, in place of "
        "ssh_config's UserKnownHostsFile; empty: that (else ~/.ssh/known_hosts and "
        "~/.ssh/known_hosts2). GlobalKnownHostsFile is read too, as ssh does.",
    ),
    Key("accept_unknown_hosts", parse_bool, "no", "yes: trust and record an unknown host key."),
    Key("connect_timeout", parse_positive_seconds, "5", "Seconds to connect (SSH and HTTP)."),
    Key(
        "command_timeout",
        parse_positive_seconds,
        "30",
        "Seconds a command on a node may take (the restart command: ready_timeout); a node "
        "silent for longer fails, named with what it was doing.",
    ),
    Key(
        "min_transfer_kib",
        parse_rate,
        "256",
        "KiB/s an upload must average: its deadline is command_timeout plus its size at this rate.",
    ),
    Key(
        "ssh_keepalive",
        parse_seconds,
        "5",
        "Seconds between SSH keepalives; a connection on which nothing is acknowledged for "
        "3 times this is dead, and the step on it fails then (0: no keepalives).",
    ),
    Key("status_url", parse_status_url, "http://{host}:8080/status", "The /status URL template."),
    Key(
        "http_via",
        parse_http_via,
        "",
        "How /status, warm-up and the Tomcat manager are asked: ssh (a channel of the node's "
        "own SSH connection, to the URL's host and port as the node resolves them) or "
        "direct; empty: ssh for a node reached through a jump host (ProxyJump), else direct.",
    ),
    Key(
        "ca_bundle",
        parse_optional,
        "",
        "CA certificates (PEM) that https status and manager URLs are verified against; "
        "empty: the system's.",
    ),
    Key("status_timeout", parse_positive_seconds, "2", "Seconds to wait for a /status answer."),
    Key("ready_timeout", parse_positive_seconds, "60", "Seconds a node may take to be ready."),
    Key("poll_interval", parse_positive_seconds, "0.05", "Seconds between two /status polls."),
    Key(
        "error_grace",
        parse_positive_seconds,
        "5",
        "Seconds of steady 5xx from /status after which a node has failed.",
    ),
    Key(
        "warmup",
        parse_seconds,
        "5",
        "Seconds a verified node warms up before the next; with lb_socket its haproxy "
        "weight ramps up over them.",
    ),
    Key(
        "warmup_urls",
        parse_paths,
        "",
        "Paths fetched from a verified node before it goes back in rotation, e.g. "
        "/, /search?q=java; empty: none.",
    ),
    Key(
        "batch",
        pace.parse_batch,
        "1",
        "Nodes changed at once: N, or P% of the nodes (rounded down, at least 1).",
    ),
    Key(
        "idle_starts",
        pace.parse_batch,
        "100%",
        "blue-green: idle colours started at once, N or P% of the hosts (rounded down, at "
        "least 1); 1: one host after another.",
    ),
    Key(
        "canary",
        parse_count,
        "0",
        "Nodes that go first, alone; the rest waits for their verdict (0: no canary).",
    ),
    Key(
        "canary_wait",
        parse_seconds,
        "60",
        "Seconds the canaries are watched (/status, haproxy's error counters) before the "
        "rest goes.",
    ),
    Key(
        "canary_min_requests",
        parse_count,
        "10",
        "Requests haproxy must send the canaries during canary_wait for a verdict; fewer "
        "is Inconclusive.",
    ),
    Key(
        "watch",
        parse_seconds,
        "0",
        "Seconds the nodes on the new release are judged after the last batch (rolling, "
        "parallel) or switch (blue-green): /status, haproxy's counters, live; 0: no watch "
        "window.",
    ),
    Key(
        "on_failure",
        pace.parse_on_failure,
        "stop",
        "What a Failed verdict (after a batch, or in the watch window) does: stop (the "
        "batch's nodes leave rotation if others serve; parallel: the version is undeployed "
        "from them), ask (on a terminal; else stop), "
        "rollback (every changed node back to the release before, in the same run).",
    ),
    Key(
        "max_error_rate",
        pace.parse_error_rate,
        "1%",
        "A verdict is Failed when the judged nodes' failed requests (haproxy's 5xx and "
        "errors) exceed this share and both the other nodes' and their own before the run.",
    ),
    Key(
        "max_slowdown",
        pace.parse_slowdown,
        "3",
        "A verdict is Failed when the judged nodes answer more than this many times (and "
        "50 ms) slower than the other nodes over the window, or than they did before the "
        "run (haproxy's rtime).",
    ),
    Key(
        "max_failures",
        pace.parse_failures,
        "0",
        "Failed nodes a run goes on past (N or P%, rounded down), over the whole run; "
        "0: stop at the first.",
    ),
    Key("restart", parse_template, "/usr/share/jetty9/bin/jetty.sh restart", "Restart command."),
    Key(
        "pid_file",
        parse_optional_template,
        "/var/run/jetty/jetty.pid",
        "The container's PID file on the node (names a stray JVM).",
    ),
    Key("war_path", parse_template, "/var/lib/jetty9/webapps/root.war", "Where the WAR goes."),
    Key(
        "config_path",
        parse_template,
        "/var/lib/jetty9/resources/config.properties",
        "Where config.properties goes.",
    ),
    Key("jettyrc_path", parse_template, "~/.jettyrc", "Where .jettyrc goes."),
    Key(
        "logback_path",
        parse_optional_template,
        "",
        "Where logback.xml goes (needed when the app directory has one).",
    ),
    Key("releases_dir", parse_template, "~/releases/{app}", "Where a node keeps its releases."),
    Key("keep_releases", parse_count, "5", "Releases kept on each node (at least 2 are)."),
    Key("min_free_mb", parse_count, "16", "MiB that must stay free on a node after staging."),
    Key(
        "lb_socket",
        parse_lb_socket,
        "",
        "haproxy's runtime API (admin level), one or more: /path (here), HOST:/path (on "
        "HOST, over SSH, as the nodes are reached), HOST:PORT (TCP: unauthenticated); "
        "empty: no LB.",
    ),
    Key("lb_backend", parse_lb_name, "", "haproxy backend that holds the nodes."),
    Key("lb_server", parse_lb_name, "", "This node's server name in the backend."),
    Key("drain_timeout", parse_seconds, "30", "Seconds to wait for a drained node's sessions."),
    Key(
        "lb_state_file",
        parse_optional,
        "",
        "haproxy's server-state-file: written after every state change, so a reload keeps "
        "them; on the host that runs haproxy ({balancer}: its name in lb_socket); not "
        "with a TCP lb_socket; empty: not kept.",
    ),
    Key(
        "manager_user",
        parse_optional,
        "",
        "Tomcat manager user (manager-script role), one for every host; empty: sessions "
        "are not counted.",
    ),
    Key(
        "manager_url",
        parse_manager_url,
        "",
        "The manager's text API; empty: status_url's scheme, host and port + /manager/text.",
    ),
    Key(
        "manager_password_file",
        parse_optional,
        "",
        "A file only you can read holding the manager password "
        "(or set $DEPLOY_SECRET_MANAGER_PASSWORD).",
    ),
    Key(
        "retire",
        parse_retire,
        "auto",
        "parallel: auto undeploys old versions after a deploy once their sessions end; "
        "manual: only `deploy retire` does.",
    ),
    Key(
        "retire_timeout",
        parse_seconds,
        "120",
        "parallel: seconds retire waits for old versions' sessions to end.",
    ),
    Key(
        "version_heap_mb",
        parse_count,
        "0",
        "parallel: heap MiB one more version needs; 0: heap in use / versions running.",
    ),
    Key(
        "notify_url",
        parse_notify_url,
        "",
        "http(s) URL each run event is POSTed to (started, batch, switching, finished, "
        "rolled back, failed), signed with HMAC-SHA256; empty: no notifications.",
    ),
    Key("notify_format", parse_notify_format, "json", 'json: the event; slack: {"text": ...}.'),
    Key(
        "notify_secret_file",
        parse_optional,
        "",
        "An owner-only file holding the signing secret (or $DEPLOY_SECRET_NOTIFY); empty and "
        "no variable: events are not signed.",
    ),
    Key("notify_timeout", parse_positive_seconds, "5", "Seconds one notification may take."),
)

KEYS_BY_NAME = {key.name: key for key in KEYS}
# how fast a rollout goes (`fabfile.app.pace.Pace`, whose fields they are)
PACE_KEYS = (
    "batch",
    "idle_starts",
    "canary",
    "canary_wait",
    "canary_min_requests",
    "max_failures",
    "watch",
    "on_failure",
    "max_error_rate",
    "max_slowdown",
)
# where run events go (`fabfile.engine.notifications`)
NOTIFY_KEYS = ("notify_url", "notify_format", "notify_secret_file", "notify_timeout")
CLUSTER_KEYS = (
    "hosts",
    "strategy",
    "instances",
    "lb_state_file",
    "retire",
    "retire_timeout",
    *NOTIFY_KEYS,
    *PACE_KEYS,
)  # one value for the cluster: [deploy] only
# What differs between the instances of one host: set in [instance:NAME].
INSTANCE_KEYS = (
    "status_url",
    "restart",
    "become_user",
    "pid_file",
    "war_path",
    "config_path",
    "jettyrc_path",
    "logback_path",
    "lb_server",
    "manager_url",
)
