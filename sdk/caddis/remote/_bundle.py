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
import time
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
    return _pack(root_path, _walk(root_path))


def _pack(root_path: Path, files: list[str]) -> CodeBundle:
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


# A file changed this recently may change again without its stat changing (timestamps have
# a granularity: a jiffy on Linux, 2 s on FAT), so a fingerprint holding one is not trusted
# (git's "racy" index entries).
_RACY_WINDOW_S = 2.0

_Stat = tuple[str, int, int, int, int, int]


class BundleCache:
    """Builds bundles, skipping the build when the tree's files did not change.

    The fingerprint of a tree is every packaged file's path, size, mode, inode, mtime and
    ctime. When the fingerprint equals the one recorded with the last bundle of that root,
    that bundle is returned without reading or compressing anything. A fingerprint holding a
    file modified within the last 2 s is not trusted (a write in the same timestamp tick
    would leave it unchanged): such a tree is rebuilt, and the content digest decides.
    """

    def __init__(self) -> None:
        self._entries: dict[Path, tuple[tuple[_Stat, ...], CodeBundle]] = {}
        self.builds = 0
        self.hits = 0

    def build(self, root: str | os.PathLike[str]) -> CodeBundle:
        """The bundle of ``root``, rebuilt only when its files changed (see the class)."""
        root_path = Path(root).resolve()
        taken = time.time_ns()
        files = _walk(root_path)
        fingerprint = tuple(_stat(root_path, rel) for rel in files)
        entry = self._entries.get(root_path)
        if entry is not None and entry[0] == fingerprint:
            self.hits += 1
            return entry[1]
        bundle = _pack(root_path, files)
        self.builds += 1
        racy_after = taken - int(_RACY_WINDOW_S * 1e9)
        if all(max(st[4], st[5]) < racy_after for st in fingerprint):
            self._entries[root_path] = (fingerprint, bundle)
        else:
            self._entries.pop(root_path, None)
        return bundle

    def clear(self) -> None:
        """Forget every recorded bundle."""
        self._entries.clear()


def _stat(root: Path, rel: str) -> _Stat:
    st = os.stat(root / rel)
    return (rel, st.st_size, st.st_mode, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


__all__ = ["BundleCache", "CodeBundle", "build_bundle", "source_root"]
