"""The broker's own ceiling: publish (asynchronous confirms) and consume (prefetch 1000, multiple acks)
of N persistent 1.5 KB messages through one quorum queue, in two processes, with plain pika.

    .venv/bin/python -m bench.raw_broker AMQP_URL N     (prints messages/s as JSON)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pika

QUEUE = "bench.raw"
BODY = b"x" * 1500


def publish(url: str, count: int) -> None:
    from shared.broker import Outgoing
    from shared.broker.rabbitmq import RabbitBroker

    broker = RabbitBroker(url)  # the same confirm path the pipeline uses, without its messages
    for start in range(0, count, 5000):
        broker.publish([Outgoing("", QUEUE, BODY) for _ in range(min(5000, count - start))])
    broker.close()


def consume(url: str, count: int) -> float:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1000)
    received, started = 0, None
    for method, _props, _body in channel.consume(QUEUE, inactivity_timeout=30):
        if method is None:
            break
        started = started or time.monotonic()
        received += 1
        if received % 500 == 0 or received == count:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if received == count:
            break
    connection.close()
    return received


def run(url: str, count: int) -> dict:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_delete(QUEUE)
    channel.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    connection.close()
    start = time.monotonic()
    publisher = subprocess.Popen([sys.executable, "-m", "bench.raw_broker", "--publish", url, str(count)])
    received = consume(url, count)
    elapsed = time.monotonic() - start
    publisher.wait()
    return {
        "messages": count,
        "received": received,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(received / elapsed),
    }


if __name__ == "__main__":
    if sys.argv[1] == "--publish":
        publish(sys.argv[2], int(sys.argv[3]))
    else:
        print(json.dumps(run(sys.argv[1], int(sys.argv[2]))))
