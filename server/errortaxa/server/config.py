"""Server configuration: defaults < config file < environment variables < command-line flags."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomllib
from errortaxa.engine.errors import InvalidInput
from errortaxa.engine.language import limits
from errortaxa.engine.language.limits import Limits
from errortaxa.engine.providers import registry

ENV_PREFIX = "ERRORTAXA_"


class ConfigError(InvalidInput):
    """A bad configuration value; the message names the setting and where it came from (also a
    ValueError, as every invalid input)."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``errortaxa serve`` can be told. See docs/SERVICE.md for each setting."""

    host: str = "127.0.0.1"
    port: int = 50051  # 0 = any free port
    tls_cert: Path | None = None
    tls_key: Path | None = None
    read_tokens: dict[str, str] = field(default_factory=dict)  # token name -> token
    admin_tokens: dict[str, str] = field(default_factory=dict)
    public_health: bool = False  # health (and reflection) need no token even when tokens are configured
    max_message_mb: int = 256
    max_batch: int = 2_000_000  # samples per request
    concurrency: int = 8  # worker threads
    max_concurrent_rpcs: int = 64  # computing calls in progress; beyond this, RESOURCE_EXHAUSTED at once
    max_streams: int = 16  # ClassifyStreams open, all clients
    max_streams_per_client: int = 4  # ClassifyStreams open per token (tokens configured) or connection
    stream_idle_seconds: float = 60.0  # a stream that sends nothing this long is closed (DEADLINE_EXCEEDED)
    store: Path | str | None = None  # store directory, or a postgresql:// URL (str); None: in memory only
    store_poll_seconds: float = 5.0  # PostgreSQL store: also look for changes this often (besides LISTEN)
    store_wait_seconds: float = 30.0  # PostgreSQL store: at start, wait this long for the database, then exit
    store_timeout_seconds: float = 5.0  # PostgreSQL store: an admin call waits this long for the database
    store_pool_min: int = 1  # PostgreSQL store: connections kept open
    store_pool_max: int = 4  # PostgreSQL store: at most this many connections
    replica: str = ""  # this server's name in trailing metadata, metrics and logs (default host-pid)
    default_taxonomy: str | None = None  # built-in name or YAML path served when nothing was activated
    datasets: dict[str, str] = field(default_factory=dict)  # dataset name -> label file
    data_dirs: tuple[Path, ...] = ()  # RegisterDataset reads label files only under these
    # feature provider name -> its config file (``--oov-config`` / ``oov_config`` / ERRORTAXA_OOV_CONFIG)
    provider_configs: dict[str, Path] = field(default_factory=dict)
    metrics_port: int | None = None  # Prometheus text on http://metrics_host:metrics_port/metrics
    metrics_host: str = "127.0.0.1"
    drain_seconds: float = 5.0  # after SIGTERM: health NOT_SERVING this long while still serving
    grace_seconds: float = 10.0  # then: calls in flight get this long to finish
    reflection: bool = True
    taxonomy_max_bytes: int = Limits.max_bytes  # bounds on one uploaded (or served) taxonomy: language.limits
    taxonomy_max_aliases: int = Limits.max_aliases
    taxonomy_max_depth: int = Limits.max_depth
    taxonomy_max_nodes: int = Limits.max_nodes
    taxonomy_max_pair_tables: int = Limits.max_pair_tables
    log_level: str = "INFO"
    log_format: str = "json"  # "json" | "text"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def limits(self) -> Limits:
        """The taxonomy limits: setting ``taxonomy_<name>`` is limit ``<name>`` (errortaxa.engine.language.limits)."""
        return Limits(**{name: getattr(self, f"taxonomy_{name}") for name in limits.NAMES})

    @property
    def auth_enabled(self) -> bool:
        return bool(self.read_tokens or self.admin_tokens)

    def check(self) -> ServerConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key go together")
        for key, value in (("port", self.port), ("max_message_mb", self.max_message_mb),
                           ("max_batch", self.max_batch), ("concurrency", self.concurrency),
                           ("max_concurrent_rpcs", self.max_concurrent_rpcs), ("max_streams", self.max_streams),
                           ("max_streams_per_client", self.max_streams_per_client),
                           ("store_pool_min", self.store_pool_min), ("store_pool_max", self.store_pool_max)):
            if value < (0 if key == "port" else 1):
                raise ConfigError(f"{key} must be {'>= 0' if key == 'port' else 'positive'}, got {value}")
        try:
            self.limits.check()
        except ValueError as exc:
            raise ConfigError(str(exc).replace("taxonomy limit ", "taxonomy_")) from None
        seen: dict[str, str] = {}
        for role, tokens in (("read", self.read_tokens), ("admin", self.admin_tokens)):
            for name, token in tokens.items():
                if not token:
                    raise ConfigError(f"{role} token '{name}' is empty")
                if token in seen:
                    raise ConfigError(f"token '{name}' has the same value as token '{seen[token]}'")
                seen[token] = name
        if isinstance(self.store, str) and not is_database_url(self.store):
            raise ConfigError("store must be a directory or a postgresql:// URL")
        for key in ("stream_idle_seconds", "store_poll_seconds", "store_wait_seconds", "store_timeout_seconds"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}")
        if self.log_format not in ("json", "text"):
            raise ConfigError(f"log_format must be json or text, got {self.log_format!r}")
        return self


