"""Configuration from the environment (12-factor).

A missing or malformed variable stops start-up with one line naming it
(``SettingsError``). Nothing else reads ``os.environ`` for WCML_* names: the predictor's model parts,
which have no settings object to ask once a bundle is loaded, call ``embedding_cache_dir`` and
``encoders_dir`` below.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from shared.access import KeyEntryError, check_entries
from shared.broker.urls import BrokerUrlError, split_broker_urls
from shared.errors import UserError
from shared.extras import require_for_url


class SettingsError(UserError):
    """A configuration variable is missing or malformed."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


DEFAULT_API_RATE, DEFAULT_API_BURST = 20.0, 100


@dataclass(frozen=True)
class Settings:
    broker_url: str
    database_url: str
    blob_url: str
    webhook_secrets: tuple[str, ...]
    api_keys: tuple[str, ...]
    models_dir: Path
    routes_file: Path | None
    var_dir: Path
    max_body_bytes: int
    actions_policy: Path | None = None  # None: the packaged policy
    actions_live: bool = False  # the actions service sends to GitHub; otherwise it records (dry run)
    api_rate: float = DEFAULT_API_RATE  # requests a second per API key (0: no limit)
    api_burst: int = DEFAULT_API_BURST  # a key's bucket: this many at once before the rate applies
    metrics_bind: str = ""  # host:port of a listener that serves /metrics without a key ("": none)

    @property
    def embedded(self) -> bool:
        """One process holds every service: the broker is in-process (``memory://``) or a file
        (``sqlite://``), not a server."""
        return self.broker_url.startswith(("memory://", "sqlite://"))


def embedded_defaults_in(var_dir: Path) -> dict[str, str]:
    """The embedded mode keeps everything under its var directory (``WCML_VAR_DIR``, default ``var``)."""
    return {
        "WCML_BROKER_URL": f"sqlite:///{var_dir}/queue.db",
        "WCML_DATABASE_URL": f"sqlite:///{var_dir}/wcml.db",
        "WCML_BLOB_URL": f"file://{var_dir}/blobs",
        "WCML_MODELS_DIR": f"{var_dir}/models",
    }


def instance_file(var_dir: Path) -> Path:
    """Written by a serving embedded instance: where it serves (``{"url": ...}``)."""
    return var_dir / "instance.json"


def embedded_instance_here(env: dict[str, str], var_dir: Path) -> bool:
    """No URL is configured and ``var_dir`` holds an embedded instance: commands act on that one."""
    configured = any(name in env for name in URLS)
    return not configured and (instance_file(var_dir).exists() or (var_dir / "wcml.db").exists())

GITHUB_MAX_PAYLOAD = 25 * 1024 * 1024
URLS = ("WCML_BROKER_URL", "WCML_DATABASE_URL", "WCML_BLOB_URL")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    scheme = urlparse(value).scheme
    if not any(scheme == s or scheme.startswith(s + "+") for s in schemes):
        raise SettingsError(name, f"scheme {scheme or '(none)'!r} is not one of {', '.join(schemes)}")
    return value


def _check_broker_url(value: str) -> str:
    """One URL, or several AMQP URLs of one RabbitMQ cluster separated by commas."""
    try:
        urls = split_broker_urls(value)
    except BrokerUrlError as exc:
        raise SettingsError("WCML_BROKER_URL", str(exc)) from None
    for u in urls:
        _check_url("WCML_BROKER_URL", u, _SCHEMES["WCML_BROKER_URL"])
    return ",".join(urls)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _kept_secret(var_dir: Path, filename: str) -> tuple[str, ...]:
    """What an embedded instance keeps under var/ (nothing when there is no file, or none readable)."""
    try:
        return _csv((var_dir / filename).read_text())
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return ()


def _generated_secret(var_dir: Path, filename: str, announce) -> tuple[str, ...]:
    """``wcml run`` only: the secret kept under var/, else a new one created there (never over a file
    that exists, even one another first start wrote meanwhile) and printed once."""
    path = var_dir / filename
    if path.exists():
        kept = _kept_secret(var_dir, filename)
        if not kept:
            variable = {"webhook_secret": "WCML_WEBHOOK_SECRETS", "api_key": "WCML_API_KEYS"}[filename]
            raise SettingsError(variable, f"is not set and {path} holds none: put one there, or remove "
                                "the file to have one generated")
        return kept
    var_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    try:  # O_EXCL: never readable by others, never over another's
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _generated_secret(var_dir, filename, announce)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    announce(f"generated {filename.replace('_', ' ')} (kept in {path}): {value}")
    return (value,)


_SCHEMES = {"WCML_BROKER_URL": ("amqp", "amqps", "memory", "sqlite"),
            "WCML_DATABASE_URL": ("postgresql", "sqlite"),
            "WCML_BLOB_URL": ("s3", "file")}


