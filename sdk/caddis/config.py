"""Typed configuration: one YAML or TOML file plus ``CADDIS_*`` environment overrides.

Every component describes its settings as a (frozen) dataclass and calls :func:`load_config`::

    @dataclass(frozen=True)
    class RetryConfig:
        max_attempts: int = 5

    @dataclass(frozen=True)
    class StorageConfig:
        endpoint: str = "localhost:9000"
        secure: bool = True
        retry: RetryConfig = field(default_factory=RetryConfig)

    cfg = load_config(StorageConfig, section="storage")

Values come, from lowest to highest precedence, from the dataclass defaults, the ``section`` table
of the file (``path``, else the file named by ``CADDIS_CONFIG``, else none), and environment
variables ``CADDIS_<SECTION>_<FIELD>`` (``CADDIS_STORAGE_RETRY_MAX_ATTEMPTS`` for a nested one).
Supported field types: ``str``, ``int``, ``float``, ``bool``, :class:`pathlib.Path`, enums,
``X | None``, ``list[X]`` / ``tuple[X, ...]`` (comma-separated in the environment) and nested
dataclasses. In the environment, an empty value (or ``none``/``null``) sets an ``X | None``
field to ``None``; booleans take true/false, yes/no, on/off, 1/0. A value that does not fit
raises :class:`ConfigError` naming where it came from, the field, the expected type and the
value received.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = ["CONFIG_ENV_VAR", "ConfigError", "env_var_name", "load_config"]

T = TypeVar("T")

CONFIG_ENV_VAR = "CADDIS_CONFIG"
"""Environment variable naming the configuration file used when no ``path`` is given."""

_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f"})


class ConfigError(ValueError):
    """A configuration file or environment variable is missing, malformed or holds a bad value."""


def env_var_name(section: str, *field_path: str) -> str:
    """The environment variable that overrides ``section.field_path``.

    Args:
        section: The config section, e.g. ``"storage"``.
        *field_path: Field names from the top dataclass down, e.g. ``("retry", "max_attempts")``.

    Returns:
        For example ``CADDIS_STORAGE_RETRY_MAX_ATTEMPTS``.
    """
    parts = [section, *field_path]
    return "CADDIS_" + "_".join(p.upper().replace("-", "_").replace(".", "_") for p in parts)


def load_config(
    cls: type[T],
    *,
    section: str,
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] = os.environ,
) -> T:
    """Build a ``cls`` dataclass from defaults, a config file section and the environment.

    Args:
        cls: A dataclass type; fields may be nested dataclasses.
        section: The top-level table of the file to read, and the ``<SECTION>`` part of the
            environment variable names.
        path: A ``.yaml``/``.yml`` or ``.toml`` file. When ``None``, the file named by
            ``CADDIS_CONFIG`` in ``env`` is used if set; otherwise only defaults and the
            environment apply.
        env: The environment to read overrides from (``os.environ`` unless given).

    Returns:
        The filled-in dataclass instance.

    Raises:
        ConfigError: When the file is missing or unparsable, the section or a field holds a
            value of the wrong type, a key is unknown, or a required field has no value.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"load_config needs a dataclass type, got {cls!r}")
    if path is None and env.get(CONFIG_ENV_VAR):
        path = env[CONFIG_ENV_VAR]
    file_values: Mapping[str, Any] = {}
    source = "defaults"
    if path is not None:
        file_path = Path(path).expanduser()
        source = str(file_path)
        raw = _read_file(file_path)
        section_value = raw.get(section, {})
        if section_value is None:
            section_value = {}
        if not isinstance(section_value, Mapping):
            raise ConfigError(
                f"{file_path}: section [{section}] must be a table/mapping, "
                f"got {type(section_value).__name__}: {section_value!r}"
            )
        file_values = section_value
    return _build(cls, file_values, env, source=source, section=section, field_path=())


