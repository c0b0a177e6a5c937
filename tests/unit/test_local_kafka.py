"""The local Kafka's layout: one node exactly as it always was, or a 3-node KRaft cluster on loopback
with replication factor 3 and min.insync.replicas 2 everywhere, internal topics included."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from shared.settings import KafkaSettings, LocalSettings
from shared.topics import CHECKPOINTS_TOPIC, events_topic
from zhengming.local import LocalKafka, _topic_configs


@pytest.fixture(autouse=True)
def _no_zm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ZM_"):
            monkeypatch.delenv(name)


def kafka(**values: Any) -> KafkaSettings:
    return KafkaSettings.model_validate(values)


def local(tmp_path: Path) -> LocalSettings:
    return LocalSettings(root=tmp_path)


def props(lines: list[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in lines if line)


def test_one_node_is_the_default_and_keeps_its_files_and_settings(tmp_path: Path) -> None:
    settings = kafka()
    assert settings.nodes == 1
    assert settings.bootstrap == "127.0.0.1:19092"
    assert settings.bootstrap_list == ["127.0.0.1:19092"]
    assert (settings.replication_factor, settings.min_insync_replicas) == (1, 1)
    broker = LocalKafka(local(tmp_path), settings)
    [node] = broker.nodes
    assert node.name == "kafka"
    assert node.pid_file == broker.pid_file == tmp_path / "run" / "kafka.pid"
    assert node.config == broker.config == tmp_path / "kafka" / "server.properties"
    assert node.log_file == broker.log_file == tmp_path / "logs" / "kafka.log"
    assert node.data == tmp_path / "kafka" / "data"
    p = props(broker.properties(node))
    assert p["node.id"] == "1"
    assert p["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
        "min.insync.replicas",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
    ):
        assert p[key] == "1", key


def test_three_nodes_each_broker_and_controller_on_ports_two_apart(tmp_path: Path) -> None:
    settings = kafka(nodes=3, port=24092, controller_port=24093)
    assert settings.bootstrap == "127.0.0.1:24092,127.0.0.1:24094,127.0.0.1:24096"
    assert settings.bootstrap_list == ["127.0.0.1:24092", "127.0.0.1:24094", "127.0.0.1:24096"]
    assert [settings.node_ports(i) for i in (1, 2, 3)] == [(24092, 24093), (24094, 24095), (24096, 24097)]
    broker = LocalKafka(local(tmp_path), settings)
    assert [n.name for n in broker.nodes] == ["kafka-1", "kafka-2", "kafka-3"]
    assert len({n.data for n in broker.nodes}) == len({n.pid_file for n in broker.nodes}) == 3
    assert broker.node(2).data == tmp_path / "kafka" / "data-2"
    assert broker.node(2).pid_file == tmp_path / "run" / "kafka-2.pid"
    assert tmp_path / "kafka" / "data" not in {n.data for n in broker.nodes}  # never the single node's
    p = props(broker.properties(broker.node(2)))
    assert p["node.id"] == "2"
    assert p["process.roles"] == "broker,controller"
    assert p["controller.quorum.voters"] == "1@127.0.0.1:24093,2@127.0.0.1:24095,3@127.0.0.1:24097"
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:24094,CONTROLLER://127.0.0.1:24095"
    assert p["advertised.listeners"] == "PLAINTEXT://127.0.0.1:24094"
    assert p["log.dirs"] == str(tmp_path / "kafka" / "data-2")
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert p[key] == "3", key
    for key in (
        "min.insync.replicas",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
    ):
        assert p[key] == "2", key
    with pytest.raises(ValueError, match=r"nodes 1\.\.3"):
        broker.node(4)


def test_replication_factor_is_at_most_three_and_min_isr_two_only_with_three_replicas() -> None:
    assert [
        (kafka(nodes=n).replication_factor, kafka(nodes=n).min_insync_replicas) for n in (1, 2, 3, 5)
    ] == [
        (1, 1),
        (2, 1),
        (3, 2),
        (3, 2),
    ]


def test_an_explicit_bootstrap_wins_and_is_split_for_faststream() -> None:
    settings = kafka(nodes=3, bootstrap_servers="kafka-a:9092, kafka-b:9092")
    assert settings.bootstrap == "kafka-a:9092, kafka-b:9092"
    assert settings.bootstrap_list == ["kafka-a:9092", "kafka-b:9092"]


def test_topic_configs_the_checkpoints_size_and_the_cluster_min_isr() -> None:
    one, three = kafka(), kafka(nodes=3)
    assert _topic_configs(CHECKPOINTS_TOPIC, one) == {"max.message.bytes": str(16 * 1024 * 1024)}
    assert _topic_configs(events_topic("331122", "intake"), one) == {}
    assert _topic_configs(CHECKPOINTS_TOPIC, three) == {
        "max.message.bytes": str(16 * 1024 * 1024),
        "min.insync.replicas": "2",
    }
    assert _topic_configs(events_topic("331122", "intake"), three) == {"min.insync.replicas": "2"}


def test_a_cluster_does_not_start_over_a_running_single_node_of_the_same_root(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "kafka.pid").write_text(str(os.getpid()))  # a live process holding the single node's ports
    broker = LocalKafka(local(tmp_path), kafka(nodes=3))
    with pytest.raises(RuntimeError, match="zhengming down"):
        broker.start()
    assert not list(run.glob("kafka-*.pid"))


def test_stop_with_nothing_running_tidies_stale_pid_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "kafka-2.pid").write_text("999999999")
    assert LocalKafka(local(tmp_path), kafka()).stop() is False
    assert not list(run.glob("kafka*.pid"))
