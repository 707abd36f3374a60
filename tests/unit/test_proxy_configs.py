"""The reverse-proxy examples in deploy/proxy/ (docs/deploy.md, "Receiving GitHub's webhooks"): each
parses with its own tool (`caddy validate`, `nginx -t`; scripts/deploy-tools installs both from Debian)
and, served on loopback in front of a recording upstream, passes POST /webhooks/github on, with the
client's scheme in X-Forwarded-Proto, and nothing else: the API, the dashboard, /metrics and /healthz
answer 404 at the proxy and never reach the upstream."""

from __future__ import annotations

import http.client
import os
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.harness import free_port
from tests.waiting import eventually

PROXY = Path(__file__).resolve().parents[2] / "deploy/proxy"
PRIVATE = ("/api/v1/predictions", "/", "/login", "/metrics", "/healthz", "/openapi.json", "/webhooks/githubx")


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        pytest.fail(f"{name} is missing: run scripts/deploy-tools (scripts/test does) to install it")
    return found


class Upstream:
    """Where the proxy sends what it passes on: records (method, path, X-Forwarded-Proto) and says 202."""

    def __init__(self):
        self.seen: list[tuple[str, str, str | None]] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                seen.append((self.command, self.path, self.headers.get("X-Forwarded-Proto")))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.close()


def request(connection: http.client.HTTPConnection, method: str, path: str) -> int:
    try:
        connection.request(method, path, body=b'{"zen": "hi"}' if method == "POST" else None,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def only_the_webhook_passes(connect, upstream: Upstream, scheme: str) -> None:
    def answered() -> bool:
        return request(connect(), "POST", "/webhooks/github") == 202
    eventually(answered, timeout=20, message="the proxy passing a webhook on")
    for path in PRIVATE:
        for method in ("GET", "POST"):
            assert request(connect(), method, path) == 404, (method, path)
    assert request(connect(), "GET", "/webhooks/github") in (403, 404, 405)  # GitHub only POSTs
    assert set(upstream.seen) == {("POST", "/webhooks/github", scheme)}, upstream.seen


def test_caddyfile_is_valid():
    done = subprocess.run([tool("caddy"), "validate", "--config", str(PROXY / "Caddyfile"), "--adapter",
                           "caddyfile"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    formatted = subprocess.run([tool("caddy"), "fmt", str(PROXY / "Caddyfile")], capture_output=True,
                               text=True, timeout=60)
    assert formatted.stdout == (PROXY / "Caddyfile").read_text(), "run caddy fmt --overwrite on it"


def test_caddy_passes_on_the_webhook_path_only(tmp_path, upstream):
    port = free_port()
    text = (PROXY / "Caddyfile").read_text()
    assert text.count("hooks.example.org {") == 1 and text.count("reverse_proxy 127.0.0.1:8000") == 1
    config = tmp_path / "Caddyfile"  # plain HTTP on loopback: the certificate is Caddy's own business
    config.write_text(text.replace("hooks.example.org {", f"http://127.0.0.1:{port} {{")
                      .replace("reverse_proxy 127.0.0.1:8000", f"reverse_proxy {upstream.address}"))
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    caddy = subprocess.Popen([tool("caddy"), "run", "--config", str(config), "--adapter", "caddyfile"],
                             env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "caddy.log").open("wb"))
    try:
        only_the_webhook_passes(lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=10), upstream,
                                "http")
    finally:
        caddy.terminate()
        caddy.wait(30)


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    done = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                           "-out", str(cert), "-days", "1", "-subj", "/CN=hooks.example.org"],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return cert, key


def nginx_config(tmp_path: Path, upstream: str = "127.0.0.1:8000", http_port: int = 80,
                 https_port: int = 443) -> Path:
    """deploy/proxy/nginx.conf with a throwaway certificate, logs under ``tmp_path``, and the given ports."""
    cert, key = certificate(tmp_path)
    text = (PROXY / "nginx.conf").read_text()
    replacements = {
        "/etc/letsencrypt/live/hooks.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/hooks.example.org/privkey.pem": str(key),
        "/var/log/nginx/wcml-access.log": str(tmp_path / "access.log"),
        "server 127.0.0.1:8000;": f"server {upstream};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config = tmp_path / "nginx.conf"
    config.write_text(f"pid {tmp_path}/nginx.pid;\n" + text)
    return config


def test_nginx_conf_is_valid(tmp_path):
    config = nginx_config(tmp_path)
    done = subprocess.run([tool("nginx"), "-t", "-c", str(config), "-e", str(tmp_path / "error.log")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_nginx_passes_on_the_webhook_path_only_over_tls(tmp_path, upstream):
    http_port, https_port = free_port(), free_port()
    config = nginx_config(tmp_path, upstream.address, http_port, https_port)
    nginx = subprocess.Popen([tool("nginx"), "-c", str(config), "-e", str(tmp_path / "error.log"), "-g",
                              "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE  # the throwaway certificate
    try:
        only_the_webhook_passes(lambda: http.client.HTTPSConnection("127.0.0.1", https_port, timeout=10,
                                                                    context=insecure), upstream, "https")
        plain = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        plain.request("POST", "/webhooks/github", body=b"{}")
        redirect = plain.getresponse()
        assert redirect.status == 301 and redirect.getheader("Location").startswith("https://")
        plain.close()
    finally:
        nginx.terminate()
        nginx.wait(30)
