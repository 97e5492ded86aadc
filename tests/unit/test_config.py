"""`.config` parsing: defaults, per-host overrides and errors that name file, line and key."""

from __future__ import annotations

import dataclasses
import getpass
from pathlib import Path
from typing import cast

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fabfile.app import config
from fabfile.app.config import AppConfig
from fabfile.app.keys import CLUSTER_KEYS, KEYS
from fabfile.engine import strategies
from fabfile.errors import ConfigError, ExitCode, UsageError

# Every file below sets ``user`` so the tests do not depend on who runs them.
USER = "user = deployer"


def write(tmp_path: Path, *lines: str) -> Path:
    """``.config`` holding ``lines``: line N of the file is ``lines[N - 1]``."""
    path = tmp_path / ".config"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    """The error of reading ``path`` as the tool does, the strategy's checks included."""
    with pytest.raises(ConfigError) as caught:
        strategies.load(path, app="shop")
    return str(caught.value)


# -- what a good file gives ----------------------------------------------------


def test_defaults_apply_to_every_node(tmp_path: Path) -> None:
    path = write(tmp_path, "[deploy]", "hosts = web1, web2", USER)
    app = config.load(path, app="shop")
    assert app.hosts == ("web1", "web2")
    assert app.path == path and app.app == "shop"
    computed = {"hosts", "user", "port", "releases_dir", "lb_server", "http_via", *CLUSTER_KEYS}
    for node in app.nodes:
        for key in KEYS:
            if key.name not in computed:
                default = cast(str, key.default)  # only ``hosts`` has none, and it is computed
                assert getattr(node, key.name) == key.parse(default), key.name
        assert node.user == "deployer"
        assert node.releases_dir == "~/releases/shop"
        assert node.lb_server == node.host
    web1 = app.nodes[0]
    assert (web1.port, web1.warmup, web1.ready_timeout) == (22, 5.0, 60.0)
    assert web1.status_url == "http://{host}:8080/status"
    assert web1.url == "http://web1:8080/status"
    assert web1.accept_unknown_hosts is False
    assert web1.lb_socket == ""


def test_node_config_is_frozen(tmp_path: Path) -> None:
    node = config.load(write(tmp_path, "[deploy]", "hosts = web1", USER)).nodes[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.warmup = 0  # type: ignore[misc]


def test_user_defaults_to_the_user_running_deploy(tmp_path: Path) -> None:
    app = config.load(write(tmp_path, "[deploy]", "hosts = web1"))
    assert app.nodes[0].user == getpass.getuser()


def test_host_section_overrides_that_node_only(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[deploy]",
        "hosts = web1, web2, web3",
        USER,
        "warmup = 7",
        "[host:web2]",
        "warmup = 0.5",
        "port = 2222",
        "status_url = https://{host}:8443/health",
    )
    web1, web2, web3 = config.load(path, app="shop").nodes
    assert (web1.warmup, web1.port, web1.url) == (7.0, 22, "http://web1:8080/status")
    assert (web2.warmup, web2.port, web2.url) == (0.5, 2222, "https://web2:8443/health")
    assert (web3.warmup, web3.port, web3.url) == (7.0, 22, "http://web3:8080/status")


def test_host_section_with_a_space_after_the_colon_still_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "[deploy]", "hosts = web1, web2", USER, "[host: web2]", "warmup = 1")
    web1, web2 = config.load(path).nodes
    assert (web1.warmup, web2.warmup) == (5.0, 1.0)


def test_hosts_may_be_listed_on_several_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "[deploy]", USER, "hosts =", "    web1,", "    web2", "    web3")
    assert config.load(path).hosts == ("web1", "web2", "web3")


def test_app_is_substituted_in_releases_dir(tmp_path: Path) -> None:
    app_dir = tmp_path / "search-web-frontend"
    app_dir.mkdir()
    path = write(
        app_dir,
        "[deploy]",
        "hosts = web1, web2",
        USER,
        "releases_dir = /srv/{app}/releases",
        "[host:web2]",
        "releases_dir = ~/{app}-old",
    )
    web1, web2 = config.load(path).nodes  # app defaults to the directory's name
    assert web1.releases_dir == "/srv/search-web-frontend/releases"
    assert web2.releases_dir == "~/search-web-frontend-old"
    assert config.load(path, app="other").nodes[0].releases_dir == "/srv/other/releases"


