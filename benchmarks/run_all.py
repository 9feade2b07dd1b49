"""Run the standard benchmark set and write one markdown table with the machine description.

    python benchmarks/run_all.py [--quick] [--out benchmarks/results.md] [--no-flytekit]

The set, each figure from the existing scripts or the examples:

- local per-task overhead (static chains, ``@dynamic`` fan-out) and ``map_task`` over 10,000
  items: ``sdk_local.py``, caddis and (when installed) flytekit;
- ``count_characters`` ("Pear", "Earth") locally: the example itself, timed in a fresh
  interpreter, caddis and flytekit;
- a fully cached rerun locally: ``cached_pipeline`` run once, then timed again;
- remotely through the sandbox (admin, propeller, datacatalog as processes; SQLite and a local
  directory): ``count_characters`` launch-to-outputs and the fully cached rerun of
  ``cached_pipeline``;
- propeller with real task processes: map over 10,000 items and a dynamic fan-out of 1,000
  (``propeller_e2e.py``);
- admin CreateExecution and GetExecution requests per second on PostgreSQL
  (``admin_throughput.py``).

``--quick`` shrinks every part (a smoke test of the harness, not a measurement). Under flytekit
the same program text runs with ``caddis`` replaced by ``flytekit`` in the interpreter at
``--flytekit-python`` (default ``/opt/flytekit-venv/bin/python``); the table gives the
flytekit/caddis ratio (above 1 means caddis is faster).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import sdk_local  # type: ignore[import-not-found]  # noqa: E402


@dataclass
class Row:
    """One line of the results table.

    Attributes:
        name: What was measured.
        unit: Unit of the figures.
        caddis: caddis's figure (``None`` when not measured).
        flytekit: flytekit's figure on the same program, when measured.
        note: How it was measured.
    """

    name: str
    unit: str
    caddis: float | None
    flytekit: float | None = None
    note: str = ""


@dataclass
class Results:
    """Everything a run produced."""

    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        """Append a :class:`Row`."""
        self.rows.append(Row(*args, **kwargs))


# ----------------------------------------------------------------------------- machine
def _sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return ""


def machine() -> dict[str, str]:
    """CPU model, cores, memory, OS, Python and git commit of this run."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    commit = _sh("git", "rev-parse", "--short", "HEAD")
    if _sh("git", "status", "--porcelain", "--untracked-files=no"):
        commit += " (working tree has uncommitted changes)"
    return {
        "cpu": cpu or "unknown",
        "cores": str(os.cpu_count()),
        "memory": mem or "unknown",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": commit or "unknown",
    }


