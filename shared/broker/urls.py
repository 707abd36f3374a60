"""A broker URL may list the nodes of one RabbitMQ cluster: AMQP URLs separated by commas.

``amqp://u:p@h1:5672/%2F,amqp://u:p@h2:5672/%2F``: any node serves every queue of a cluster, so a
client that loses its node connects to another one. The entries must name one vhost (a cluster
serves the same vhosts on every node); a comma in a password is written ``%2C``. No message here
shows a password.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

AMQP_SCHEMES = ("amqp", "amqps")


class BrokerUrlError(ValueError):
    """The list is malformed; the message is one line, without credentials."""


def split_broker_urls(value: str) -> tuple[str, ...]:
    """The addresses ``value`` lists, in order: one URL of any scheme, or several AMQP URLs."""
    entries = [part.strip() for part in value.split(",")]
    if len(entries) == 1:
        return (entries[0],)
    total = len(entries)
    vhosts: dict[str, str] = {}
    nodes: set[tuple[str, int]] = set()
    for i, entry in enumerate(entries, 1):
        where = f"entry {i} of {total}"
        if not entry:
            raise BrokerUrlError(f"{where} is empty (list AMQP URLs separated by single commas)")
        parsed = urlparse(entry)
        if parsed.scheme not in AMQP_SCHEMES:
            raise BrokerUrlError(f"{where}: scheme {parsed.scheme or '(none)'!r} cannot be listed; only "
                                 "amqp:// and amqps:// URLs of one RabbitMQ cluster can")
        if not parsed.hostname:
            raise BrokerUrlError(f"{where} names no host")
        try:
            port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
        except ValueError:
            raise BrokerUrlError(f"{where} ({parsed.hostname}) has a malformed port") from None
        if (parsed.hostname, port) in nodes:
            raise BrokerUrlError(f"{where} repeats {parsed.hostname}:{port}")
        nodes.add((parsed.hostname, port))
        vhosts[f"{parsed.hostname}:{port}"] = unquote(parsed.path[1:]) or "/"
    if len(set(vhosts.values())) > 1:
        shown = ", ".join(f"{node} {vhost!r}" for node, vhost in vhosts.items())
        raise BrokerUrlError(f"the entries name different vhosts ({shown}); one cluster, one vhost")
    return tuple(entries)


def redacted(url: str) -> str:
    """``scheme://host:port/vhost`` of one address: what a log line may say about it."""
    parsed = urlparse(url)
    try:
        port = f":{parsed.port}" if parsed.port else ""
    except ValueError:
        port = ""
    return f"{parsed.scheme}://{parsed.hostname or ''}{port}{parsed.path}"
