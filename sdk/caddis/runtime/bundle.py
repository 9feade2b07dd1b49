"""Code bundles: fetch a content-addressed archive of the user's code and import from it.

Registration ("fast register") uploads the user's source tree as one archive whose name is
its digest (``sha256:<hex>``). A task process calls :func:`fetch_bundle` with the archive's
URI and digest: the archive is downloaded once per digest into a cache directory, verified,
unpacked (``.tar.gz``/``.tgz``/``.tar`` or ``.zip``, detected by content), and its root is put
first on ``sys.path``. Later tasks with the same digest reuse the unpacked copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

__all__ = ["BundleError", "default_bundle_cache", "fetch_bundle"]


class BundleError(RuntimeError):
    """The code bundle could not be fetched, verified or unpacked."""


def default_bundle_cache() -> str:
    """``$CADDIS_BUNDLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/caddis/bundles`` (or ~/.cache)."""
    explicit = os.environ.get("CADDIS_BUNDLE_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "caddis", "bundles")


def _split_digest(digest: str) -> tuple[str, str]:
    algo, _, value = digest.partition(":")
    if not value:
        algo, value = "sha256", algo
    if algo != "sha256" or not value or any(c not in "0123456789abcdef" for c in value.lower()):
        raise BundleError(f"unsupported code bundle digest {digest!r}; expected sha256:<hex>")
    return algo, value.lower()


def _download(uri: str, dest: Path) -> None:
    if "://" not in uri or uri.startswith("file://"):
        path = uri
        if uri.startswith("file://"):
            from urllib.parse import unquote, urlparse

            path = unquote(urlparse(uri).path)
        shutil.copyfile(path, dest)
        return
    from caddis.storage import get_store

    get_store(uri).get_file(uri, dest)


def _safe_extract(archive: Path, target: Path) -> None:
    target_resolved = target.resolve()

    def check(name: str) -> None:
        out = (target / name).resolve()
        if out != target_resolved and target_resolved not in out.parents:
            raise BundleError(f"code bundle entry {name!r} escapes the bundle directory")

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                check(name)
            zf.extractall(target)
        return
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                check(m.name)
                if m.issym() or m.islnk():
                    check(os.path.join(os.path.dirname(m.name), m.linkname))
            tf.extractall(target, filter="data")
    except tarfile.TarError as exc:
        raise BundleError(f"code bundle {archive.name} is not a tar or zip archive: {exc}") from exc


def fetch_bundle(uri: str, digest: str, cache_dir: str | None = None) -> str:
    """Make the bundle at ``uri`` importable; returns the directory put on ``sys.path``.

    Args:
        uri: Location of the archive (``s3://``, ``file://`` or a path).
        digest: ``sha256:<hex>`` of the archive bytes; the archive is refused if it differs.
        cache_dir: Where unpacked bundles are kept (default :func:`default_bundle_cache`).

    Raises:
        BundleError: Download, verification or unpacking failed.
    """
    _algo, hexdigest = _split_digest(digest)
    root = Path(cache_dir or default_bundle_cache()).resolve()
    final = root / hexdigest
    if not (final / ".complete").exists():
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{hexdigest[:12]}-", dir=root))
        try:
            archive = work / "bundle.archive"
            try:
                _download(uri, archive)
            except Exception as exc:
                raise BundleError(f"cannot download code bundle {uri}: {exc}") from exc
            h = hashlib.sha256()
            with open(archive, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != hexdigest:
                raise BundleError(
                    f"code bundle {uri} has digest sha256:{h.hexdigest()}, expected {digest}"
                )
            tree = work / "tree"
            tree.mkdir()
            _safe_extract(archive, tree)
            (tree / ".complete").write_text(digest)
            try:
                # Atomic publish: concurrent fetches of the same digest race harmlessly.
                os.rename(tree, final)
            except OSError:
                if not (final / ".complete").exists():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    path = str(final)
    _activate(path, root)
    return path


def _activate(path: str, cache_root: Path) -> None:
    """Put ``path`` first on sys.path and forget modules imported from other bundles.

    A warm worker runs attempts of different registrations one after the other: modules the
    previous bundle defined must be imported again from this one, not served from
    ``sys.modules``.
    """
    root = str(cache_root.resolve()) + os.sep
    stale = [p for p in sys.path if p != path and p.startswith(root)]
    for p in stale:
        sys.path.remove(p)
    if stale:
        prefixes = tuple(p.rstrip(os.sep) + os.sep for p in stale)
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None) or ""
            if file.startswith(prefixes):
                del sys.modules[name]
        import importlib

        importlib.invalidate_caches()
    if path not in sys.path:
        sys.path.insert(0, path)