def load() -> str:
    """The 1/5/15-minute load averages."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# ----------------------------------------------------------------------------- local SDK
def sdk_overhead(res: Results, quick: bool, flytekit: str | None) -> None:
    """Per-task overhead and the local 10,000-item map from ``sdk_local.py``."""
    runs = 1
    caddis = sdk_local.bench(sys.executable, "caddis", quick, runs)
    fk = sdk_local.bench(flytekit, "flytekit", quick, 1) if flytekit else {}
    note = "sdk_local.py, CPU time, median" + (" (quick: 1 repeat)" if quick else "")
    for key, label, unit in [
        ("chain50_ms_per_task", "local per-task overhead, 50-task chain", "ms/task"),
        ("chain500_ms_per_task", "local per-task overhead, 500-task chain", "ms/task"),
        ("dyn500_ms_per_task", "local per-task overhead, @dynamic fan-out of 500", "ms/task"),
        ("map10000_total_s", "local map_task over 10,000 items", "s"),
        ("import_task_workflow_ms", "`from <sdk> import task, workflow`", "ms"),
    ]:
        res.add(label, unit, caddis.get(key), fk.get(key), note)


EXAMPLE_TIMER = textwrap.dedent(
    """
    import json, statistics, sys, time
    sys.path.insert(0, sys.argv[1])
    import {module} as m
    reps = int(sys.argv[2])
    t = time.perf_counter()
    first = m.{call}
    first_s = time.perf_counter() - t
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = m.{call}
        times.append(time.perf_counter() - t)
        assert out == first, (out, first)
    again_s = statistics.median(times)
    print(json.dumps({{"first_s": first_s, "again_s": again_s, "out": str(first)}}))
    """
)


def time_example(python: str, pkg: str, example: str, call: str, reps: int) -> dict[str, Any]:
    """Run ``examples/<example>.py`` (with ``caddis`` replaced by ``pkg``) in a fresh
    interpreter: wall time of the first call and median of ``reps`` further calls."""
    source = (ROOT / "examples" / f"{example}.py").read_text()
    if pkg != "caddis":
        source = re.sub(r"\bfrom caddis\b", f"from {pkg}", source)
    with tempfile.TemporaryDirectory(prefix="caddis-bench-") as tmp:
        mod = f"bench_{example}"
        (Path(tmp) / f"{mod}.py").write_text(source)
        runner = Path(tmp) / "runner.py"
        runner.write_text(EXAMPLE_TIMER.format(module=mod, call=call))
        env = dict(os.environ, CADDIS_LOCAL_CACHE_DIR=os.path.join(tmp, "cache"), HOME=tmp)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / p) for p in ("sdk", "protos", "propeller")] + [env.get("PYTHONPATH", "")]
        )
        proc = subprocess.run(
            [python, str(runner), tmp, str(reps)],
            capture_output=True,
            text=True,
            cwd=tmp,
            env=env,
            timeout=900,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{example} under {pkg} failed:\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def local_examples(res: Results, quick: bool, flytekit: str | None) -> None:
    """count_characters and a fully cached rerun, run locally."""
    reps = 3 if quick else 20
    cc = 'wf(s1="Pear", s2="Earth")'
    c = time_example(sys.executable, "caddis", "count_characters", cc, reps)
    assert c["out"] == "3", c
    f = time_example(flytekit, "flytekit", "count_characters", cc, reps) if flytekit else None
    res.add(
        "count_characters local (Pear, Earth)",
        "ms",
        c["again_s"] * 1e3,
        f["again_s"] * 1e3 if f else None,
        f"wall, median of {reps} after a warm-up call",
    )
    call = 'pipeline(n=1000, report_style="long")'
    c = time_example(sys.executable, "caddis", "cached_pipeline", call, reps)
    f = time_example(flytekit, "flytekit", "cached_pipeline", call, reps) if flytekit else None
    res.add(
        "fully cached rerun local (cached_pipeline, 4 cached tasks)",
        "ms",
        c["again_s"] * 1e3,
        f["again_s"] * 1e3 if f else None,
        f"wall, median of {reps} reruns after the run that fills the cache",
    )


# ----------------------------------------------------------------------------- remote
def _import_copy(code_dir: Path, example: str) -> Any:
    import importlib

    # code_dir is the bundled code root: it must hold nothing but code (not the sandbox's
    # blobs), or every registration re-packs a growing tree.
    code_dir.mkdir(exist_ok=True)
    name = f"bench_{example}_{os.getpid()}"
    (code_dir / f"{name}.py").write_text((ROOT / "examples" / f"{example}.py").read_text())
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    return importlib.import_module(name)


@contextlib.contextmanager
def sandbox() -> Iterator[tuple[Path, Path]]:
    """A sandbox on embedded defaults in a temporary directory, stopped at the end.

    Yields:
        The temporary directory (for code copies) and the sandbox's state directory (its
        ``client.yaml``, the services' pid files).
    """
    from caddis._sandbox import processes as p
    from tests.support import free_port

    with tempfile.TemporaryDirectory(prefix="caddis-bench-sandbox-") as tmp:
        opts = p.SandboxOptions(
            state_dir=Path(tmp) / "sandbox", ports={s: free_port() for s in p.SERVICES}
        )
        opts.state_dir.mkdir()
        p.start(opts, timeout=120, echo=lambda _m: None)
        try:
            yield Path(tmp), opts.state_dir
        finally:
            p.stop(opts.state_dir, echo=lambda _m: None)


def remote_examples(res: Results, quick: bool) -> None:
    """count_characters and a fully cached rerun through the sandbox (SQLite, local dir)."""
    from caddis.remote import CaddisRemote

    reps = 2 if quick else 10
    with (
        sandbox() as (tmp, state_dir),
        CaddisRemote(config_file=state_dir / "client.yaml") as remote,
    ):
        cc = _import_copy(tmp / "code", "count_characters")
        cp = _import_copy(tmp / "code", "cached_pipeline")

        def run(entity: Any, inputs: dict[str, Any], expect: Any = None) -> float:
            began = time.perf_counter()
            ex = remote.execute(entity, inputs, wait=True, timeout=600)
            took = time.perf_counter() - began
            if not ex.is_successful:
                raise RuntimeError(f"{ex.name} {ex.phase}: {ex.error}")
            if expect is not None and ex.outputs != {"o0": expect}:
                raise RuntimeError(f"{ex.name}: {ex.outputs} != {expect}")
            return took

        # The first launch registers the code (bundle upload); later ones do not.
        first = run(cc.wf, {"s1": "Pear", "s2": "Earth"}, 3)
        times = [run(cc.wf, {"s1": "Pear", "s2": "Earth"}, 3) for _ in range(reps)]
        res.add(
            "count_characters remote (sandbox, launch to outputs)",
            "ms",
            statistics.median(times) * 1e3,
            note=f"median of {reps}; first launch incl. registration "
            f"{first * 1e3:.0f} ms; 19 tasks in a @dynamic",
        )
        inputs = {"n": 1000, "report_style": "long"}
        fill = run(cp.pipeline, inputs)
        times = [run(cp.pipeline, inputs) for _ in range(reps)]
        res.add(
            "fully cached rerun remote (cached_pipeline, 4 cached tasks)",
            "ms",
            statistics.median(times) * 1e3,
            note=f"median of {reps}; the run filling the cache took {fill * 1e3:.0f} ms",
        )


def propeller_scale(res: Results, quick: bool) -> None:
    """Map over 10,000 items and a dynamic fan-out of 1,000 with ``propeller_e2e.py``."""
    items, fan = (200, 50) if quick else (10_000, 1000)
    args = ["--map-items", str(items), "--fan-out", str(fan)]
    args += ["--launches", "2"] if quick else ["--launches", "10"]
    proc = subprocess.run(
        [sys.executable, str(BENCH / "propeller_e2e.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"propeller_e2e.py failed:\n{proc.stderr[-2000:]}")
    out = proc.stdout
    data = json.loads(out[out.index("{") : out.rindex("}") + 1])
    note = "propeller_e2e.py: propeller + task processes (warm workers), fake admin"
    res.add(f"map over {items:,} items (remote)", "s", data.get(f"map_{items}_s"), note=note)
    res.add(
        f"dynamic fan-out of {fan:,} (remote)",
        "s",
        data.get(f"dynamic_fan_out_{fan}_s"),
        note=note,
    )
    res.add(
        "submit to first task start p50",
        "ms",
        data.get("submit_to_first_task_start_p50_ms"),
        note=note,
    )
    res.add(
        "count_characters propeller only p50",
        "ms",
        data.get("count_characters_e2e_p50_ms"),
        note=note + " (its own count_characters workflow)",
    )


def admin_rps(res: Results, quick: bool) -> None:
    """CreateExecution/s and GetExecution/s from ``admin_throughput.py``."""
    args = ["--runs", "1"]
    args += (
        ["--seconds", "1", "--rows", "200", "--threads", "4", "--clients", "1"]
        if quick
        else ["--seconds", "5", "--rows", "5000"]
    )
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run(
        [sys.executable, str(BENCH / "admin_throughput.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"admin_throughput.py failed:\n{proc.stderr[-2000:]}")

    def rate(rpc: str) -> float | None:
        m = re.search(rf"{rpc}:\s+([\d,]+)/s \(([^)]*)\)", proc.stdout)
        return float(m.group(1).replace(",", "")) if m else None

    note = "admin_throughput.py, PostgreSQL, " + ("quick" if quick else "5 s, 8 threads")
    clients = "1 client process" if quick else "2 client processes"
    res.add("admin CreateExecution", "req/s", rate("CreateExecution"), note=note)
    res.add("admin GetExecution", "req/s", rate("GetExecution"), note=f"{note}, {clients}")


# ----------------------------------------------------------------------------- report
def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def render(res: Results, info: dict[str, str], args: argparse.Namespace, took: float) -> str:
    """The results as markdown."""
    cmd = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    lines = [
        "# caddis standard benchmark set" + (" (quick)" if args.quick else ""),
        "",
        f"`{cmd}` — {time.strftime('%Y-%m-%d %H:%M %Z')}, {took:.0f} s",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores; memory {info['memory']}; {info['os']}",
        f"- Python {info['python']}; git commit {info['commit']}",
        f"- load average (1/5/15 min): start {info['load_start']}, end {info['load_end']}",
        f"- flytekit: {info['flytekit']}",
        "",
        "| benchmark | unit | caddis | flytekit | flytekit / caddis | how |",
        "|---|---|---|---|---|---|",
    ]
    for r in res.rows:
        ratio = f"{r.flytekit / r.caddis:.1f}x" if r.flytekit and r.caddis else ""
        lines.append(
            f"| {r.name} | {r.unit} | {_fmt(r.caddis)} | {_fmt(r.flytekit)} | {ratio} | {r.note} |"
        )
    if res.skipped:
        lines += ["", "Not measured:", ""] + [f"- {s}" for s in res.skipped]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the set; write the markdown table to ``--out`` and print it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    ap.add_argument("--out", default=str(BENCH / "results.md"))
    ap.add_argument("--flytekit-python", default=sdk_local.DEFAULT_FLYTEKIT)
    ap.add_argument("--no-flytekit", action="store_true")
    args = ap.parse_args(argv)

    flytekit = None
    fk_info = "not installed"
    if not args.no_flytekit and os.path.exists(args.flytekit_python):
        flytekit = args.flytekit_python
        version = _sh(flytekit, "-c", "import flytekit; print(flytekit.__version__)")
        fk_info = f"{version} ({flytekit})"
    elif args.no_flytekit:
        fk_info = "not run (--no-flytekit)"

    info = machine() | {"load_start": load(), "flytekit": fk_info}
    began = time.monotonic()
    res = Results()
    parts: list[tuple[str, Callable[[], None]]] = [
        ("local SDK overhead", lambda: sdk_overhead(res, args.quick, flytekit)),
        ("local examples", lambda: local_examples(res, args.quick, flytekit)),
        ("remote examples (sandbox)", lambda: remote_examples(res, args.quick)),
        ("propeller scale", lambda: propeller_scale(res, args.quick)),
        ("admin requests/s", lambda: admin_rps(res, args.quick)),
    ]
    for label, part in parts:
        t = time.monotonic()
        print(f"[run_all] {label} (load {load()}) ...", file=sys.stderr, flush=True)
        try:
            part()
        except Exception as exc:  # one failing part must not lose the others' numbers
            first = str(exc).strip().splitlines()
            res.skipped.append(f"{label}: {type(exc).__name__}: {first[0] if first else ''}")
            print(f"[run_all] {label} failed: {exc}", file=sys.stderr, flush=True)
        print(f"[run_all] {label}: {time.monotonic() - t:.0f} s", file=sys.stderr, flush=True)
    info["load_end"] = load()
    text = render(res, info, args, time.monotonic() - began)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 1 if res.skipped else 0


if __name__ == "__main__":
    sys.exit(main())