_FIELDS = {f.name: f for f in fields(ServerConfig)}
_PATHS = {"tls_cert", "tls_key", "store"}
_INTS = {"port", "max_message_mb", "max_batch", "concurrency", "max_concurrent_rpcs", "metrics_port",
         "max_streams", "max_streams_per_client", "store_pool_min", "store_pool_max"}
_LIMITS = {f"taxonomy_{name}": name for name in limits.NAMES}  # read as the CLI's --limit NAME=VALUE
_FLOATS = {"drain_seconds", "grace_seconds", "stream_idle_seconds", "store_poll_seconds", "store_wait_seconds",
           "store_timeout_seconds"}
DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")  # a store given as one of these is a database


def is_database_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(DATABASE_URL_SCHEMES)
_BOOLS = {"public_health", "reflection"}
_MAPS = {"read_tokens", "admin_tokens", "datasets"}
_PATH_LISTS = {"data_dirs"}


def _coerce(key: str, value: Any, origin: str) -> Any:
    """A raw value (from a file, an env var or a flag) as the field's type."""
    try:
        if value is None:
            return None
        if key == "store" and is_database_url(value):
            return str(value)
        if key in _PATHS:
            return Path(os.path.expanduser(str(value)))
        if key in _INTS:
            return int(value)
        if key in _LIMITS:
            return limits.parse_value(_LIMITS[key], value, origin)
        if key in _FLOATS:
            return float(value)
        if key in _BOOLS:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(f"{value!r} is not a boolean")
            return text in ("1", "true", "yes", "on")
        if key in _MAPS:
            return _mapping(value)
        if key in _PATH_LISTS:
            items = value.split(os.pathsep) if isinstance(value, str) else list(value)
            return tuple(Path(os.path.expanduser(str(item))) for item in items if str(item))
        return str(value)
    except InvalidInput as exc:
        raise ConfigError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: {key}: {exc}") from None


