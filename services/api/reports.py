"""What the read models share: reading a batch of an owner's reports, and keeping the newest of each.

A report that is not the record it should be (a missing field, a wrong type, a value outside its
declaration: ``shared.records.check``), or whose times cannot be read, is dead-lettered with its
reason while the rest of its batch is kept. Of several reports of one record, in a batch and in
the table, the newest by the record's order wins (the statement's upsert compares it with the row).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from shared.broker.port import Delivery, Rejection
from shared.messages import decode_each
from shared.records import InvalidValue, check
from shared.times import TimeFormatError

R = TypeVar("R")


def readable(deliveries: list[Delivery], kind: type[R], row: Callable[[R], dict[str, Any]]
             ) -> tuple[list[R], list[Rejection]]:
    """The reports of ``kind`` in ``deliveries`` whose ``row`` can be built, and a rejection for each
    other item, alone."""
    records, rejections = [], []
    for delivery in deliveries:
        for item in decode_each(delivery.body, kind):
            if item.error is not None:
                reason = " ".join(item.error.split())[:300]  # one line
                rejections.append(Rejection(delivery.carrying(item.alone), reason))
                continue
            try:
                check(item.message)
                row(item.message)  # its times are readable
            except (InvalidValue, TimeFormatError) as exc:
                rejections.append(Rejection(delivery.carrying(item.alone), f"{item.message.kind}: {exc}"))
            else:
                records.append(item.message)
    return records, rejections


def keep_newest(engine: Engine, statement: Callable[[Any], Any], records: Iterable[R], *,
                key: Callable[[R], Hashable], order: Callable[[R], int],
                row: Callable[[R], dict[str, Any]]) -> None:
    """Each record's newest report of ``records`` (by ``order``), written by ``statement`` (an upsert,
    built per connection, that keeps a row's newer version): one row per key in a statement, as an
    upsert updates a row once."""
    newest: dict[Hashable, R] = {}
    for record in records:
        if key(record) not in newest or order(newest[key(record)]) < order(record):
            newest[key(record)] = record
    if newest:
        with engine.begin() as conn:
            conn.execute(statement(conn), [row(r) for r in newest.values()])