def test_select_keeps_config_order_and_none_means_all(tmp_path: Path) -> None:
    app = config.load(write(tmp_path, "[deploy]", "hosts = a, b, c", USER))
    assert app.select(None) == app.nodes
    assert [n.host for n in app.select(["c", "a"])] == ["a", "c"]


def test_select_refuses_unknown_hosts_naming_them_and_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "[deploy]", "hosts = a, b", USER)
    app = config.load(path)
    with pytest.raises(UsageError) as caught:
        app.select(["a", "x", "y"])
    assert caught.value.exit_code == ExitCode.USAGE
    message = str(caught.value)
    assert "x, y" in message
    assert str(path) in message
    assert "known: a, b" in message


# -- errors: file, line and key -------------------------------------------------

ERRORS = [
    pytest.param(["[host:a]", "warmup = 1"], 1, ["no [deploy] section"], id="no-deploy"),
    pytest.param(["hosts = a", "[deploy]"], 1, ["a key before any section"], id="no-header"),
    pytest.param(
        ["[deploy]", USER, "hosts ="], 3, ["[deploy] hosts", "no hosts"], id="empty-hosts"
    ),
    pytest.param(["[deploy]", USER], 1, ["[deploy] hosts", "no hosts"], id="no-hosts-key"),
    pytest.param(
        ["[deploy]", USER, "hosts = a, b, a"],
        3,
        ["[deploy] hosts", "'a' is listed twice"],
        id="duplicate-host",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", "warmup = 1", USER, "warmup = 2"],
        5,
        ["key 'warmup' appears twice in [deploy]"],
        id="duplicate-key",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", USER, "[host:a]", "warmup = 1", "[host:a]"],
        6,
        ["section [host:a] appears twice"],
        id="duplicate-section",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", USER, "warmup = soon"],
        4,
        ["[deploy] warmup = 'soon'", "expected a number of seconds"],
        id="warmup-not-a-number",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", "status_timeout = -1", USER],
        3,
        ["[deploy] status_timeout", ">= 0"],
        id="negative-timeout",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", USER, "", "ready_timeout = 0"],
        5,
        ["[deploy] ready_timeout", "> 0"],
        id="zero-ready-timeout",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", USER, "warmpu = 3"],
        4,
        ["[deploy] warmpu", "unknown key", "did you mean 'warmup'?"],
        id="unknown-key",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", USER, "status_url = http://web:8080/status"],
        4,
        ["[deploy] status_url", "must contain {host}"],
        id="status-url-without-host",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", USER, "# a comment", "[deploi]", "warmup = 1"],
        5,
        ["unknown section [deploi]"],
        id="unknown-section",
    ),
    pytest.param(
        ["[deploy]", "hosts = a, b", USER, "[host:c]", "warmup = 1"],
        4,
        ["[host:c] names a host that is not in [deploy] hosts (a, b)"],
        id="host-not-listed",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", USER, "[host:a]", "warmup = 1", "hosts = b"],
        6,
        ["[host:a] hosts", "belongs in [deploy] only"],
        id="hosts-in-host-section",
    ),
    pytest.param(
        ["[deploy]", "hosts = a, b", USER, "[host:b]", "warmup = 1", "port = 99999"],
        6,
        ["[host:b] port = '99999'", "from 1 to 65535"],
        id="bad-value-in-override",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", USER, "accept_unknown_hosts = perhaps"],
        4,
        ["[deploy] accept_unknown_hosts", "expected yes or no"],
        id="not-a-bool",
    ),
    pytest.param(
        ["[deploy]", "hosts = a", USER, "just some words"],
        4,
        ["not 'key = value' or '[section]'"],
        id="not-an-ini-line",
    ),
]


