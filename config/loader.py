"""Resolve the configuration: defaults, site file, user file, environment, command line.

Every layer is checked against the type of the key's default, so a typo in a config file
stops a process at start with a message naming the key, where it came from and what was
expected, instead of failing later deep inside the farm. The result is frozen: processes
read it, never change it; a child process gets the parent's resolution via ``as_env()``.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from config.defaults import DEFAULTS, env_name

SITE_CONFIG = "/etc/afanasy/config.json"
USER_CONFIG = Path(".afanasy") / "config.json"
DEFAULT_SOURCE = "default"
COMMAND_LINE = "command line"
ORIGINS_ENV = "AF_CONFIG_ORIGINS"  # as_env's sources, for a child process

_SECRET_WORDS = ("password", "token", "secret", "pswd")
_BOOL_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_KEY_PASSWORD = re.compile(r"(password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]*@")
_ENV_KEYS = {env_name(key): key for key in DEFAULTS}

log = logging.getLogger("config")


class ConfigError(Exception):
    """A configuration value or file that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Config:
    """Resolved configuration: ``values`` by key and where each came from (``sources``)."""

    values: Mapping[str, object]
    sources: Mapping[str, str]

    def __post_init__(self) -> None:
        # Read-only views, so that no caller can change what every module relies on.
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def __getitem__(self, key: str) -> object:
        return self.values[key]

    def __contains__(self, key: object) -> bool:
        return key in self.values

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def as_env(self) -> dict[str, str]:
        """AF_* variables for every value not taken from the defaults, for child processes.

        Values set by any layer are handed on, even when equal to the default, so a child
        that reads the same files still ends up with exactly the parent's configuration.
        """
        handed = {
            key: value
            for key, value in self.values.items()
            if self.sources.get(key, DEFAULT_SOURCE) != DEFAULT_SOURCE
        }
        env = {env_name(key): _to_text(value) for key, value in handed.items()}
        # where each came from, so the child names the file, not the variable made for it
        env[ORIGINS_ENV] = json.dumps({k: [self.sources[k], env[env_name(k)]] for k in handed})
        return env


def load_config(
    overrides: Mapping[str, object] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: str | None = None,
) -> Config:
    """Resolve the configuration; later layers win.

    Order: DEFAULTS, site file (``$AF_CONFIG`` or /etc/afanasy/config.json), user file
    (``<home>/.afanasy/config.json``), ``AF_<KEY>`` environment variables, ``overrides``
    (command line; ``None`` values mean "option not given" and are skipped).
    """
    env = os.environ if environ is None else environ
    # A deep copy: a caller changing a list value must not change the defaults.
    values: dict[str, object] = copy.deepcopy(DEFAULTS)
    sources = dict.fromkeys(DEFAULTS, DEFAULT_SOURCE)

    site = env.get("AF_CONFIG") or (SITE_CONFIG if Path(SITE_CONFIG).is_file() else None)
    if site:
        _apply_object(values, sources, _read_file(site), site)
    user = _user_file(home)
    if user is not None and user.is_file():
        _apply_object(values, sources, _read_file(str(user)), str(user))

    for name, text in env.items():
        key = _ENV_KEYS.get(name)
        if key is not None:  # other AF_* (AF_CONFIG, AF_JOB_ID, ...) are not ours
            source = f"environment {name}"
            values[key] = _parse_text(key, text, source)
            sources[key] = source

    _origins(env, sources)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in DEFAULTS:
            log.warning("unknown configuration key %r on the command line: ignored", key)
            continue
        if isinstance(value, str) and not isinstance(DEFAULTS[key], str):
            values[key] = _parse_text(key, value, COMMAND_LINE)
        else:
            values[key] = _coerce(key, value, COMMAND_LINE)
        sources[key] = COMMAND_LINE
    return Config(values, sources)


def _origins(env: Mapping[str, str], sources: dict[str, str]) -> None:
    """A parent's sources for the values it handed down as AF_* variables (as_env); only
    labels: a value set here by anything else keeps its own source."""
    try:
        origins = json.loads(env.get(ORIGINS_ENV, "{}"))
    except ValueError:
        return
    if not isinstance(origins, dict):
        return
    for key, origin in origins.items():
        name = env_name(key)
        if (
            sources.get(key) == f"environment {name}"
            and isinstance(origin, list)
            and len(origin) == 2
            and origin[1] == env.get(name)  # the value handed down, not one set since
        ):
            sources[key] = str(origin[0])


