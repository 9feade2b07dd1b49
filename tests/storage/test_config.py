"""caddis.config: dataclasses filled from YAML/TOML sections and CADDIS_* variables."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from caddis.config import ConfigError, env_var_name, load_config
from caddis.storage import RetryConfig, StorageConfig


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@dataclass(frozen=True)
class Limits:
    max_items: int = 10
    ratio: float = 0.5


@dataclass(frozen=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 0
    debug: bool = False
    token: str | None = None
    timeout: float | None = 1.5
    tags: list[str] = field(default_factory=list)
    hosts: tuple[str, ...] = ()
    data_dir: Path = Path("/var/lib/x")
    mode: Mode = Mode.SAFE
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Required:
    url: str


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_without_file_or_env() -> None:
    assert load_config(ServiceConfig, section="svc", env={}) == ServiceConfig()


def test_yaml_section_then_env_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.yaml",
        """
svc:
  host: 0.0.0.0
  port: 8089
  debug: yes
  tags: [a, b]
  limits:
    max_items: 3
other:
  port: 1
""",
    )
    env = {
        "CADDIS_SVC_PORT": "9000",
        "CADDIS_SVC_TOKEN": "s3cret",
        "CADDIS_SVC_TIMEOUT": "",
        "CADDIS_SVC_HOSTS": "a.example, b.example,,",
        "CADDIS_SVC_DATA_DIR": "/tmp/d",
        "CADDIS_SVC_MODE": "FAST",
        "CADDIS_SVC_LIMITS_RATIO": "0.25",
        "CADDIS_OTHER_PORT": "7",
    }
    cfg = load_config(ServiceConfig, section="svc", path=path, env=env)
    assert cfg == ServiceConfig(
        host="0.0.0.0",
        port=9000,
        debug=True,
        token="s3cret",
        timeout=None,
        tags=["a", "b"],
        hosts=("a.example", "b.example"),
        data_dir=Path("/tmp/d"),
        mode=Mode.FAST,
        limits=Limits(max_items=3, ratio=0.25),
    )


def test_toml_and_the_caddis_config_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.toml",
        '[svc]\nport = 5\ntags = ["x"]\n\n[svc.limits]\nratio = 2\n',
    )
    cfg = load_config(ServiceConfig, section="svc", env={"CADDIS_CONFIG": str(path)})
    assert (cfg.port, cfg.tags, cfg.limits) == (5, ["x"], Limits(ratio=2.0))
    # A missing section means defaults.
    assert load_config(ServiceConfig, section="absent", path=path, env={}) == ServiceConfig()


def test_bad_env_value_names_variable_field_type_and_value() -> None:
    env = {"CADDIS_SVC_LIMITS_MAX_ITEMS": "lots"}
    with pytest.raises(ConfigError) as info:
        load_config(ServiceConfig, section="svc", env=env)
    message = str(info.value)
    assert "environment variable CADDIS_SVC_LIMITS_MAX_ITEMS" in message
    assert "svc.limits.max_items" in message
    assert "expects int" in message
    assert "'lots'" in message
    with pytest.raises(
        ConfigError, match=r"CADDIS_SVC_DEBUG: svc\.debug expects bool, got 'maybe'"
    ):
        load_config(ServiceConfig, section="svc", env={"CADDIS_SVC_DEBUG": "maybe"})
    with pytest.raises(
        ConfigError, match=r"svc\.mode expects Mode, got 'turbo' \(one of fast, safe\)"
    ):
        load_config(ServiceConfig, section="svc", env={"CADDIS_SVC_MODE": "turbo"})


def test_bad_file_value_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "svc:\n  port: eighty\n")
    with pytest.raises(ConfigError) as info:
        load_config(ServiceConfig, section="svc", path=path, env={})
    assert str(path) in str(info.value)
    assert "svc.port expects int, got 'eighty'" in str(info.value)
    path = write(tmp_path, "d.yaml", "svc:\n  debug: 3\n")
    with pytest.raises(ConfigError, match=r"svc\.debug expects bool, got 3"):
        load_config(ServiceConfig, section="svc", path=path, env={})
    path = write(tmp_path, "e.yaml", "svc:\n  limits: 4\n")
    with pytest.raises(ConfigError, match=r"svc\.limits must be a table"):
        load_config(ServiceConfig, section="svc", path=path, env={})


def test_unknown_keys_missing_files_and_bad_syntax(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "svc:\n  prot: 1\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'prot' in \[svc\]"):
        load_config(ServiceConfig, section="svc", path=path, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(ServiceConfig, section="svc", path=tmp_path / "nope.yaml", env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(ServiceConfig, section="svc", env={"CADDIS_CONFIG": str(tmp_path / "x.toml")})
    bad = write(tmp_path, "bad.toml", "[svc\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(ServiceConfig, section="svc", path=bad, env={})
    ini = write(tmp_path, "c.ini", "")
    with pytest.raises(ConfigError, match="unknown format"):
        load_config(ServiceConfig, section="svc", path=ini, env={})


def test_required_fields(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"req\.url is required.*CADDIS_REQ_URL"):
        load_config(Required, section="req", env={})
    assert load_config(Required, section="req", env={"CADDIS_REQ_URL": "x"}) == Required("x")


def test_storage_config_from_yaml_and_env(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "caddis.yaml",
        "storage:\n  endpoint: http://minio:9000\n  access_key: minio\n  secret_key: minio123\n"
        "  retry:\n    max_attempts: 2\n",
    )
    env = {"CADDIS_STORAGE_RETRY_MAX_ELAPSED": "7.5", "CADDIS_STORAGE_SECURE": "off"}
    cfg = StorageConfig.load(path, env=env)
    assert (cfg.endpoint, cfg.access_key, cfg.secure) == ("http://minio:9000", "minio", False)
    assert cfg.retry == RetryConfig(max_attempts=2, max_elapsed=7.5)
    assert env_var_name("storage", "retry", "max_attempts") == "CADDIS_STORAGE_RETRY_MAX_ATTEMPTS"


def test_storage_config_load_is_cached_per_file_and_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from caddis.storage import clear_store_cache

    StorageConfig.clear_cache()
    calls: list[str] = []
    import caddis.storage._config as config_module

    real = config_module.load_config

    def counting(*args: object, **kwargs: object) -> object:
        calls.append("load")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(config_module, "load_config", counting)
    path = write(tmp_path, "caddis.yaml", "storage:\n  endpoint: a:1\n")
    env = {"CADDIS_STORAGE_REGION": "r1", "UNRELATED": "x"}
    first = StorageConfig.load(path, env=env)
    assert StorageConfig.load(path, env=env) is first
    # Variables outside CADDIS_STORAGE_* do not matter; storage ones do.
    assert StorageConfig.load(path, env={**env, "UNRELATED": "y"}) is first
    assert len(calls) == 1
    other = StorageConfig.load(path, env={**env, "CADDIS_STORAGE_REGION": "r2"})
    assert (other.region, len(calls)) == ("r2", 2)
    # CADDIS_CONFIG names the file when no path is given; an edited file is read again.
    by_var = StorageConfig.load(env={"CADDIS_CONFIG": str(path)})
    assert by_var.endpoint == "a:1"
    path.write_text("storage:\n  endpoint: b:22\n")
    os.utime(path, ns=(1, 1))
    assert StorageConfig.load(env={"CADDIS_CONFIG": str(path)}).endpoint == "b:22"
    n = len(calls)
    StorageConfig.load(env={"CADDIS_CONFIG": str(path)})
    assert len(calls) == n
    # clear_cache (and clear_store_cache) forget everything.
    StorageConfig.clear_cache()
    StorageConfig.load(env={"CADDIS_CONFIG": str(path)})
    clear_store_cache()
    StorageConfig.load(env={"CADDIS_CONFIG": str(path)})
    assert len(calls) == n + 2
    # A missing file is reported on every call, never cached.
    for _ in range(2):
        with pytest.raises(ConfigError):
            StorageConfig.load(tmp_path / "missing.yaml", env={})
