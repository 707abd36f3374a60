"""Print the README's benchmark table from bench/results/latest/*.json."""

from __future__ import annotations

import json

from bench.common import RESULTS


def _load(name: str) -> dict | None:
    path = RESULTS / "latest" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows() -> list[tuple[str, str, str, str]]:
    out = []
    ingest = _load("ingest")
    if ingest:
        ratio = ingest["ratio_to_bare"]
        out.append(
            (
                "ingest: signed webhooks accepted into PostgreSQL (2 workers)",
                f"{ingest['ingest']['requests_per_s']:.0f}/s; bare HMAC app "
                f"{ingest['bare_hmac_202']['requests_per_s']:.0f}/s; ratio {ratio:.2f}",
                ">= 0.5 of bare",
                "met" if ratio >= 0.5 else "not met",
            )
        )
    latency = _load("latency")
    for run in (latency or {}).get("runs", []):
        goal = "p99 < 100 ms" if run["offered_per_s"] == 100 else "(reported)"
        met = ("met" if run["p99_ms"] < 100 else "not met") if run["offered_per_s"] == 100 else "-"
        out.append(
            (
                f"end-to-end webhook -> readable prediction at {run['offered_per_s']}/s",
                f"p50 {run['p50_ms']} ms, p95 {run['p95_ms']} ms, p99 {run['p99_ms']} ms "
                f"({run['readable']}/{run['sent']} readable)",
                goal,
                met,
            )
        )
    replay = _load("replay")
    if replay:
        ok = replay["events_per_s"] >= 2000 and replay["ratio_to_raw_broker"] >= 0.3
        out.append(
            (
                f"replay: {replay['events']:,} logged events to stored predictions (2 tasks)",
                f"{replay['events_per_s']}/s; raw broker {replay['raw_broker']['messages_per_s']}/s; "
                f"ratio {replay['ratio_to_raw_broker']:.2f}" + _latest_documents(replay),
                ">= 2,000/s and >= 0.3 of raw",
                "met" if ok else "not met",
            )
        )
    predictor = _load("predictor")
    if predictor:
        batch = predictor["batch_issues_per_second"]
        out.append(
            (
                "predictor (light model: the packaged starter), one process",
                f"one issue p50 {predictor['single_issue_ms']['p50']} ms, p99 "
                f"{predictor['single_issue_ms']['p99']} ms; batches of 32: {batch['32']:.0f}/s, of 256: "
                f"{batch['256']:.0f}/s; a fresh process per issue (the original design): "
                f"{predictor['fresh_process_per_issue_ms']:.0f} ms, "
                f"{predictor['fresh_process_vs_in_process_single']:.0f}x one in-process prediction",
                "single < 10 ms; thousands/s per core",
                "met" if predictor["single_issue_ms"]["p99"] < 10 and batch["256"] >= 1000 else "not met",
            )
        )
        broker = predictor.get("through_broker")
        if broker:
            rate = broker["issues_per_second"]
            out.append(
                (
                    "predictor through RabbitMQ (light model), one process",
                    f"{rate}/s over {broker['tasks']:,} queued tasks; in-process ceiling (batches of 256) "
                    f"{batch['256']:.0f}/s; ratio {rate / batch['256']:.2f}",
                    ">= 5,000/s",
                    "met" if rate >= 5000 else "not met",
                )
            )
    store = _load("store_queries")
    if store:
        worst = store["worst_p99_ms"]
        lookup = store["latency"]["issue lookup"]
        out.append(
            (
                f"store queries on {store['rows']:,} predictions in PostgreSQL",
                f"issue lookup p50 {lookup['p50_ms']} ms, p99 {lookup['p99_ms']} ms; worst filtered page p99 "
                f"{worst} ms ({len(store['latency'])} query shapes)",
                "p99 < 50 ms",
                "met" if worst < 50 else "not met",
            )
        )
    for name in ("latency", "replay"):
        doc = _load(name)
        if doc and doc.get("peak_rss_mib"):
            out.append(
                (
                    f"peak RSS per service ({name} run)",
                    ", ".join(f"{k} {v:.0f} MiB" for k, v in doc["peak_rss_mib"].items()),
                    "-",
                    "-",
                )
            )
    return out


def _latest_documents(replay: dict) -> str:
    """When the follower had written every issue's latest document, beside when the rows were in."""
    seconds = replay.get("latest_documents_seconds")
    if not seconds:
        return ""
    return (f"; every latest document written after {seconds} s ({replay['events'] / seconds:.0f} events/s; "
            f"rows and history after {replay['seconds']} s)")


def main() -> None:
    machine = next((d["machine"] for d in map(_load, ("ingest", "latency", "replay")) if d), {})
    print(
        f"Machine: {machine.get('cpus')} cores ({machine.get('cpu')}), {machine.get('memory_gib')} GiB, "
        f"Python {machine.get('python')}\n"
    )
    print("| measure | figure | goal | |\n|---|---|---|---|")
    for row in rows():
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