@pytest.mark.parametrize(("lines", "line", "fragments"), ERRORS)
def test_errors_name_file_line_and_key(
    tmp_path: Path, lines: list[str], line: int, fragments: list[str]
) -> None:
    path = write(tmp_path, *lines)
    message = load_error(path)
    assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    message = load_error(path)
    assert message.startswith(f"{path}: no such file")


def test_a_directory_is_not_a_readable_config(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.mkdir()
    message = load_error(path)
    assert message.startswith(f"{path}: cannot read it")


def test_invalid_utf8_is_not_a_readable_config(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_bytes(b"[deploy]\nhosts = caf\xe9\n")
    message = load_error(path)
    assert message.startswith(f"{path}: cannot read it")
    assert "utf-8" in message


def test_line_numbers_count_newlines_only(tmp_path: Path) -> None:
    path = write(tmp_path, "[deploy]", "# page one\x0cpage two", "hosts = a", USER, "warmup = x")
    assert load_error(path).startswith(f"{path}:5: ")


@pytest.mark.parametrize("url", ["http://{host}/{host.x}", "http://{host}/{host[x]}"])
def test_status_url_with_attribute_or_index_is_a_config_error(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, "[deploy]", "hosts = a", USER, f"status_url = {url}")
    assert load_error(path).startswith(f"{path}:4: [deploy] status_url")


# -- properties: load returns an AppConfig or raises ConfigError, nothing else ----

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
KEY_NAMES = [key.name for key in KEYS]
one_line = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]))
keys = st.one_of(st.sampled_from(KEY_NAMES), st.from_regex(r"[a-z_]{1,12}", fullmatch=True))


def loads_or_config_error(path: Path) -> None:
    try:
        result = config.load(path, app="shop")
    except ConfigError:
        return
    assert isinstance(result, AppConfig)
    assert result.nodes and all(isinstance(n, config.NodeConfig) for n in result.nodes)


@PROPERTY
@given(text=st.text())
def test_any_text_loads_or_raises_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / ".config"
    path.write_text(text, encoding="utf-8")
    loads_or_config_error(path)


@PROPERTY
@given(pairs=st.lists(st.tuples(keys, one_line), max_size=8))
def test_any_deploy_keys_load_or_raise_config_error(
    tmp_path: Path, pairs: list[tuple[str, str]]
) -> None:
    path = write(tmp_path, "[deploy]", "hosts = a, b", USER, *(f"{k} = {v}" for k, v in pairs))
    loads_or_config_error(path)


@PROPERTY
@given(suffix=st.text(alphabet="{}[]().:!%srdhost0x/", max_size=16))
@example(suffix="{host.x}")
def test_any_status_url_template_loads_or_raises_config_error(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path, "[deploy]", "hosts = a", USER, f"status_url = http://{{host}}/{suffix}")
    loads_or_config_error(path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hosts = deploy@web1", "'deploy@web1' is not a host name or address"),
        ("hosts = web1/x", "'web1/x' is not a host name or address"),
        ("status_url = http://{host}:99999/status", "not a valid URL"),
        ("warmup = 1e300", "expected at most 86400 seconds"),
        ("lb_socket = haproxy", "expected a Unix socket path, HOST:/socket/path (over SSH)"),
        ("lb_socket = /a.sock, , /b.sock", "an empty entry between commas"),
        ("lb_socket = lb1:/a.sock, lb1:/b.sock", "a balancer is listed twice"),
        ("lb_socket = lb 1:/a.sock", "expected a Unix socket path, HOST:/socket/path"),
    ],
)
def test_more_bad_values_are_config_errors(tmp_path: Path, line: str, expected: str) -> None:
    key = line.split(" =")[0]
    body = "[deploy]\nuser = u\nlb_backend = web\n"
    body += line + "\n" if key == "hosts" else f"hosts = web1\n{line}\n"
    path = tmp_path / ".config"
    path.write_text(body)
    with pytest.raises(ConfigError) as error:
        config.load(path)
    assert expected in str(error.value) and str(path) in str(error.value)


