"""Parsing of storage URIs: ``file:///abs/path``, plain local paths and ``s3://bucket/key``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from caddis.storage._errors import InvalidURIError

__all__ = ["ParsedURI", "parse_uri", "scheme_of"]

SCHEMES = ("file", "s3")


@dataclass(frozen=True)
class ParsedURI:
    """A storage URI split into its parts.

    Attributes:
        scheme: ``"file"`` or ``"s3"``.
        bucket: The S3 bucket; empty for file.
        key: The S3 object key (or key prefix), or the absolute local path for file. A trailing
            ``/`` is kept: it marks a prefix.
    """

    scheme: str
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        """The canonical URI (``file://`` + absolute path, or ``s3://bucket/key``)."""
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.key}"
        return f"file://{self.key}"


def scheme_of(uri: str | os.PathLike[str]) -> str:
    """The storage scheme of ``uri``: ``"s3"`` or ``"file"`` (plain paths count as file).

    Raises:
        InvalidURIError: For any other scheme.
    """
    text = os.fspath(uri)
    head, sep, _ = text.partition("://")
    if not sep:
        return "file"
    scheme = head.lower()
    if scheme not in SCHEMES:
        raise InvalidURIError(
            f"unsupported storage scheme {scheme!r} in {text!r}; use file:// or s3://",
            uri=text,
            operation="parse",
        )
    return scheme


def parse_uri(uri: str | os.PathLike[str]) -> ParsedURI:
    """Split ``uri`` into scheme, bucket and key.

    Plain paths (absolute or relative to the working directory) become file URIs. File URIs are
    not percent-decoded: ``file://`` is followed by the path as it is on disk.

    Raises:
        InvalidURIError: For an unsupported scheme, an s3 URI without a bucket, or a file URI
            naming a remote host.
    """
    text = os.fspath(uri)
    scheme = scheme_of(text)
    if scheme == "s3":
        rest = text.split("://", 1)[1]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise InvalidURIError(
                f"s3 URI {text!r} has no bucket; use s3://bucket/key", uri=text, operation="parse"
            )
        return ParsedURI("s3", bucket, key)
    if "://" in text:
        rest = text.split("://", 1)[1]
        host, slash, path = rest.partition("/")
        if host not in ("", "localhost"):
            raise InvalidURIError(
                f"file URI {text!r} names host {host!r}; only local files are supported",
                uri=text,
                operation="parse",
            )
        text = slash + path
        if not text:
            raise InvalidURIError(f"file URI {uri!r} has no path", uri=str(uri), operation="parse")
    trailing = text.endswith(("/", os.sep))
    path = os.path.abspath(os.path.expanduser(text))
    if trailing and not path.endswith("/"):
        path += "/"
    return ParsedURI("file", "", path)
