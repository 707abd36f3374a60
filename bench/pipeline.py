"""The distributed pipeline as processes on fresh local services, for the latency and replay benchmarks."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Service, free_port, fresh_database, fresh_vhost, wait_http

SECRET, API_KEY = "bench-secret", "bench-api-key"
TASKS = ("issuetype", "needsdiagnosis")


class BenchPipeline:
    """ingest (+relay), dispatcher, one predictor per task, store and api; blobs in a local directory
    (moto's S3 would be the bottleneck here, and a real S3 is not on loopback)."""

    def __init__(self, with_ingest: bool = True, with_api: bool = True, store_replicas: int = 1):
        self.folder = Path(tempfile.mkdtemp(prefix="wcml-bench-"))
        self.db_url, self._drop_db = fresh_database()
        self.amqp_url, self._drop_vhost = fresh_vhost()
        self.env = {
            "WCML_BROKER_URL": self.amqp_url,
            "WCML_DATABASE_URL": self.db_url,
            "WCML_BLOB_URL": f"file://{self.folder}/blobs",
            "WCML_WEBHOOK_SECRETS": SECRET,
            "WCML_API_KEYS": API_KEY,
            "WCML_API_RATE": "0",  # the latency watcher polls as fast as the API answers: no per-key limit
            "WCML_MODELS_DIR": str(self.folder / "models"),
            "WCML_VAR_DIR": str(self.folder / "var"),
        }
        self.services: dict[str, Service] = {}
        Service("models", ["models", "demo"], self.env, self.folder).proc.wait(120)
        self.ingest_url = self.api_url = None
        if with_ingest:
            self.ingest_url = f"http://127.0.0.1:{free_port()}"
            self._start("ingest", "ingest", "--bind", self.ingest_url[7:], "--workers", "2")
        self._start("dispatcher", "dispatcher")
        for task in TASKS:
            self._start(f"predictor-{task}", "predictor", "--task", task)
        for n in range(store_replicas):  # replicas share the results queue and the due latest documents
            self._start("store" if n == 0 else f"store-{n + 1}", "store")
        if with_api:
            self.api_url = f"http://127.0.0.1:{free_port()}"
            self._start("api", "api", "--bind", self.api_url[7:], "--workers", "2")
        for url in (self.ingest_url, self.api_url):
            if url:
                wait_http(url + "/healthz", timeout=60)

    def _start(self, name: str, *args: str) -> None:
        self.services[name] = Service(name, list(args), self.env, self.folder)

    def memory(self) -> dict[str, float]:
        return {name: s.peak_rss_mib() for name, s in self.services.items()}

    def resident(self) -> dict[str, float]:
        """MiB resident now, per service."""
        return {name: round(s.rss_mib(), 1) for name, s in self.services.items()}

    def cpu(self) -> dict[str, float]:
        """CPU seconds each service has used: where the time went, summed over its processes."""
        return {name: s.cpu_seconds() for name, s in self.services.items()}

    def close(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
        self._drop_db()
        self._drop_vhost()