@pytest.mark.parametrize(
    ("extra", "line", "expected"),
    [
        (
            "lb_backend = web;show info",
            4,
            "[deploy] lb_backend = 'web;show info': expected letters",
        ),
        (
            "lb_backend = web\n[host:web2]\nlb_socket = /tmp/other.sock",
            6,
            "[host:web2] lb_socket differs",
        ),
    ],
)
def test_balancer_settings_are_checked_with_file_and_line(
    tmp_path: Path, extra: str, line: int, expected: str
) -> None:
    path = tmp_path / ".config"
    path.write_text(f"[deploy]\nhosts = web1, web2\nlb_socket = /tmp/h.sock\n{extra}\n")
    with pytest.raises(ConfigError) as error:
        config.load(path)
    assert f"{path}:{line}: " in str(error.value) and expected in str(error.value)


# -- {host} and {app} in paths and the restart command -----------------------------


def test_paths_and_restart_name_the_node_and_the_app(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[deploy]",
        "hosts = web1, web2",
        USER,
        "releases_dir = /srv/{host}/releases/{app}",
        "war_path = /srv/{host}/webapps/root.war",
        "pid_file = /run/jetty-{host}.pid",
        "restart = sudo systemctl restart jetty@{host} --app {app}",
    )
    nodes = config.load(path, app="my shop").nodes
    assert [n.releases_dir for n in nodes] == [
        "/srv/web1/releases/my shop",
        "/srv/web2/releases/my shop",
    ]
    assert nodes[1].war_path == "/srv/web2/webapps/root.war"
    assert nodes[0].pid_file == "/run/jetty-web1.pid"
    assert nodes[1].restart == "sudo systemctl restart jetty@web2 --app 'my shop'"


def test_an_unknown_placeholder_is_refused_with_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[deploy]", "hosts = web1", USER, "war_path = /srv/{hots}/root.war")
    assert load_error(path) == (
        f"{path}:4: [deploy] war_path = '/srv/{{hots}}/root.war': unknown placeholder "
        "{hots}; only {host}, {app} and {instance} exist"
    )


# -- instances: a host that runs several (a blue and a green Tomcat) -------------


def test_each_instance_of_each_host_is_a_node_with_its_own_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[deploy]",
        "hosts = web1, web2",
        USER,
        "instances = blue, green",
        "lb_socket = /run/haproxy.sock",
        "lb_backend = web",
        "war_path = ~/tomcat/{instance}/webapps/ROOT.war",
        "[instance:blue]",
        "status_url = http://{host}:8081/status",
        "restart = ~/bin/tomcat {instance} restart",
        "[instance:green]",
        "status_url = http://{host}:8082/status",
        "restart = ~/bin/tomcat green restart",
        "lb_server = {host}-g",
    )
    app = config.load(path, app="shop")
    assert app.hosts == ("web1", "web2")
    assert [n.label for n in app.nodes] == ["web1/blue", "web1/green", "web2/blue", "web2/green"]
    blue, green = app.nodes[2], app.nodes[3]
    assert (blue.url, green.url) == ("http://web2:8081/status", "http://web2:8082/status")
    assert blue.restart == "~/bin/tomcat blue restart"
    assert green.war_path == "~/tomcat/green/webapps/ROOT.war"
    assert (blue.lb_server, green.lb_server) == ("web2-blue", "web2-g")
    assert [n.label for n in app.select(["web1"])] == ["web1/blue", "web1/green"]


