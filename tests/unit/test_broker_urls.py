"""WCML_BROKER_URL as a list of a RabbitMQ cluster's nodes: parsing, settings errors, node order."""

import time

import pika.exceptions
import pytest

from shared.broker.port import Queue
from shared.broker.rabbitmq import RabbitBroker, node_parameters, queue_arguments
from shared.broker.urls import BrokerUrlError, redacted, split_broker_urls
from shared.settings import SettingsError, load

CLUSTER = "amqp://u:secret@h1:5681/wcml,amqp://u:secret@h2:5682/wcml, amqp://u:secret@h3:5683/wcml"


def test_one_url_is_a_list_of_one_whatever_its_scheme():
    assert split_broker_urls("amqp://g:g@h:5672/") == ("amqp://g:g@h:5672/",)
    assert split_broker_urls("memory://") == ("memory://",)


def test_a_cluster_is_listed_with_commas_in_order():
    assert split_broker_urls(CLUSTER) == ("amqp://u:secret@h1:5681/wcml", "amqp://u:secret@h2:5682/wcml",
                                          "amqp://u:secret@h3:5683/wcml")


@pytest.mark.parametrize("value, problem", [
    ("amqp://h1/,", "entry 2 of 2 is empty"),
    ("amqp://h1/,,amqp://h2/", "entry 2 of 3 is empty"),
    ("amqp://h1/,memory://", "entry 2 of 2: scheme 'memory' cannot be listed"),
    ("amqp://h1/,h2:5672", "entry 2 of 2: scheme"),
    ("amqp://h1/,amqp:///", "entry 2 of 2 names no host"),
    ("amqp://u:pw@h1:5672/,amqp://u:pw@h2:56x2/", "entry 2 of 2 (h2) has a malformed port"),
    ("amqp://h1:5672/,amqp://h1/", "entry 2 of 2 repeats h1:5672"),
    ("amqp://u:pw@h1/a,amqp://u:pw@h2/b", "different vhosts (h1:5672 'a', h2:5672 'b')"),
])
def test_a_malformed_list_says_which_entry_and_why_without_the_password(value, problem):
    with pytest.raises(BrokerUrlError) as err:
        split_broker_urls(value)
    assert problem in str(err.value) and "pw" not in str(err.value) and "\n" not in str(err.value)


def test_settings_name_the_variable_in_one_line(tmp_path):
    with pytest.raises(SettingsError) as err:
        load({"WCML_BROKER_URL": "amqp://u:pw@h1/,,amqp://u:pw@h2/", "WCML_VAR_DIR": str(tmp_path)},
             needs=("WCML_BROKER_URL",))
    assert err.value.variable == "WCML_BROKER_URL"
    assert str(err.value) == ("WCML_BROKER_URL: entry 2 of 3 is empty (list AMQP URLs separated by single "
                              "commas)")
    with pytest.raises(SettingsError, match="WCML_BROKER_URL: scheme 'redis'"):
        load({"WCML_BROKER_URL": "redis://h1"}, needs=("WCML_BROKER_URL",))


def test_settings_keep_the_list_normalised():
    s = load({"WCML_BROKER_URL": CLUSTER}, needs=("WCML_BROKER_URL",))
    assert s.broker_url == CLUSTER.replace(", ", ",") and not s.embedded


def test_a_log_line_shows_a_node_without_its_credentials():
    assert redacted("amqp://u:secret@h2:5682/wcml") == "amqp://h2:5682/wcml"


def test_quorum_queues_leave_their_replica_count_to_the_broker():
    args = queue_arguments(Queue("tasks.x", ()))
    assert args["x-queue-type"] == "quorum" and "x-quorum-initial-group-size" not in args


def test_each_node_is_tried_once_with_short_timeouts_unless_the_url_says_otherwise():
    params = node_parameters("amqp://g:g@h1:5681/")
    assert (params.connection_attempts, params.socket_timeout, params.stack_timeout) == (1, 3.0, 10.0)
    params = node_parameters("amqp://g:g@h1:5681/?connection_attempts=4&socket_timeout=9")
    assert (params.connection_attempts, params.socket_timeout) == (4, 9.0)


def test_one_connection_attempt_tries_every_node_and_fails_fast_when_none_answers():
    broker = RabbitBroker("amqp://g:g@127.0.0.1:1/,amqp://g:g@127.0.0.1:2/,amqp://g:g@127.0.0.1:3/",
                          connect_attempts=1)
    started = time.monotonic()
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        broker._connect()
    assert time.monotonic() - started < 3  # refused at once: no node costs a timeout


def test_a_broken_connection_moves_the_next_attempt_past_its_node():
    broker = RabbitBroker(CLUSTER)
    broker._first = 1

    class Broken:  # the part of a pika connection the broker reads: the parameters that answered
        class _impl:  # noqa: N801
            params = broker._nodes[1]

    broker._lost(Broken)
    assert broker._first == 2
    broker._lost(Broken)  # another thread's report of the same node: already moved past it
    assert broker._first == 2
