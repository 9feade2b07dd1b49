"""A second-language client: Node.js (@grpc/grpc-js + proto-loader) against the datacatalog.

Proves the committed .proto files are enough for a non-Python client.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis.storage import StorageConfig
from caddis_datacatalog.config import DataCatalogConfig
from caddis_datacatalog.server import RunningDataCatalog, serve
from tests.support import in_ci

NODE_DIR = Path(__file__).parent / "node"
PROTOS = Path(__file__).resolve().parents[2] / "protos"

pytestmark = pytest.mark.node


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = "Node.js and npm are needed for the second-language client test"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    return node, npm


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[RunningDataCatalog]:
    config = DataCatalogConfig(
        server=ServerConfig(port=0, metrics_port=None, max_workers=4),
        database=DatabaseConfig(url=f"sqlite:///{tmp_path / 'catalog.db'}"),
        data_prefix=f"file://{tmp_path / 'blobs'}",
    )
    running = serve(config, storage=StorageConfig(local_root=str(tmp_path)))
    try:
        yield running
    finally:
        running.stop(grace=1)


def test_node_client_creates_and_gets_a_dataset(catalog: RunningDataCatalog) -> None:
    node, npm = _tools()
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    proc = subprocess.run(
        [node, "datacatalog_client.js", catalog.address, str(PROTOS)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["created_uuid"] == result["got_uuid"] != ""
    assert result["name"] == "node-client"
    assert result["metadata"] == {"language": "javascript"}
    assert result["partition_keys"] == ["region"]
    assert result["missing_code"] == "NOT_FOUND"