def _mapping(value: Any) -> dict[str, str]:
    """``{name: value}``, or ``"name=value,name2=value2"``, or a list of ``name=value`` strings."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    items = value.split(",") if isinstance(value, str) else list(value)
    out: dict[str, str] = {}
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        name, sep, rest = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected NAME=VALUE, got {item!r}")
        out[name.strip()] = rest.strip()
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML, YAML or JSON file of settings (keys as in ServerConfig; '-' may stand for '_')."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except Exception as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a table of settings")
    data = data.get("server", data) if isinstance(data.get("server"), dict) else data
    out: dict[str, Any] = {}
    providers = _provider_keys()
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key in providers:
            out.setdefault("provider_configs", {})[providers[key]] = _coerce_path(key, value, f"config file {path}")
        elif key not in _FIELDS or key == "provider_configs":
            raise ConfigError(f"config file {path}: unknown setting '{raw_key}'")
        else:
            out[key] = _coerce(key, value, f"config file {path}")
    base = path.parent
    for key in _PATHS & out.keys():  # relative paths are relative to the config file
        if isinstance(out[key], Path) and not out[key].is_absolute():
            out[key] = base / out[key]
    for key in _PATH_LISTS & out.keys():
        out[key] = tuple(p if p.is_absolute() else base / p for p in out[key])
    for name, file in out.get("provider_configs", {}).items():
        if not file.is_absolute():
            out["provider_configs"][name] = base / file
    return out


def read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """``ERRORTAXA_<SETTING>`` variables (e.g. ERRORTAXA_PORT, ERRORTAXA_ADMIN_TOKENS=ops=s3cret,
    ERRORTAXA_OOV_CONFIG=oov.yaml)."""
    out: dict[str, Any] = {}
    for key in (k for k in _FIELDS if k != "provider_configs"):
        name = ENV_PREFIX + key.upper()
        if name in environ and environ[name] != "":
            out[key] = _coerce(key, environ[name], f"${name}")
    for key, provider in _provider_keys().items():
        name = ENV_PREFIX + key.upper()
        if environ.get(name):
            out.setdefault("provider_configs", {})[provider] = _coerce_path(key, environ[name], f"${name}")
    return out


def _provider_keys() -> dict[str, str]:
    """The setting naming each registered feature provider's config file -> the provider name."""
    return {factory.config_key: factory.name for factory in registry.factories()}


