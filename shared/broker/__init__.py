"""Broker port and its adapters: RabbitMQ, SQLite queues, in-memory."""

from __future__ import annotations

from shared.broker.port import (  # noqa: F401 - the package's public names
    Broker,
    ConsumeOptions,
    Delivery,
    Outgoing,
    PublishError,
    Rejection,
)


def connect(url: str, **options) -> Broker:
    """The adapter a broker URL names: ``sqlite:///file`` (the embedded mode's durable queues),
    ``memory://`` (in-process, nothing kept) or ``amqp(s)://``, one node or the nodes of a cluster
    separated by commas (``options`` go to RabbitBroker)."""
    if url.startswith("memory://"):
        from shared.broker.memory import MemoryBroker

        return MemoryBroker()
    if url.startswith("sqlite://"):
        from shared.broker.sqlite import SQLiteBroker

        return SQLiteBroker(url.removeprefix("sqlite:///"))
    from shared.extras import require_for_url

    require_for_url("WCML_BROKER_URL", url)  # pika comes with the amqp extra
    from shared.broker.rabbitmq import RabbitBroker

    return RabbitBroker(url, **options)
