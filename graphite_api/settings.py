"""Settings: defaults < YAML config file < PLUMBAGO_* environment variables < CLI flags.

Every key is documented in conf/plumbago.yaml (shipped as graphite_api/defaults/plumbago.yaml).
"""
from __future__ import annotations

import copy
import os
from importlib import resources

import yaml

DEFAULTS: dict = {
    "host": "127.0.0.1",
    "port": 8080,
    "data_dir": "./data",
    "database_url": None,
    "carbon_host": None,
    "carbon_port": 2003,
    "pickle_port": 0,
    "log_level": "info",
    "storage_schemas": None,
    "storage_schemas_file": None,
    "storage_aggregation": None,
    "storage_aggregation_file": None,
    "storage": {
        "block_seconds": 7200,
        "flush_interval": 60,
        "flush_grace": 300,
        "max_head_samples": 20_000_000,
        "retention_interval": 3600,
        "wal_fsync": True,
        "index_refresh_seconds": 10,
    },
    "ingest": {
        "max_body_bytes": 64 << 20,
        "max_decompressed_bytes": 256 << 20,
        "carbon_tenant": "anonymous",
    },
    "tenancy": {"enabled": False, "org_id_header": True},
    "auth": {"enabled": False, "policies": []},
    "limits": {"defaults": {}, "tenants": {}},
    "render": {
        "max_data_points": 800,
        "max_series_per_request": 250_000,
        "max_points_per_request": 20_000_000,
        "consolidation": "metrictank",
    },
}


class SettingsError(ValueError):
    pass


def _merge(base: dict, override: dict, path: str = "") -> dict:
    for key, value in override.items():
        if key not in base:
            raise SettingsError(f"unknown config key {path}{key!r}")
        if isinstance(base[key], dict) and not base[key]:   # free-form mapping (limit overrides, tenants)
            if not isinstance(value, dict):
                raise SettingsError(f"config key {path}{key!r} must be a mapping")
            base[key] = value
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise SettingsError(f"config key {path}{key!r} must be a mapping")
            _merge(base[key], value, f"{path}{key}.")
        else:
            base[key] = value
    return base


def _coerce(text: str, like):
    if isinstance(like, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(text)
    return text


def load(config_file: str | None = None, overrides: dict | None = None, environ=None) -> dict:
    settings = copy.deepcopy(DEFAULTS)
    if config_file:
        try:
            with open(config_file, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except OSError as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise SettingsError(f"config file {config_file} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise SettingsError(f"config file {config_file} must be a mapping")
        _merge(settings, data)
    environ = os.environ if environ is None else environ
    for key, value in DEFAULTS.items():   # PLUMBAGO_PORT, PLUMBAGO_STORAGE_FLUSH_INTERVAL, ...
        if isinstance(value, dict):
            for sub, like in value.items():
                env = environ.get(f"PLUMBAGO_{key}_{sub}".upper())
                if env is not None:
                    settings[key][sub] = _coerce(env, like)
        else:
            env = environ.get(f"PLUMBAGO_{key}".upper())
            if env is not None:
                settings[key] = _coerce(env, value if value is not None else "")
    for key, value in (overrides or {}).items():
        if value is not None:
            settings[key] = value
    for kind in ("storage_schemas", "storage_aggregation"):
        path = settings.get(f"{kind}_file")
        if path and not settings.get(kind):
            try:
                with open(path, encoding="utf-8") as f:
                    settings[kind] = f.read()
            except OSError as exc:
                raise SettingsError(f"cannot read {kind}_file {path}: {exc.strerror}") from None
    return settings


def default_config_text() -> str:
    return resources.files("graphite_api").joinpath("defaults/plumbago.yaml").read_text()
