"""Importing caddis.storage must stay light: no S3 client until an s3:// store is built."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("minio", "urllib3", "grpc", "sqlalchemy", "pandas")


def test_import_caddis_storage_does_not_import_minio() -> None:
    code = (
        "import sys, caddis, caddis.storage, caddis.config\n"
        "from caddis.storage import get_store, StorageConfig\n"
        "get_store('/tmp', StorageConfig())\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]\n"
        "print(heavy)\n"
        "assert not heavy, heavy\n"
        "get_store('s3://bucket', StorageConfig())\n"
        "assert 'minio' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