def test_a_single_instance_config_is_read_as_before(tmp_path: Path) -> None:
    node = config.load(write(tmp_path, "[deploy]", "hosts = web1", USER)).nodes[0]
    assert (node.instance, node.label) == ("", "web1")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            ["instances = blue, green", "status_url = http://{host}:8081/status"],
            ":5: [deploy] status_url: web1/blue and web1/green both use "
            "http://web1:8081/status; give each its own",
            id="the same port twice",
        ),
        pytest.param(
            ["instances = blue", "[instance:green]", "restart = x"],
            ":5: [instance:green] names an instance that is not in [deploy] instances (blue)",
            id="an instance not listed",
        ),
        pytest.param(
            ["instances = blue", "[instance:blue]", "user = other"],
            ":6: [instance:blue] user: not an instance setting",
            id="a key that is not an instance's",
        ),
        pytest.param(
            ["instances = blue, Blue!"],
            ":4: [deploy] instances = 'blue, Blue!': 'Blue!' is not a name",
            id="a bad name",
        ),
    ],
)
def test_instance_mistakes_are_refused_with_file_line_and_key(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    path = write(tmp_path, "[deploy]", "hosts = web1", USER, *lines)
    assert load_error(path).startswith(f"{path}{expected}")


# -- strategy ---------------------------------------------------------------------


def test_the_strategy_is_rolling_unless_set(tmp_path: Path) -> None:
    assert config.load(write(tmp_path, "[deploy]", "hosts = web1", USER)).strategy == "rolling"
    path = write(tmp_path, "[deploy]", "hosts = web1", USER, "strategy = Rolling")
    assert config.load(path).strategy == "rolling"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            ["strategy = parallel"],
            ":4: [deploy] strategy = parallel deploys through the Tomcat manager: set "
            "manager_user (a manager-script user) and manager_password_file",
            id="parallel without a manager user",
        ),
        pytest.param(
            ["strategy = parallel", "manager_user = deploy", "retire = sometimes"],
            ":6: [deploy] retire = 'sometimes': expected auto or manual",
            id="retire neither auto nor manual",
        ),
        pytest.param(
            ["strategy = parallel", "manager_user = m", "instances = a, b"],
            ":6: [deploy] instances: strategy = parallel runs one Tomcat per host",
            id="parallel with instances",
        ),
        pytest.param(
            ["[host:web1]", "retire_timeout = 5"],
            ":5: [host:web1] retire_timeout: retire_timeout belongs in [deploy] only",
            id="retire_timeout per host",
        ),
        pytest.param(
            ["strategy = canary"],
            ":4: [deploy] strategy = 'canary': unknown strategy; known: rolling, blue-green, "
            "parallel",
            id="unknown",
        ),
        pytest.param(
            ["[host:web1]", "strategy = rolling"],
            ":5: [host:web1] strategy: strategy belongs in [deploy] only",
            id="per host",
        ),
    ],
)
def test_strategy_mistakes_are_refused_with_file_line_and_key(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    path = write(tmp_path, "[deploy]", "hosts = web1", USER, *lines)
    assert load_error(path).startswith(f"{path}{expected}")


# -- blue-green -------------------------------------------------------------------

BLUE_GREEN = [
    "strategy = blue-green",
    "instances = blue, green",
    "lb_socket = /run/haproxy.sock",
    "lb_backend = web",
    "war_path = /srv/{instance}/ROOT.war",
]
COLOURS = [
    "[instance:blue]",
    "status_url = http://{host}:8080/status",
    "[instance:green]",
    "status_url = http://{host}:8081/status",
]


def test_a_blue_green_app_has_two_colours_on_their_own_ports(tmp_path: Path) -> None:
    app = config.load(
        write(tmp_path, "[deploy]", "hosts = web1, web2", USER, *BLUE_GREEN, *COLOURS)
    )
    assert app.strategy == "blue-green"
    assert [(n.label, n.url, n.lb_server) for n in app.nodes[:2]] == [
        ("web1/blue", "http://web1:8080/status", "web1-blue"),
        ("web1/green", "http://web1:8081/status", "web1-green"),
    ]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            [*BLUE_GREEN, "[instance:blue]", "status_url = http://{host}:8080/status"],
            ":5: [instance:green] has no status_url: colour green needs a port of its own; "
            "add [instance:green] status_url = http://{host}:PORT/status",
            id="a colour without a port",
        ),
        pytest.param(
            [*BLUE_GREEN, *COLOURS[:3], "war_path = /srv/g/ROOT.war"],
            ":11: [instance:green] has no status_url",
            id="a colour section without a port",
        ),
        pytest.param(
            [*BLUE_GREEN, "[instance:green]", "status_url = http://{host}:8081/status"],
            ":5: [instance:blue] has no status_url",
            id="a colour without a section",
        ),
        pytest.param(
            [*BLUE_GREEN, *COLOURS[:3], "status_url = http://{host}:8080/other"],
            ":12: [instance:green] status_url: web1/blue and web1/green both answer on port "
            "8080; give each colour its own port",
            id="the same port twice",
        ),
        pytest.param(
            [*BLUE_GREEN[:1], "instances = blue, green, red", *BLUE_GREEN[2:], *COLOURS],
            ":5: [deploy] instances: blue-green runs two instances on every host, 3 are named; "
            "set instances = blue, green",
            id="three colours",
        ),
        pytest.param(
            [*BLUE_GREEN[:2], *BLUE_GREEN[4:], *COLOURS],
            ":4: [deploy] strategy = blue-green switches traffic in haproxy: set lb_socket",
            id="no haproxy",
        ),
        pytest.param(
            [*BLUE_GREEN[:4], *COLOURS],
            ":1: [deploy] war_path: web1/blue and web1/green both use "
            "/var/lib/jetty9/webapps/root.war on web1; give each its own",
            id="one WAR for both colours",
        ),
        pytest.param(
            [
                *BLUE_GREEN[:2],
                "lb_socket = 127.0.0.1:9999",
                *BLUE_GREEN[3:],
                "lb_state_file = x",
                *COLOURS,
            ],
            ":9: [deploy] lb_state_file is written on haproxy's host, and "
            "127.0.0.1:9999 in lb_socket",
            id="state file beside a remote haproxy",
        ),
    ],
)
def test_blue_green_mistakes_are_refused_with_file_line_and_key(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    path = write(tmp_path, "[deploy]", "hosts = web1", USER, *lines)
    assert load_error(path).startswith(f"{path}{expected}")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            ["manager_user = deploy", "[host:web2]", "manager_user = other"],
            ":6: [host:web2] manager_user differs from web1's; set manager_user once, in [deploy]",
            id="one manager user per app",
        ),
        pytest.param(
            ["manager_url = {host}:8080/manager/text"],
            ":4: [deploy] manager_url = '{host}:8080/manager/text': must start with http://",
            id="manager URL without a scheme",
        ),
        pytest.param(
            ["manager_url = http://{host}:80x/manager/text"],
            ":4: [deploy] manager_url = 'http://{host}:80x/manager/text': not a valid URL",
            id="manager URL with a bad port",
        ),
    ],
)
def test_manager_mistakes_are_refused_with_file_line_and_key(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    path = write(tmp_path, "[deploy]", "hosts = web1, web2", USER, *lines)
    assert load_error(path).startswith(f"{path}{expected}")


def test_a_shared_key_is_parsed_once_for_every_host_and_an_override_for_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    key = config.KEYS_BY_NAME["status_timeout"]

    def counting(text: str) -> float:
        parsed.append(text)
        return float(key.parse(text))

    monkeypatch.setitem(
        config.KEYS_BY_NAME, "status_timeout", dataclasses.replace(key, parse=counting)
    )
    hosts = [f"web{i}" for i in range(50)]
    path = tmp_path / ".config"
    path.write_text(
        f"[deploy]\nhosts = {', '.join(hosts)}\nuser = u\nstatus_timeout = 3\n"
        "[host:web7]\nstatus_timeout = 2\nuser = v\n"
    )
    nodes = config.load(path).nodes
    assert sorted(parsed) == ["2", "3"]  # once for [deploy], once for web7's own
    assert [n.status_timeout for n in nodes] == [2.0 if n.host == "web7" else 3.0 for n in nodes]
    assert {n.host for n in nodes if n.user == "v"} == {"web7"}
    path.write_text(path.read_text().replace("status_timeout = 2", "status_timeout = soon"))
    with pytest.raises(ConfigError, match=r":6: \[host:web7\] status_timeout = 'soon'"):
        config.load(path)


def test_without_an_ssh_config_every_host_is_its_own_address_as_the_running_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/config
    path = tmp_path / ".config"
    path.write_text("[deploy]\nhosts = web1, web2\n[host:web2]\nuser = v\nport = 2222\n")
    nodes = config.load(path).nodes
    assert [(n.address, n.user, n.port) for n in nodes] == [
        ("web1", getpass.getuser(), 22),
        ("web2", "v", 2222),
    ]
