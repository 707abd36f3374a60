"""Recover what GitHub failed to deliver: GitHub never retries a failed delivery by itself; it keeps
a webhook's deliveries about 3 days and redelivers one when asked (with the same X-GitHub-Delivery).
A repository's webhook is read with a token; a GitHub App's own webhook with the App's JWT.

A delivery is missed when no attempt of its GUID is in the event log: it failed, timed out, or was
answered by something other than this ingest. Pings are never logged (ingest answers them ``pong``)
and are left alone. Each missed GUID is asked for once, by its latest attempt; what is in the log is
never asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.ingest.event_log import EventLog
from shared.github import GitHubClient, Hook


@dataclass
class RedeliveryReport:
    hook: Hook
    attempts: int = 0  # deliveries GitHub listed (every attempt, redeliveries included)
    guids: int = 0  # distinct X-GitHub-Delivery values among them
    in_log: int = 0
    pings: int = 0
    failed: int = 0  # GUIDs none of whose attempts GitHub saw answered 2xx
    asked: list[str] = field(default_factory=list)  # GUIDs asked for again, now
    asked_before: int = 0  # missed, but asked for earlier by this process (--watch)

    def summary(self) -> str:
        return (f"{self.hook.name}: {self.attempts} attempt(s) of {self.guids} "
                f"delivery(ies); {self.in_log} in the event log, {self.pings} ping(s); "
                f"{len(self.asked)} missed, asked for again"
                + (f": {', '.join(self.asked)}" if self.asked else "")
                + (f"; {self.asked_before} asked for before" if self.asked_before else ""))


def missed(deliveries: list[dict[str, Any]], logged: set[str]) -> dict[str, dict[str, Any]]:
    """Per GUID not in the log (pings aside), its latest attempt."""
    latest: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        guid = d.get("guid")
        if not guid or d.get("event") == "ping" or guid in logged:
            continue
        when = str(d.get("delivered_at") or "")
        if guid not in latest or when > str(latest[guid].get("delivered_at") or ""):
            latest[guid] = d
    return latest


def redeliver_missed(client: GitHubClient, event_log: EventLog, hook: Hook,
                     asked: set[str] | None = None) -> RedeliveryReport:
    """One pass: list, compare with the log, ask for each missed GUID once (``asked`` spans passes)."""
    asked = set() if asked is None else asked
    report = RedeliveryReport(hook)
    deliveries = client.hook_deliveries(hook)
    guids = {d["guid"] for d in deliveries if d.get("guid")}
    logged = event_log.known(sorted(guids))
    report.attempts, report.guids, report.in_log = len(deliveries), len(guids), len(logged)
    report.pings = len({d["guid"] for d in deliveries if d.get("event") == "ping" and d.get("guid")})
    ok = {d["guid"] for d in deliveries if 200 <= int(d.get("status_code") or 0) < 300}
    report.failed = len(guids - ok)
    for guid, attempt in sorted(missed(deliveries, logged).items()):
        if guid in asked:
            report.asked_before += 1
            continue
        client.redeliver(hook, attempt["id"])
        asked.add(guid)
        report.asked.append(guid)
    return report
