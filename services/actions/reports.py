"""Reports of actions: every record the ledger makes or settles, as an ``ActionRecord`` message on
``wcml.state`` (the query API keeps them in its read model).

A batch's records are reported before its results are acknowledged: the records of every action its
predictions ask for, as they stand after the claim (those made before included), then each settled
one. A process that dies between a commit and its report has its results delivered again, and
their records are reported again as they then stand. A report's message id is
``action-<id>-<state>``: a record reported twice is the same message; a reader keeps a settled
record over a pending one (``shared.actions.revision``), so order does not matter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shared.broker import Broker, Outgoing
from shared.messages import STATE_EXCHANGE, STATE_KEYS, ActionRecord, encode

Report = Callable[[Sequence[ActionRecord]], None]  # returns once the broker has them; else raises


def outgoing(record: ActionRecord) -> Outgoing:
    return Outgoing(STATE_EXCHANGE, STATE_KEYS[ActionRecord], encode(record),
                    message_id=f"action-{record.id}-{record.state}")


def to_broker(broker: Broker) -> Report:
    def report(records: Sequence[ActionRecord]) -> None:
        if records:
            broker.publish([outgoing(r) for r in records])

    return report
