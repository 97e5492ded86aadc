"""The registry of strategies: a strategy owns what is its own, and code outside
`fabfile.engine.strategies` asks it rather than comparing its name.

(What every strategy does to a cluster: test_contract.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from fabfile.app import config
from fabfile.app.pace import Pace, parse_batch
from fabfile.cluster.balancer import Rotation
from fabfile.engine import strategies
from fabfile.engine.steps import Steps
from fabfile.engine.strategies.contract import Setup
from fabfile.engine.strategies.rolling import Rolling
from fabfile.engine.target import Target
from fabfile.errors import ConfigError, UsageError
from tests.reverse import Reverse, register
from tests.unit.test_contract import HOSTS, Terms

FABFILE = Path(strategies.__file__).resolve().parents[2]
KEY_TABLE = "app/keys.py"  # the key's documentation and default name one
# What commands/ imports or passes until it asks the strategy; shrink as it does.


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / ".config"
    path.write_text("\n".join(["[deploy]", "hosts = web1, web2", "user = u", *lines]) + "\n")
    return path


def test_config_knows_no_strategy_and_the_registry_refuses_one_it_does_not_know(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "strategy = Canary")
    assert config.load(path).strategy == "canary"  # app/ reads a name, checks none
    with pytest.raises(ConfigError) as caught:
        strategies.load(path)
    assert str(caught.value) == (
        f"{path}:4: [deploy] strategy = 'Canary': unknown strategy; known: rolling, "
        "blue-green, parallel"
    )


def test_a_strategy_is_one_module_and_one_registry_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "strategy = reverse")
    with pytest.raises(
        ConfigError, match=r"unknown strategy; known: rolling, blue-green, parallel$"
    ):
        strategies.load(path)
    register(monkeypatch)
    with pytest.raises(ConfigError) as caught:  # its own requirement, with file and line
        strategies.load(path)
    assert str(caught.value) == (
        f"{path}:4: [deploy] strategy = reverse takes each node out of haproxy: set lb_socket "
        "and lb_backend in [deploy]"
    )
    loaded = strategies.load(
        write(tmp_path, "strategy = reverse", "lb_socket = /s", "lb_backend = b")
    )
    assert strategies.kind(loaded) is Reverse


def test_the_test_strategy_goes_last_node_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(monkeypatch)
    world = Terms(Reverse.name).world(tmp_path, monkeypatch)
    world.run()
    restarted = [where for where, what in world.cluster.events if what == "restart"]
    assert restarted == list(reversed(HOSTS))
    assert world.balancer.most_out == 1


def test_a_canary_counts_what_the_strategy_counts(tmp_path: Path) -> None:
    lines = ["lb_socket = /s", "lb_backend = web", "war_path = /w/{instance}.war", "canary = 2"]
    colours = ["[instance:blue]", "status_url = http://{host}:8081/status"]
    colours += ["[instance:green]", "status_url = http://{host}:8082/status"]
    rolling = write(tmp_path, "instances = blue, green", *lines, *colours)
    assert strategies.load(rolling).pace.canary == 2  # 4 nodes: 2 wait for the verdict
    blue_green = write(
        tmp_path, "strategy = blue-green", "instances = blue, green", *lines, *colours
    )
    with pytest.raises(ConfigError) as caught:
        strategies.load(blue_green)
    assert str(caught.value) == (
        f"{blue_green}:9: [deploy] canary = 2: the cluster has 2 hosts, and a canary must "
        "leave some to wait for its verdict; set canary below 2"
    )


def test_a_strategys_advice_comes_before_the_checks_across_nodes(tmp_path: Path) -> None:
    """Without the strategy's rules the same file is refused for what the strategy
    explains better; with them, the strategy speaks first."""
    lines = ["strategy = blue-green", "instances = blue, green", "lb_socket = /s"]
    path = write(tmp_path, *lines, "lb_backend = web", "war_path = /w/{instance}.war")
    with pytest.raises(ConfigError, match="both use http://web1:8080/status"):
        config.load(path)
    with pytest.raises(ConfigError, match=r":5: \[instance:blue\] has no status_url"):
        strategies.load(path)


def test_a_command_of_one_strategy_refuses_other_apps_in_its_words(tmp_path: Path) -> None:
    rolling = strategies.load(write(tmp_path))
    with pytest.raises(UsageError) as caught:
        strategies.require(rolling, "switch", "deploy switch")
    assert str(caught.value) == (
        f"deploy switch is for blue/green apps; {rolling.path} has strategy = rolling"
    )
    with pytest.raises(UsageError, match=r"^deploy retire is for parallel apps; "):
        strategies.require(rolling, "retire", "deploy retire")
    parallel = strategies.load(write(tmp_path, "strategy = parallel", "manager_user = m"))
    strategies.require(parallel, "retire", "deploy retire")


def test_the_key_tables_default_is_a_registered_strategy() -> None:
    default = config.KEYS_BY_NAME["strategy"].default
    assert default in strategies.REGISTRY


def test_every_strategy_is_registered_under_its_own_name() -> None:
    assert {name: kind.name for name, kind in strategies.REGISTRY.items()} == {
        name: name for name in strategies.REGISTRY
    }


def _names_a_strategy(path: Path) -> bool:
    """A string that is a strategy's name, or a name of commands/'s constants for them."""
    names = set(strategies.REGISTRY)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and node.value in names:
            return True
        if isinstance(node, ast.Name) and node.id in ("BLUE_GREEN", "PARALLEL"):
            return True
        if isinstance(node, ast.alias) and node.name in ("BLUE_GREEN", "PARALLEL"):
            return True
    return False


def test_outside_the_strategies_only_the_key_table_names_one() -> None:
    naming = {
        str(path.relative_to(FABFILE))
        for path in FABFILE.rglob("*.py")
        if "strategies" not in path.parts and _names_a_strategy(path)
    }
    assert naming <= {KEY_TABLE}, naming - {KEY_TABLE}
    assert KEY_TABLE in naming  # the check reads what it should


def _rolling_steps(batch: str, canary: int, serving: int, nodes: int) -> SimpleNamespace:
    ok, down = SimpleNamespace(ok=True), SimpleNamespace(ok=False)
    targets = [
        SimpleNamespace(host=f"web{i}", status=ok if i <= serving else down)
        for i in range(1, nodes + 1)
    ]
    pace = Pace(batch=parse_batch(batch), canary=canary)
    return SimpleNamespace(targets=targets, pace=pace, notes=[])


@pytest.mark.parametrize(
    ("batch", "canary", "serving", "warned"),
    [
        ("3", 0, 3, True),  # every serving node out at once
        ("100%", 0, 3, True),
        ("2", 0, 3, False),  # one keeps serving
        ("3", 1, 3, False),  # the canary goes alone, the other two while it serves
        ("3", 0, 1, False),  # one serving node: no batch size helps
    ],
)
def test_rolling_warns_when_one_batch_takes_every_serving_node_out(
    batch: str, canary: int, serving: int, warned: bool
) -> None:
    steps = _rolling_steps(batch, canary, serving, 3)
    steps.note = steps.notes.append
    strategy = Rolling(Setup(rotation=cast(Rotation, object())))
    strategy._all_at_once(cast(Steps, steps), cast(list[Target], steps.targets))
    said = [note for note in steps.notes if note.startswith("warning: batch = ")]
    assert bool(said) is warned, steps.notes
    if warned:
        assert "takes all 3 serving nodes out of rotation at once" in said[0]
