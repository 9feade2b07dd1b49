"""Time ``CaddisRemote.execute(count_characters.wf, wait=True)`` against a fresh sandbox.

The "count_characters remote" row of ``run_all.py`` on its own: the sandbox on its embedded
defaults (SQLite, local blobs), one warm-up launch (which registers the code), then ``--reps``
launches of the same workflow from the same ``CaddisRemote``; prints the first launch and the
median, and the median time admin saw between creating the execution and its terminal event
(the rest is the client's registration, launch and polling), and the CPU time per launch of
each service process (``/proc``; children such as task workers not included) and of this
client. ``--profile FILE`` writes a cProfile of one extra launch (client side only).

    python benchmarks/remote_launch.py [--reps 10] [--profile /tmp/launch.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _cpu(state_dir: Path) -> dict[str, float]:
    """CPU seconds (user + system) so far of each sandbox service process and of this one."""
    import os

    from caddis._sandbox import processes as p

    tick = os.sysconf("SC_CLK_TCK")
    out = {"client": time.process_time()}
    for name, state in p.read_state(state_dir).items():
        try:
            fields = Path(f"/proc/{state.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / tick
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--profile", default="")
    args = parser.parse_args()

    from benchmarks.run_all import _import_copy, sandbox
    from caddis.remote import CaddisRemote

    with (
        sandbox() as (tmp, state_dir),
        CaddisRemote(config_file=state_dir / "client.yaml") as remote,
    ):
        cc = _import_copy(tmp / "code", "count_characters")

        in_admin: list[float] = []

        def run() -> float:
            began = time.perf_counter()
            ex = remote.execute(cc.wf, {"s1": "Pear", "s2": "Earth"}, wait=True, timeout=600)
            took = time.perf_counter() - began
            c = ex.proto.closure
            in_admin.append((c.updated_at.ToNanoseconds() - c.created_at.ToNanoseconds()) / 1e9)
            if not ex.is_successful or ex.outputs != {"o0": 3}:
                raise RuntimeError(f"{ex.name} {ex.phase}: {ex.error} {ex.outputs}")
            return took

        first = run()
        in_admin.clear()
        cpu_before = _cpu(state_dir)
        times = [run() for _ in range(args.reps)]
        cpu_after = _cpu(state_dir)
        admin_times = list(in_admin)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            run()
            prof.disable()
            prof.dump_stats(args.profile)
    print(
        json.dumps(
            {
                "first_ms": round(first * 1e3, 1),
                "median_ms": round(statistics.median(times) * 1e3, 1),
                "min_ms": round(min(times) * 1e3, 1),
                "max_ms": round(max(times) * 1e3, 1),
                "times_ms": [round(t * 1e3) for t in times],
                # Admin's created_at -> last update (the terminal event): the run itself.
                "admin_median_ms": round(statistics.median(admin_times) * 1e3, 1),
                "cpu_ms_per_launch": {
                    name: round((cpu_after[name] - cpu_before[name]) * 1e3 / args.reps)
                    for name in cpu_before
                    if name in cpu_after
                },
            }
        )
    )


if __name__ == "__main__":
    main()