def format_config(cfg: Config) -> str:
    """One ``key = value    (source)`` line per key, sorted, with secrets masked."""
    return format_shown(shown_config(cfg))


def shown_config(cfg: Config) -> dict[str, dict[str, object]]:
    """{key: {"value", "source"}} with secrets masked: what may leave the process (the
    server's configuration to `afcmd config --server-side`)."""
    return {
        key: {"value": masked(key, value), "source": cfg.sources.get(key, DEFAULT_SOURCE)}
        for key, value in cfg.values.items()
    }


def format_shown(shown: Mapping[str, Mapping[str, object]]) -> str:
    lines = []
    for key in sorted(shown):
        text = json.dumps(shown[key]["value"], ensure_ascii=False, default=repr)
        lines.append(f"{key} = {text}    ({shown[key]['source']})")
    return "\n".join(lines)


def sources_read(shown: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The files and environment variables values came from, in no particular layer order."""
    found = {str(v["source"]) for v in shown.values()} - {DEFAULT_SOURCE}
    files = sorted(s for s in found if not s.startswith("environment "))
    return files + sorted(s for s in found if s.startswith("environment "))


def masked(key: str, value: object) -> object:
    """``value`` safe to print: secret keys become ``***``, embedded passwords too."""
    if any(word in key.lower() for word in _SECRET_WORDS):
        return "***"
    return _mask_text(value)


def _mask_text(value: object) -> object:
    if isinstance(value, str):
        return _URI_PASSWORD.sub(r"\1***@", _KEY_PASSWORD.sub(r"\1***", value))
    if isinstance(value, list):
        return [_mask_text(item) for item in value]
    if isinstance(value, dict):
        return {k: _mask_text(v) for k, v in value.items()}
    return value


def _user_file(home: str | None) -> Path | None:
    if home is not None:
        return Path(home) / USER_CONFIG
    try:
        return Path.home() / USER_CONFIG
    except RuntimeError:  # no home directory (some service accounts)
        return None


def _read_file(path: str) -> dict[str, object]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    # Accept the original's wrapper so that an existing CGRU config.json can be used as is.
    if isinstance(data, dict) and list(data) == ["cgru_config"]:
        data = data["cgru_config"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _apply_object(
    values: dict[str, object], sources: dict[str, str], data: Mapping[str, object], path: str
) -> None:
    for key, value in data.items():
        if key == "" or key.startswith("-"):  # the original's comments and disabled keys
            continue
        if key.startswith("OS_") and isinstance(value, dict):
            if _platform_matches(key[3:]):
                _apply_object(values, sources, value, path)
            continue
        if key not in DEFAULTS:
            log.warning("unknown configuration key %r in %s: ignored", key, path)
            continue
        values[key] = _coerce(key, value, path)
        sources[key] = path


def _platform_matches(name: str) -> bool:
    """The original's ``OS_<platform>`` sub-objects: unix, linux, macosx, windows."""
    if name == "unix":
        return os.name == "posix"
    if name == "linux":
        return sys.platform.startswith("linux")
    if name == "macosx":
        return sys.platform == "darwin"
    if name == "windows":
        return os.name == "nt"
    return False


def _shown(key: str, value: object) -> str:
    text = json.dumps(masked(key, value), ensure_ascii=False, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."


def _mismatch(key: str, value: object, source: str) -> ConfigError:
    return ConfigError(
        f"{key} in {source}: expected {type(DEFAULTS[key]).__name__}, "
        f"got {type(value).__name__} ({_shown(key, value)})"
    )


def _coerce(key: str, value: object, source: str) -> object:
    """``value`` as the type of the key's default, or ConfigError."""
    kind = type(DEFAULTS[key])
    if kind is bool:
        if isinstance(value, bool):
            return value
        if type(value) is int and value in (0, 1):  # JSON configs often say 0/1
            return bool(value)
    elif kind is int:
        if type(value) is int:
            return value
    elif kind is float:
        if type(value) in (int, float):
            return float(value)
    elif isinstance(value, kind):
        return value
    raise _mismatch(key, value, source)


def _parse_text(key: str, text: str, source: str) -> object:
    """An environment or command-line string parsed to the key's type."""
    kind = type(DEFAULTS[key])
    if kind is str:
        return text
    try:
        if kind is bool:
            return _BOOL_WORDS[text.strip().lower()]
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        value = json.loads(text)
    except (ValueError, KeyError):
        raise _mismatch(key, text, source) from None
    return _coerce(key, value, source)


def _to_text(value: object) -> str:
    """Inverse of ``_parse_text``: how a value travels in an environment variable."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