def _read_file(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    suffix = path.suffix.lower()
    try:
        if suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text.decode("utf-8"))
        else:
            raise ConfigError(
                f"config file {path}: unknown format {suffix!r} (use .yaml, .yml or .toml)"
            )
    except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {suffix[1:].upper()}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _build(
    cls: type[T],
    values: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    source: str,
    section: str,
    field_path: tuple[str, ...],
    default: Any = dataclasses.MISSING,
) -> T:
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        where = ".".join((section, *field_path))
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(map(repr, unknown))} in [{where}]; "
            f"known: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, fld in fields.items():
        tp = hints[name]
        here = (*field_path, name)
        dotted = ".".join((section, *here))
        sub_cls = _dataclass_of(tp)
        if sub_cls is not None:
            sub_values = values.get(name, {})
            if sub_values is None:
                sub_values = {}
            if not isinstance(sub_values, Mapping):
                raise ConfigError(
                    f"{source}: {dotted} must be a table/mapping for {sub_cls.__name__}, "
                    f"got {type(sub_values).__name__}: {sub_values!r}"
                )
            sub_default = _field_default(fld)
            if default is not dataclasses.MISSING:
                sub_default = getattr(default, name)
            if not sub_values and not _has_env_prefix(env, env_var_name(section, *here) + "_"):
                if sub_default is dataclasses.MISSING:
                    kwargs[name] = _build(
                        sub_cls, {}, env, source=source, section=section, field_path=here
                    )
                continue
            kwargs[name] = _build(
                sub_cls,
                sub_values,
                env,
                source=source,
                section=section,
                field_path=here,
                default=sub_default,
            )
            continue
        var = env_var_name(section, *here)
        if var in env:
            kwargs[name] = _convert(env[var], tp, f"environment variable {var}", dotted, True)
        elif name in values:
            kwargs[name] = _convert(values[name], tp, source, dotted, False)
        elif default is dataclasses.MISSING and _field_default(fld) is dataclasses.MISSING:
            raise ConfigError(
                f"{dotted} is required: set it in the [{section}] section of the config file "
                f"or with {var}"
            )
    if default is not dataclasses.MISSING:
        return dataclasses.replace(default, **kwargs)  # type: ignore[no-any-return]
    return cls(**kwargs)


def _has_env_prefix(env: Mapping[str, str], prefix: str) -> bool:
    return any(key.startswith(prefix) for key in env)


def _field_default(fld: dataclasses.Field[Any]) -> Any:
    if fld.default is not dataclasses.MISSING:
        return fld.default
    if fld.default_factory is not dataclasses.MISSING:
        return fld.default_factory()
    return dataclasses.MISSING


def _dataclass_of(tp: Any) -> type[Any] | None:
    """The dataclass type behind ``tp`` (also through ``X | None``), else ``None``."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp
    return None


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, source: str, dotted: str, from_env: bool) -> Any:
    def bad(reason: str = "") -> ConfigError:
        extra = f" ({reason})" if reason else ""
        return ConfigError(f"{source}: {dotted} expects {_type_name(tp)}, got {value!r}{extra}")

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if optional and (
            value is None or (from_env and value.strip().lower() in {"", "none", "null"})
        ):
            return None
        if len(args) != 1:
            raise TypeError(f"{dotted}: unsupported config field type {tp!r}")
        try:
            return _convert(value, args[0], source, dotted, from_env)
        except ConfigError:
            raise bad() from None
    if origin in (list, tuple):
        item_args = typing.get_args(tp)
        item_tp = item_args[0] if item_args else str
        if origin is tuple and not (len(item_args) == 2 and item_args[1] is Ellipsis):
            raise TypeError(f"{dotted}: only tuple[X, ...] is supported, got {tp!r}")
        if isinstance(value, str):
            items: list[Any] = [p.strip() for p in value.split(",") if p.strip()]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise bad("a list or a comma-separated string")
        converted: list[Any] = [
            _convert(item, item_tp, source, f"{dotted}[{i}]", isinstance(item, str))
            for i, item in enumerate(items)
        ]
        return converted if origin is list else tuple(converted)
    if value is None:
        raise bad()
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
        raise bad("use true/false, yes/no, on/off or 1/0")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                raise bad() from None
        raise bad()
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad() from None
        raise bad()
    if tp is str:
        # YAML reads `region: 1` or `version: 2.0` as numbers; a str field takes them as written.
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise bad()
    if tp is Path:
        if isinstance(value, str):
            return Path(value).expanduser()
        raise bad()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if value == member.value or (
                isinstance(value, str) and value.strip().lower() == member.name.lower()
            ):
                return member
        raise bad("one of " + ", ".join(m.name.lower() for m in tp))
    raise TypeError(f"{dotted}: unsupported config field type {tp!r}")
