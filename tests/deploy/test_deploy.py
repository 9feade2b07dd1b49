"""deploy/: the compose file, Kubernetes manifests, Prometheus and Grafana agree with each other
and with the services.

Docker cannot run here, so these tests check what can be checked without it: every file parses,
every image, command, config path and port is the same wherever it appears, each service's
config file loads with that service's own config class, and every metric the dashboard and the
alerts query is one the services export (scraped from their real /metrics, started in-process).
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERVICES = ("admin", "propeller", "datacatalog")
IMAGE = "caddis"


def _config_class_load(name: str, path: Path) -> Any:
    if name == "admin":
        from caddis_admin.config import load_admin_config

        return load_admin_config(path, env={})
    if name == "propeller":
        from caddis_propeller.config import PropellerConfig

        return PropellerConfig.load(path, env={})
    from caddis_datacatalog.config import DataCatalogConfig

    return DataCatalogConfig.load(path, env={})


@pytest.fixture(scope="module")
def configs() -> dict[str, Any]:
    return {name: _config_class_load(name, DEPLOY / "config" / f"{name}.yaml") for name in SERVICES}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def _k8s(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


# --- every file parses -----------------------------------------------------------------------


def test_every_yaml_and_json_file_parses() -> None:
    yaml_files = [*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]
    assert len(yaml_files) >= 12
    for path in yaml_files:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert any(d is not None for d in docs), f"{path} is empty"
    for path in DEPLOY.rglob("*.json"):
        json.loads(path.read_text())


def test_each_config_file_loads_with_its_service_config_class(configs: dict[str, Any]) -> None:
    # load_config refuses unknown keys, so a typo in deploy/config fails here.
    assert configs["admin"].server.port == 8080
    assert configs["admin"].propeller_address == f"propeller:{configs['propeller'].server.port}"
    assert configs["propeller"].admin_endpoint == f"admin:{configs['admin'].server.port}"
    assert (
        configs["propeller"].datacatalog_endpoint
        == f"datacatalog:{configs['datacatalog'].server.port}"
    )
    ports = [c.server.port for c in configs.values()] + [
        c.server.metrics_port for c in configs.values()
    ]
    assert len(set(ports)) == len(ports), f"ports collide: {ports}"
    for name, cfg in configs.items():
        assert cfg.server.host == "0.0.0.0", f"{name} must listen on all interfaces in a container"
        assert cfg.server.metrics_host == "0.0.0.0", f"{name} metrics must be reachable"
        db = cfg.database.url
        assert db.endswith(f"/caddis_{name}"), f"{name} needs its own database, got {db}"


def test_storage_points_at_the_bucket_that_compose_creates(compose: dict[str, Any]) -> None:
    init = " ".join(compose["services"]["minio-init"]["command"])
    bucket = re.search(r"mc mb --ignore-existing local/(\S+)", init)
    assert bucket, init
    for name in SERVICES:
        raw = yaml.safe_load((DEPLOY / "config" / f"{name}.yaml").read_text())
        for key in ("metadata_prefix", "raw_data_prefix"):
            assert raw["storage"][key].startswith(f"s3://{bucket.group(1)}/")
    dc = yaml.safe_load((DEPLOY / "config" / "datacatalog.yaml").read_text())
    assert dc["datacatalog"]["data_prefix"].startswith(f"s3://{bucket.group(1)}/")


def test_postgres_init_creates_each_service_database(configs: dict[str, Any]) -> None:
    sql = (DEPLOY / "postgres" / "init.sql").read_text()
    for cfg in configs.values():
        dbname = cfg.database.url.rsplit("/", 1)[1]
        assert f"CREATE DATABASE {dbname} " in sql


# --- compose ---------------------------------------------------------------------------------


def test_compose_services_run_caddis_serve_with_their_config(
    compose: dict[str, Any], configs: dict[str, Any]
) -> None:
    services = compose["services"]
    assert {"postgres", "minio", "minio-init", "prometheus", "grafana", *SERVICES} <= set(services)
    for name in SERVICES:
        svc = services[name]
        assert svc["image"].split(":")[0] == IMAGE
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve().exists()
        target = f"/etc/caddis/{name}.yaml"
        assert svc["command"] == ["serve", name, "--config", target]
        mounts = {m.split(":")[1]: m.split(":")[0] for m in svc["volumes"]}
        assert mounts[target] == f"./config/{name}.yaml"
        server = configs[name].server
        assert f"{server.port}:{server.port}" in svc["ports"]
        assert f"{server.metrics_port}:{server.metrics_port}" in svc["ports"]
        assert svc["healthcheck"]["test"] == [
            "CMD",
            "python",
            "-m",
            "caddis._sandbox.health",
            f"127.0.0.1:{server.port}",
        ]
        assert "CADDIS_STORAGE_ACCESS_KEY" in svc["environment"]
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert svc["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_compose_relative_mounts_exist(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for mount in svc.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"


def test_compose_healthcheck_module_runs() -> None:
    # The compose health checks run this module; it must exist and answer NOT_SERVING (exit 1)
    # for an address where nothing listens.
    from caddis._sandbox import health

    assert health.main(["127.0.0.1:1"]) == 1
    assert health.main([]) == 2


def test_caddis_serve_is_a_cli_subcommand() -> None:
    from caddis._cli.main import _SUBCOMMANDS

    assert _SUBCOMMANDS["serve"][0] == "caddis._cli.serve"


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_installs_server_extra_and_exposes_every_port(configs: dict[str, Any]) -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert '".[server]"' in text and '"caddis[server]"' in text
    assert 'ENTRYPOINT ["caddis"]' in text
    exposed = {
        int(p) for line in text.splitlines() if line.startswith("EXPOSE") for p in line.split()[1:]
    }
    for cfg in configs.values():
        assert {cfg.server.port, cfg.server.metrics_port} <= exposed
    root = DEPLOY.parent
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for src in line.split()[1:-1]:
                assert (root / src).exists(), f"Dockerfile copies missing {src}"


# --- Kubernetes ------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kust = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    listed = set(kust["resources"])
    present = {p.name for p in (DEPLOY / "kubernetes").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_configmap_holds_exactly_the_config_files() -> None:
    cm = _k8s("ConfigMap", "caddis-config")
    for name in SERVICES:
        assert cm["data"][f"{name}.yaml"] == (DEPLOY / "config" / f"{name}.yaml").read_text(), (
            f"deploy/kubernetes/configmap.yaml is out of date with deploy/config/{name}.yaml"
        )


def test_deployments_and_services_match_the_configs(configs: dict[str, Any]) -> None:
    secrets = {d["metadata"]["name"]: d["stringData"] for d in _k8s_docs() if d["kind"] == "Secret"}
    assert {"CADDIS_STORAGE_ACCESS_KEY", "CADDIS_STORAGE_SECRET_KEY"} <= set(secrets["caddis-s3"])
    for name in SERVICES:
        server = configs[name].server
        deployment = _k8s("Deployment", name)
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == name
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(server.metrics_port)
        (container,) = pod["spec"]["containers"]
        assert container["image"] == IMAGE
        assert container["args"] == ["serve", name, "--config", f"/etc/caddis/{name}.yaml"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": server.port, "metrics": server.metrics_port}
        assert container["readinessProbe"]["grpc"]["port"] == server.port
        assert container["livenessProbe"]["grpc"]["port"] == server.port
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
        assert mount["mountPath"] == f"/etc/caddis/{name}.yaml"
        assert mount["subPath"] == f"{name}.yaml"
        assert {"secretRef": {"name": "caddis-s3"}} in container["envFrom"]
        for env in container.get("env", []):
            ref = env["valueFrom"]["secretKeyRef"]
            assert ref["key"] in secrets[ref["name"]]
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["config"]["configMap"]["name"] == "caddis-config"
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                _k8s("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
        service = _k8s("Service", name)
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": name}
        sports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
        assert sports == {"grpc": server.port, "metrics": server.metrics_port}
    # Only one propeller may own the attempt volume.
    propeller = _k8s("Deployment", "propeller")["spec"]
    assert propeller["replicas"] == 1 and propeller["strategy"]["type"] == "Recreate"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_manifests() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / "kubernetes")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("Deployment") == 3 and kinds.count("Service") == 3
    assert all(d["metadata"].get("namespace") == "caddis" for d in docs if d["kind"] != "Namespace")


# --- Prometheus and Grafana ------------------------------------------------------------------


def test_prometheus_scrapes_every_service_metrics_port(configs: dict[str, Any]) -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in prom["scrape_configs"]
    }
    for name in SERVICES:
        assert targets[f"caddis-{name}"] == [f"{name}:{configs[name].server.metrics_port}"]
    assert prom["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_grafana_provisioning_matches_the_dashboard(compose: dict[str, Any]) -> None:
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())[
        "datasources"
    ][0]
    assert ds["url"] == "http://prometheus:9090"
    dashboard = json.loads((DEPLOY / "grafana/dashboards/caddis.json").read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == ds["uid"]
        assert panel["targets"], panel["title"]
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/caddis.yaml").read_text())[
        "providers"
    ][0]
    mounts = dict(m.split(":")[1::-1] for m in compose["services"]["grafana"]["volumes"])
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in (
        "phase",
        "node latency",
        "task latency",
        "round latency",
        "cache hit",
        "queue depth",
    ):
        assert topic in titles, f"the dashboard has no panel about {topic}"


_METRIC = re.compile(r"\bcaddis_[a-z0-9_]+\b")


def queried_metrics() -> set[str]:
    """Every caddis series the dashboard and the alert rules query."""
    exprs: list[str] = []
    dashboard = json.loads((DEPLOY / "grafana/dashboards/caddis.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    alerts = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    exprs += [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    return {m for e in exprs for m in _METRIC.findall(e)}


def _owner(metric: str) -> tuple[str, ...]:
    for name in SERVICES:
        if metric.startswith(f"caddis_{name}_"):
            return (name,)
    if metric.startswith("caddis_grpc_"):
        return SERVICES  # the shared serving scaffolding: every service exports these
    raise AssertionError(f"{metric} does not name the service that exports it")


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def exported_series(metrics_url: str) -> set[str]:
    """Series names a /metrics endpoint exports, from its TYPE lines.

    Read from the TYPE lines rather than the samples: a labelled series has no sample until its
    first observation, yet it is exported and a dashboard may query it.
    """
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(maxsplit=3)
            if kind == "counter" and family.endswith("_total"):
                # The text format names a counter family with its _total suffix already.
                family = family.removesuffix("_total")
            names.update(family + suffix for suffix in _SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_queried_metrics_each_name_their_service() -> None:
    metrics = queried_metrics()
    assert len(metrics) >= 10
    for metric in metrics:
        _owner(metric)


def _start_in_process(name: str, tmp_path: Path) -> Iterator[str]:
    """Start one service in this process on loopback ports; yield its metrics URL."""
    from caddis._serving.config import DatabaseConfig, ServerConfig
    from caddis.storage import StorageConfig

    server = ServerConfig(port=0, metrics_port=0)
    db = DatabaseConfig(url=f"sqlite:///{tmp_path / (name + '.db')}")
    storage = StorageConfig(local_root=str(tmp_path / "storage"))
    if name == "datacatalog":
        from caddis_datacatalog.config import DataCatalogConfig
        from caddis_datacatalog.server import serve as serve_dc

        running: Any = serve_dc(DataCatalogConfig(server=server, database=db), storage=storage)
    else:
        try:
            module = importlib.import_module(f"caddis_{name}.server")
            serve = module.serve
        except (ImportError, AttributeError) as exc:
            pytest.skip(f"{name} has no caddis_{name}.server.serve yet ({exc}); cannot scrape it")
        if name == "admin":
            from caddis_admin.config import AdminConfig

            cfg: Any = AdminConfig(
                server=server, database=db, state_dir=str(tmp_path / "admin"), storage=storage
            )
            running = serve(cfg)
        else:
            from caddis_propeller.config import PropellerConfig

            cfg = PropellerConfig(
                server=server,
                database=db,
                metadata_prefix=storage.resolved_metadata_prefix(),
                raw_data_prefix=storage.resolved_raw_data_prefix(),
            )
            try:
                running = serve(cfg, storage=storage)
            except TypeError:
                running = serve(cfg)
    try:
        url = getattr(running, "metrics_url", None) or running.server.metrics_url
        assert url, f"{name} serves no /metrics"
        yield url
    finally:
        running.stop()


@pytest.mark.parametrize("service", SERVICES)
def test_dashboard_and_alert_metrics_are_exported(service: str, tmp_path: Path) -> None:
    wanted = sorted(m for m in queried_metrics() if service in _owner(m))
    gen = _start_in_process(service, tmp_path)
    url = next(gen)
    try:
        exported = exported_series(url)
    finally:
        gen.close()
    missing = [m for m in wanted if m not in exported]
    assert not missing, (
        f"{service} does not export {missing} that deploy/grafana or deploy/prometheus query; "
        f"it exports {sorted(n for n in exported if n.startswith('caddis_'))}"
    )
