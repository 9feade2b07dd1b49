"""Generate the Python code of the caddis IDL from protos/ (``make gen``).

Steps, in order, so that a bad .proto never reaches code generation:

1. check the pinned toolchain (grpcio-tools, mypy-protobuf, buf): the committed generated
   code must regenerate byte for byte, which only holds with the same tool versions;
2. ``buf format -w`` and ``buf lint`` in protos/;
3. ``python -m grpc_tools.protoc`` over every .proto under protos/caddis_idl, writing
   ``*_pb2.py``, ``*_pb2.pyi``, ``*_pb2_grpc.py`` and ``*_pb2_grpc.pyi`` beside the sources;
4. delete the ``*_pb2_grpc.py(i)`` of files that define no service (protoc writes them anyway,
   nearly empty) and remove generated files whose .proto is gone;
5. write an empty ``__init__.py`` in every caddis_idl directory.

``--check`` runs the same steps on a temporary copy of protos/ and fails, listing every
difference, when the checkout differs from what generation produces (a stale generated file,
a missing one, a leftover one, or a .proto that is not buf-formatted).

``--area core --area event`` limits formatting, linting and generation to those areas, for
iterating while another area is half-written. Stale-file removal is then limited to them too.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTOS_DIRNAME = "protos"
PACKAGE = "caddis_idl"

# Must match the pins in pyproject.toml's dev extra.
PINNED_PYTHON_TOOLS = {"grpcio-tools": "1.85.1", "mypy-protobuf": "5.1.0"}
PINNED_BUF = "1.75.0"

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
# A `service` declaration at the start of a line: comments start with `//`, so a comment that
# mentions a service never matches.
SERVICE_RE = re.compile(r"^\s*service\s+\w+\s*\{", re.MULTILINE)


class GenerationError(Exception):
    """A step of generation failed; the message says which and why."""


def check_toolchain() -> None:
    """Fail unless the installed generator versions are the pinned ones."""
    problems = []
    for dist, wanted in PINNED_PYTHON_TOOLS.items():
        try:
            found = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found = "not installed"
        if found != wanted:
            problems.append(f"{dist}: need {wanted}, found {found}")
    buf = shutil.which("buf", path=_tool_path())
    if buf is None:
        problems.append(f"buf: need {PINNED_BUF}, found not installed (pip install buf-bin)")
    else:
        found = subprocess.run(
            [buf, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found != PINNED_BUF:
            problems.append(f"buf: need {PINNED_BUF}, found {found or 'unknown'}")
    if problems:
        raise GenerationError(
            "proto toolchain does not match the pins (run `make install`):\n  "
            + "\n  ".join(problems)
        )


def _tool_path() -> str:
    # The protoc plugins (protoc-gen-mypy, ...) and buf are console scripts installed beside
    # the interpreter; put that directory first so a venv works without being activated.
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _run(cmd: Sequence[str], cwd: Path, what: str) -> None:
    env = {**os.environ, "PATH": _tool_path()}
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        raise GenerationError(f"{what} failed ({' '.join(cmd)}):\n{output}")


def area_dirs(protos: Path, areas: Iterable[str] | None) -> list[Path]:
    """Return the area directories (protos/caddis_idl/<area>) to work on."""
    root = protos / PACKAGE
    if not areas:
        return sorted(p for p in root.iterdir() if p.is_dir() and p.name != "__pycache__")
    dirs = [root / a for a in areas]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise GenerationError(f"no such IDL area: {', '.join(missing)}")
    return dirs


def proto_files(protos: Path, areas: Iterable[str] | None) -> list[Path]:
    """Return every .proto of the given areas (all areas when None), relative to protos/."""
    files: list[Path] = []
    for d in area_dirs(protos, areas):
        files.extend(p.relative_to(protos) for p in d.rglob("*.proto"))
    return sorted(files)


def buf_format_and_lint(protos: Path, areas: Sequence[str] | None) -> None:
    """Format the .proto sources in place, then lint them."""
    path_args: list[str] = []
    for d in area_dirs(protos, areas) if areas else []:
        path_args += ["--path", str(d.relative_to(protos))]
    _run(["buf", "format", "-w", *path_args], protos, "buf format")
    _run(["buf", "lint", *path_args], protos, "buf lint")


def run_protoc(protos: Path, files: Sequence[Path]) -> None:
    """Generate messages, gRPC stubs and their type stubs beside the sources."""
    if not files:
        raise GenerationError(f"no .proto files under {protos / PACKAGE}")
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-I",
        ".",
        "--python_out=.",
        "--grpc_python_out=.",
        "--mypy_out=.",
        "--mypy_grpc_out=.",
        *(str(f) for f in files),
    ]
    _run(cmd, protos, "protoc")


def tidy(protos: Path, areas: Sequence[str] | None) -> None:
    """Drop service stubs of service-less files and outputs of deleted .proto files."""
    for d in area_dirs(protos, areas):
        for path in sorted(d.rglob("*.py*")):
            name = path.name
            suffix = next((s for s in GENERATED_SUFFIXES if name.endswith(s)), None)
            if suffix is None:
                continue
            source = path.with_name(name[: -len(suffix)] + ".proto")
            if not source.exists():
                path.unlink()  # the .proto was deleted or renamed
            elif "_grpc" in suffix and not SERVICE_RE.search(source.read_text()):
                path.unlink()
    package_dirs = [protos / PACKAGE]
    for root in area_dirs(protos, areas):
        package_dirs += [root, *(p for p in root.rglob("*") if p.is_dir())]
    for d in package_dirs:
        if d.name == "__pycache__":
            continue
        init = d / "__init__.py"
        if not init.exists() or init.read_bytes():
            init.write_bytes(b"")


def generate(protos: Path, areas: Sequence[str] | None = None) -> None:
    """Run every generation step on the protos directory ``protos``."""
    buf_format_and_lint(protos, areas)
    run_protoc(protos, proto_files(protos, areas))
    tidy(protos, areas)


def _snapshot(protos: Path, areas: Sequence[str] | None) -> dict[str, bytes]:
    """Return the sources and generated files of the given areas by relative path."""
    roots = area_dirs(protos, areas)
    files: dict[str, bytes] = {}
    init = protos / PACKAGE / "__init__.py"
    if init.exists():
        files[str(init.relative_to(protos))] = init.read_bytes()
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            if (
                path.suffix == ".proto"
                or path.name == "__init__.py"
                or path.name.endswith(GENERATED_SUFFIXES)
            ):
                files[str(path.relative_to(protos))] = path.read_bytes()
    return files


def diff_listing(current: dict[str, bytes], expected: dict[str, bytes]) -> list[str]:
    """Describe how ``current`` (the checkout) differs from ``expected`` (regenerated)."""
    lines: list[str] = []
    for name in sorted(current.keys() | expected.keys()):
        have, want = current.get(name), expected.get(name)
        if have == want:
            continue
        if have is None:
            lines.append(f"missing: {name}")
        elif want is None:
            lines.append(f"not generated (stale): {name}")
        else:
            what = "not buf-formatted" if name.endswith(".proto") else "differs"
            lines.append(f"{what}: {name}")
            diff = difflib.unified_diff(
                have.decode(errors="replace").splitlines(),
                want.decode(errors="replace").splitlines(),
                f"a/{name}",
                f"b/{name}",
                lineterm="",
                n=1,
            )
            lines.extend("    " + line for line in list(diff)[:40])
    return lines


def check(protos: Path, areas: Sequence[str] | None = None) -> list[str]:
    """Regenerate into a temporary copy and return the differences from ``protos``."""
    with tempfile.TemporaryDirectory(prefix="caddis-gen-check-") as tmp:
        copy = Path(tmp) / PROTOS_DIRNAME
        shutil.copytree(protos, copy, ignore=shutil.ignore_patterns("__pycache__"))
        generate(copy, areas)
        return diff_listing(_snapshot(protos, areas), _snapshot(copy, areas))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary copy and fail if the checkout differs",
    )
    parser.add_argument(
        "--area",
        action="append",
        dest="areas",
        metavar="AREA",
        help="only this area of caddis_idl (repeatable; default: all areas)",
    )
    parser.add_argument(
        "--protos", type=Path, default=REPO_ROOT / PROTOS_DIRNAME, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    protos: Path = args.protos.resolve()
    try:
        check_toolchain()
        if args.check:
            problems = check(protos, args.areas)
            if problems:
                print("generated IDL code is out of date; run `make gen`:", file=sys.stderr)
                print("\n".join(problems), file=sys.stderr)
                return 1
            print("generated IDL code is up to date")
            return 0
        generate(protos, args.areas)
    except GenerationError as exc:
        print(f"gen_protos: {exc}", file=sys.stderr)
        return 1
    print(f"generated Python code for {len(proto_files(protos, args.areas))} .proto files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