def load(env: dict[str, str] | None = None, *, embedded_defaults: bool = False, announce=print,
         needs: tuple[str, ...] = URLS, notice=None, create_secrets: bool = False) -> Settings:
    """Read settings; ``embedded_defaults`` fills the embedded-mode defaults for what is unset.

    ``needs`` names the URLs this process uses: the others may be unset (then empty strings),
    so a command that only reads the database does not ask for a broker. With no URL set at all
    in a folder where ``scripts/run`` made an embedded instance, the embedded defaults apply too,
    said in one line to ``notice`` (standard error).

    The embedded mode's webhook secret and API key, when ``WCML_WEBHOOK_SECRETS`` / ``WCML_API_KEYS``
    are unset, are the ones kept in ``var/webhook_secret`` and ``var/api_key``. Only ``wcml run``
    passes ``create_secrets``: a missing one is then created (and printed once). Every other command
    reads what is there, or has none, and writes nothing.
    """
    env = dict(os.environ if env is None else env)
    var_dir = Path(env.get("WCML_VAR_DIR", "var"))
    if not embedded_defaults and embedded_instance_here(env, var_dir):
        embedded_defaults = True
        (notice or _to_stderr)(f"wcml: using the embedded instance in {var_dir}/ (set WCML_DATABASE_URL and "
                               "the other WCML_* URLs to use another)")
    if embedded_defaults:
        for name, default in embedded_defaults_in(var_dir).items():
            env.setdefault(name, default)

    def url(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            if name in needs:
                raise SettingsError(name, "is not set")
            return ""
        if name == "WCML_BROKER_URL":
            return _check_broker_url(value)
        return _check_url(name, value, _SCHEMES[name])

    broker_url, database_url, blob_url = (url(name) for name in URLS)
    for name, value in zip(URLS, (broker_url, database_url, blob_url), strict=True):
        if value and name in needs:  # amqp://, postgresql://, s3:// need an extra (one line naming it)
            require_for_url(name, value)
    if blob_url.startswith("s3://") and not urlparse(blob_url).netloc:
        raise SettingsError("WCML_BLOB_URL", "s3:// URL names no bucket")
    embedded = broker_url.startswith(("memory://", "sqlite://"))

    def kept(filename: str) -> tuple[str, ...]:
        if not embedded:
            return ()
        if create_secrets:
            return _generated_secret(var_dir, filename, announce)
        return _kept_secret(var_dir, filename)

    secrets_value = _csv(env.get("WCML_WEBHOOK_SECRETS", "")) or kept("webhook_secret")
    api_keys = _csv(env.get("WCML_API_KEYS", "")) or kept("api_key")
    try:
        check_entries(api_keys)
    except KeyEntryError as exc:
        raise SettingsError("WCML_API_KEYS", str(exc)) from None
    api_rate = _number(env, "WCML_API_RATE", DEFAULT_API_RATE, float)
    api_burst = _number(env, "WCML_API_BURST", DEFAULT_API_BURST, int)
    if api_burst < 1:
        raise SettingsError("WCML_API_BURST", "must be at least 1")
    metrics_bind = _bind(env, "WCML_METRICS_BIND")

    try:
        max_body = int(env.get("WCML_MAX_BODY_BYTES", GITHUB_MAX_PAYLOAD))
        if max_body <= 0:
            raise ValueError
    except ValueError:
        raise SettingsError("WCML_MAX_BODY_BYTES", "must be a positive integer") from None

    routes = env.get("WCML_ROUTES", "").strip()
    if routes and not Path(routes).is_file():
        raise SettingsError("WCML_ROUTES", f"no such file: {routes}")

    policy = env.get("WCML_ACTIONS_POLICY", "").strip()
    if policy and not Path(policy).is_file():
        raise SettingsError("WCML_ACTIONS_POLICY", f"no such file: {policy}")
    live = env.get("WCML_ACTIONS_LIVE", "").strip().lower()
    if live not in ("", "0", "1", "false", "true", "no", "yes"):
        raise SettingsError("WCML_ACTIONS_LIVE", "must be 1 (act on GitHub) or 0 (dry run, the default)")

    return Settings(
        broker_url=broker_url,
        database_url=database_url,
        blob_url=blob_url,
        webhook_secrets=secrets_value,
        api_keys=api_keys,
        models_dir=Path(env.get("WCML_MODELS_DIR", "var/models")),
        routes_file=Path(routes) if routes else None,
        var_dir=var_dir,
        max_body_bytes=max_body,
        actions_policy=Path(policy) if policy else None,
        actions_live=live in ("1", "true", "yes"),
        api_rate=api_rate,
        api_burst=api_burst,
        metrics_bind=metrics_bind,
    )


def _number(env: dict[str, str], name: str, default, kind):
    """A non-negative number (``kind``: int or float) from ``env``, ``default`` when unset."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
        if not value >= 0 or value == float("inf"):
            raise ValueError
    except ValueError:
        raise SettingsError(name, f"must be a non-negative {'whole ' if kind is int else ''}number") from None
    return value


def _bind(env: dict[str, str], name: str) -> str:
    """``host:port`` (the host may be empty for every address), or "" when unset."""
    return bind_of(name, env.get(name, ""))


def bind_of(name: str, value: str) -> str:
    """``value`` as ``host:port``, or "" when empty; ``name`` (a variable, a flag) says whose it is."""
    text = value.strip()
    if not text:
        return ""
    _, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingsError(name, f"must be host:port, e.g. 127.0.0.1:9100, got {text[:60]!r}")
    return text


def require(settings: Settings, *names: str) -> None:
    """Stop a distributed service whose own required variables are empty."""
    values = {"WCML_WEBHOOK_SECRETS": settings.webhook_secrets, "WCML_API_KEYS": settings.api_keys}
    for name in names:
        if not values[name]:
            raise SettingsError(name, "is not set (required outside the embedded mode)")


def embedding_cache_dir() -> Path | None:
    """``WCML_EMBEDDING_CACHE``: where sentence embeddings are kept across runs (None: memory only)."""
    value = os.environ.get("WCML_EMBEDDING_CACHE", "").strip()
    return Path(value) if value else None


def encoders_dir() -> Path:
    """``WCML_ENCODERS_DIR``: where encoders shipped in parts are unpacked at first use."""
    value = os.environ.get("WCML_ENCODERS_DIR", "").strip()
    return Path(value) if value else Path.home() / ".cache/wcml/encoders"


def github_token() -> str | None:
    """``GITHUB_TOKEN``: the token `wcml github import` sends to GitHub's REST API (None: anonymous)."""
    value = os.environ.get("GITHUB_TOKEN", "").strip()
    return value or None


def github_app() -> tuple[str, str]:
    """``GITHUB_APP_ID`` and ``GITHUB_APP_PRIVATE_KEY`` (the PEM itself, or a path to the .pem file):
    to act as the GitHub App itself, as its own webhook's deliveries need."""
    app_id = os.environ.get("GITHUB_APP_ID", "").strip()
    key = os.environ.get("GITHUB_APP_PRIVATE_KEY", "").strip()
    if not app_id.isdigit():
        raise SettingsError("GITHUB_APP_ID", "must be the GitHub App's numeric id")
    if not key.startswith("-----BEGIN"):
        try:
            key = Path(key).read_text().strip() if key else ""
        except OSError as exc:
            raise SettingsError("GITHUB_APP_PRIVATE_KEY", f"cannot read {key}: {exc.strerror}") from None
    if "PRIVATE KEY-----" not in key:
        raise SettingsError("GITHUB_APP_PRIVATE_KEY", "is not a PEM private key, nor a path to one")
    return app_id, key


def github_api_url() -> str:
    """``GITHUB_API_URL`` (as in GitHub Actions): the REST API's base URL, for GitHub Enterprise Server."""
    return os.environ.get("GITHUB_API_URL", "").strip() or "https://api.github.com"


FOLLOW_EVERY = 60.0  # seconds between a follower's ticks


def github_follow() -> tuple[str, ...]:
    """``WCML_GITHUB_FOLLOW``: the repositories (``OWNER/REPO``, comma-separated) a follower keeps the
    event log in step with by polling GitHub (``wcml follow``; in ``wcml run``, with GITHUB_TOKEN)."""
    repos = _csv(os.environ.get("WCML_GITHUB_FOLLOW", ""))
    for repo in repos:
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise SettingsError("WCML_GITHUB_FOLLOW", f"{repo!r} is not OWNER/REPO")
    return repos


def github_follow_every() -> float:
    """``WCML_GITHUB_FOLLOW_EVERY``: seconds between a follower's ticks (default 60)."""
    value = os.environ.get("WCML_GITHUB_FOLLOW_EVERY", "").strip()
    try:
        every = float(value) if value else FOLLOW_EVERY
        if not every > 0:
            raise ValueError
    except ValueError:
        raise SettingsError("WCML_GITHUB_FOLLOW_EVERY", "must be a positive number of seconds") from None
    return every


def metrics_port_variable(service: str) -> str:
    """The variable that moves a service's metrics port: ``WCML_<SERVICE>_METRICS_PORT`` (``api-views``:
    ``WCML_API_VIEWS_METRICS_PORT``). One per service, so a process started beside another (the relay
    beside ingest) reads its own from the environment it inherits."""
    return f"WCML_{service.upper().replace('-', '_')}_METRICS_PORT"


def metrics_port(service: str, declared: int | None) -> int | None:
    """Where ``service`` serves its /metrics and /healthz outside the embedded mode: its variable
    (``metrics_port_variable``; 0: nowhere), else the port its entry declares."""
    variable = metrics_port_variable(service)
    value = os.environ.get(variable, "").strip()
    if not value:
        return declared
    if not value.isdigit() or int(value) > 65535:
        raise SettingsError(variable, "must be a port number (0: serve no metrics)")
    return int(value)