def _coerce_path(key: str, value: Any, origin: str) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ConfigError(f"{origin}: {key}: expected a file path, got {value!r}")
    return Path(os.path.expanduser(os.fspath(value)))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="errortaxa serve",
        description="Run the ErrorTaxa gRPC service. Settings: defaults < --config file < "
        "ERRORTAXA_* environment variables < flags (docs/SERVICE.md).",
    )
    p.add_argument("--config", type=Path, help="TOML, YAML or JSON file of settings ($ERRORTAXA_CONFIG)")
    p.add_argument("--host", help="bind address (default 127.0.0.1; 0.0.0.0 or [::] for all interfaces)")
    p.add_argument("--port", type=int, help="port (default 50051; 0 = any free port, printed at start)")
    p.add_argument("--tls-cert", type=Path, help="PEM certificate chain; with --tls-key enables TLS")
    p.add_argument("--tls-key", type=Path, help="PEM private key")
    p.add_argument("--read-token", action="append", metavar="NAME=TOKEN",
                   help="a token allowed to classify, explain, list and validate (repeatable)")
    p.add_argument("--admin-token", action="append", metavar="NAME=TOKEN",
                   help="a token also allowed to put, activate and delete taxonomies and register "
                   "datasets (repeatable)")
    p.add_argument("--public-health", action="store_true", default=None,
                   help="health checks, and the server reflection probes use to find them, need no token "
                   "even when tokens are configured")
    p.add_argument("--max-message-mb", type=int, help="largest request or response message (default 256)")
    p.add_argument("--max-batch", type=int, help="most samples in one request (default 2,000,000)")
    p.add_argument("--concurrency", type=int, help="calls computing at once (default 8)")
    p.add_argument("--max-concurrent-rpcs", type=int,
                   help="computing calls in progress (computing or waiting); more fail at once with "
                   "RESOURCE_EXHAUSTED (default 64)")
    p.add_argument("--max-streams", type=int, help="ClassifyStreams open at once, all clients (default 16)")
    p.add_argument("--max-streams-per-client", type=int,
                   help="ClassifyStreams open at once per token, or per connection without tokens (default 4)")
    p.add_argument("--stream-idle-seconds", type=float,
                   help="close a ClassifyStream that sends no batch this long (default 60)")
    p.add_argument("--store", help="taxonomy store: a directory (one server), or postgresql://USER@HOST[:PORT]/DB "
                   "shared by several replicas (password from PGPASSWORD or ~/.pgpass; sslmode=... in the URL); "
                   "default: in memory, lost at exit")
    p.add_argument("--store-poll-seconds", type=float,
                   help="PostgreSQL store: look for changes this often besides LISTEN/NOTIFY (default 5)")
    p.add_argument("--store-wait-seconds", type=float,
                   help="PostgreSQL store: wait this long for the database at start, then exit (default 30)")
    p.add_argument("--store-timeout-seconds", type=float,
                   help="PostgreSQL store: admin calls wait this long for the database (default 5)")
    p.add_argument("--store-pool-min", type=int, help="PostgreSQL store: connections kept open (default 1)")
    p.add_argument("--store-pool-max", type=int, help="PostgreSQL store: most connections (default 4)")
    p.add_argument("--replica", help="this server's name in trailing metadata, metrics and logs (default HOST-PID)")
    p.add_argument("--default-taxonomy", help="built-in name or YAML file served until one is activated")
    p.add_argument("--dataset", action="append", metavar="NAME=PATH",
                   help="hold a label file (multi-label CSV, ReaL json, target list, JSONL) as NAME")
    p.add_argument("--data-dir", action="append", metavar="DIR",
                   help="RegisterDataset reads label files only under this directory (repeatable)")
    for factory in registry.factories():
        p.add_argument(factory.config_option, dest=factory.config_key, type=Path, metavar="FILE",
                       help=f"config file of the '{factory.name}' feature provider: {factory.summary}")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this HTTP port")
    p.add_argument("--metrics-host", help="bind address of the metrics port (default 127.0.0.1)")
    p.add_argument("--drain-seconds", type=float, help="after SIGTERM, report NOT_SERVING this long (5)")
    p.add_argument("--grace-seconds", type=float, help="then give calls in flight this long (10)")
    p.add_argument("--no-reflection", dest="reflection", action="store_false", default=None,
                   help="do not offer gRPC server reflection")
    for name in limits.NAMES:
        p.add_argument(f"--taxonomy-{name.replace('_', '-')}",
                       help=f"refuse a taxonomy over this {limits.BOUNDS[name]} (default {getattr(Limits, name):,}; "
                       f"${limits.env_name(name)})")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    p.add_argument("--log-format", choices=("json", "text"), help="structured JSON lines (default) or text")
    return p


_FLAG_KEYS = {"read_token": "read_tokens", "admin_token": "admin_tokens", "dataset": "datasets",
              "data_dir": "data_dirs"}


def load_config(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Parse flags, read the config file and the environment, merge, check."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(list(argv))
    values: dict[str, Any] = {}
    config_path = args.config or (Path(environ[f"{ENV_PREFIX}CONFIG"]) if environ.get(f"{ENV_PREFIX}CONFIG")
                                  else None)
    if config_path is not None:
        values.update(read_config_file(config_path))
    env = read_env(environ)
    values["provider_configs"] = {**values.get("provider_configs", {}), **env.pop("provider_configs", {})}
    values.update(env)
    providers = _provider_keys()
    for name, value in vars(args).items():
        if name == "config" or value is None:
            continue
        if name in providers:
            values["provider_configs"][providers[name]] = _coerce_path(name, value, f"--{name.replace('_', '-')}")
            continue
        key = _FLAG_KEYS.get(name, name)
        coerced = _coerce(key, value, f"--{name.replace('_', '-')}")
        if key in _MAPS:
            coerced = {**values.get(key, {}), **coerced}
        if key in _PATH_LISTS:
            coerced = (*values.get(key, ()), *coerced)
        values[key] = coerced
    return replace(ServerConfig(), **values).check()
