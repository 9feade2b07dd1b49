"""Code bundles: the user's source tree as a reproducible, content-addressed tarball.

The same source tree always gives the same bytes (sorted entries, fixed times, owners and
modes, gzip without a timestamp), so its SHA-256 digest names the code: registering unchanged
code twice uploads nothing new, and the digest doubles as the default version.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

# Never part of a bundle: caches, VCS data, virtual environments, build output.
_SKIP_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        "node_modules",
        "build",
        "dist",
        ".caddis",
    }
)
_SKIP_SUFFIXES = (".pyc", ".pyo", ".so.tmp")


@dataclass(frozen=True)
class CodeBundle:
    """A packaged source tree.

    Attributes:
        root: The directory that was packaged (put on ``sys.path`` by task processes).
        data: The ``.tar.gz`` bytes.
        digest: ``sha256:<hex>`` of ``data``.
        files: Relative paths packaged, in archive order.
    """

    root: Path
    data: bytes
    digest: str
    files: tuple[str, ...]

    @property
    def filename(self) -> str:
        """The archive's file name, ``<hex[:16]>.tar.gz``."""
        return f"{self.digest.split(':', 1)[1][:16]}.tar.gz"

    @property
    def short_digest(self) -> str:
        """The first 16 hex digits of the digest (used as the default version)."""
        return self.digest.split(":", 1)[1][:16]


def source_root(path: str | os.PathLike[str]) -> Path:
    """The directory to package for ``path``: above its outermost enclosing package.

    ``proj/pkg/sub/wf.py`` with ``__init__.py`` in ``pkg`` and ``sub`` gives ``proj``, so that
    ``pkg.sub.wf`` is importable from the bundle root; a lone script gives its directory.

    Args:
        path: A Python file or a directory.

    Returns:
        The absolute root directory.
    """
    p = Path(path).resolve()
    directory = p if p.is_dir() else p.parent
    while (directory / "__init__.py").exists() and directory.parent != directory:
        directory = directory.parent
    return directory


def _walk(root: Path) -> list[str]:
    files: list[str] = []
    for current, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(_SKIP_SUFFIXES) or name.startswith("."):
                continue
            full = Path(current) / name
            if full.is_file():
                files.append(full.relative_to(root).as_posix())
    return sorted(files)


def build_bundle(root: str | os.PathLike[str]) -> CodeBundle:
    """Package ``root`` as a reproducible ``.tar.gz``.

    Args:
        root: Directory to package (see :func:`source_root`).

    Returns:
        The bundle with its digest.
    """
    root_path = Path(root).resolve()
    files = _walk(root_path)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in files:
            full = root_path / rel
            info = tarfile.TarInfo(rel)
            info.size = full.stat().st_size
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            # Keep only whether the file is executable: umasks differ between machines.
            info.mode = 0o755 if os.access(full, os.X_OK) else 0o644
            with open(full, "rb") as handle:
                tar.addfile(info, handle)
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    data = compressed.getvalue()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return CodeBundle(root=root_path, data=data, digest=digest, files=tuple(files))


__all__ = ["CodeBundle", "build_bundle", "source_root"]
