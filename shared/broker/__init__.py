"""Broker port, its two adapters, and the pipeline's topology."""

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
    """The adapter a broker URL names: ``memory://`` or ``amqp(s)://`` (``options`` go to RabbitBroker)."""
    if url.startswith("memory://"):
        from shared.broker.memory import MemoryBroker

        return MemoryBroker()
    from shared.broker.rabbitmq import RabbitBroker

    return RabbitBroker(url, **options)
