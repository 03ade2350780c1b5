"""Broker settings: the queue type, and a list of node URLs (kombu's failover syntax)."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Settings
from service.messaging.broker import broker_urls, connect
from service.messaging.topology import all_queues, work_queues

KEY = "tA9c-QmX2vL7pR4sZ8yWbN1eK6uJ0hGfD3oVi5Ct"
NODES = ("amqp://alliance:pw@mq-1:5672//;amqp://alliance:pw@mq-2:5672//;"
         "amqp://alliance:pw@mq-3:5672//")


def settings(**env) -> Settings:
    return Settings.from_env({"ALLIANCE_SECRET_KEY": KEY, **env})


def test_queue_type_defaults_to_classic():
    assert settings().rabbitmq_queue_type == "classic"
    assert settings(ALLIANCE_BROKER_URL=NODES).rabbitmq_queue_type == "classic"


def test_quorum_is_accepted_on_rabbitmq_in_any_case():
    chosen = settings(ALLIANCE_BROKER_URL=NODES, ALLIANCE_RABBITMQ_QUEUE_TYPE=" Quorum ")
    assert chosen.rabbitmq_queue_type == "quorum"


@pytest.mark.parametrize("value", ["mirrored", "stream", "quorum,classic"])
def test_an_unknown_queue_type_is_refused_by_name(value):
    expected = f"ALLIANCE_RABBITMQ_QUEUE_TYPE must be classic or quorum, got '{value}'"
    with pytest.raises(ConfigError, match=expected):
        settings(ALLIANCE_BROKER_URL=NODES, ALLIANCE_RABBITMQ_QUEUE_TYPE=value)


def test_quorum_on_the_embedded_broker_is_refused():
    with pytest.raises(ConfigError, match="needs RabbitMQ"):
        settings(ALLIANCE_RABBITMQ_QUEUE_TYPE="quorum")


def test_a_list_of_node_urls_is_split_and_kept_whole_in_the_kombu_url():
    chosen = settings(ALLIANCE_BROKER_URL=NODES)
    assert chosen.kombu_url == NODES
    assert broker_urls(NODES) == [f"amqp://alliance:pw@mq-{n}:5672//" for n in (1, 2, 3)]
    assert broker_urls(" amqp://a// ; ;amqp://b// ") == ["amqp://a//", "amqp://b//"]


def test_connect_knows_every_node_and_starts_at_any_of_them():
    firsts = set()
    for _ in range(60):
        connection = connect(NODES)
        assert sorted(connection.alt) == sorted(broker_urls(NODES))
        assert connection.transport_options == {"confirm_publish": True}
        firsts.add(connection.hostname)
    assert firsts == {"mq-1", "mq-2", "mq-3"}


@pytest.mark.parametrize("url", ["amqp://a//;sqla+sqlite:///q.db", "amqp://a//;redis://b",
                                 "   ;  "])
def test_a_list_that_is_not_all_amqp_is_refused(url):
    with pytest.raises(ValueError):
        broker_urls(url)


def test_quorum_queues_carry_a_delivery_limit_and_keep_dead_lettering():
    for queue in work_queues("quorum"):
        assert queue.queue_arguments["x-queue-type"] == "quorum"
        assert queue.queue_arguments["x-dead-letter-exchange"] == "alliance.dead"
        assert queue.queue_arguments["x-delivery-limit"] > 0
    assert all("x-queue-type" not in (q.queue_arguments or {}) for q in all_queues("classic"))
    with pytest.raises(ValueError):
        work_queues("stream")


def test_default_consumers_follow_the_cpus_within_the_connection_pool():
    from service.runtime import default_consumers

    assert [default_consumers(cpus) for cpus in (1, 2, 4, 8, 64)] == [4, 8, 16, 16, 16]


def test_a_cluster_is_described_by_its_nodes_without_passwords():
    from service.messaging.broker import describe_broker

    described = describe_broker(NODES)
    assert "pw" not in described
    assert all(f"mq-{n}:5672" in described for n in (1, 2, 3))
