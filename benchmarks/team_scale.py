"""Team scale (issue 18): N simulated hosts sweeping at once over M boards that share one PostgreSQL store.

Each "host" is an ``edgebench sweep`` process with its own device-lock folder — as on a separate machine, only
the PostgreSQL board leases keep them apart — and its own run. The boards are real OpenSSH servers on 127.0.0.1
(the tests' sshd fixture); each board's python is a wrapper that appends the start and end of every runner job
to a log the lease code never touches, so overlaps are counted from the boards' side. Prints, for each N:

- cells/min over the whole batch (all hosts' cells / wall time from the first start to the last end),
- lease wait (from ``edgebench.device_lease_log.waited_s``: mean and max per lease),
- overlaps: pairs of runner jobs on one board whose [start, end] intersect (must be 0),
- lost cells (planned but not stored) and duplicated cells (stored twice in one run) (both must be 0),

then the store's write latency per cell (``add_result`` of a real result, with its raw samples, one transaction
each) for PostgreSQL and SQLite.

    .venv/bin/python benchmarks/team_scale.py [--hosts 1,2,4] [--boards 2] [--options 4] [--json OUT]

Needs sshd and PostgreSQL (``scripts/system-deps.sh`` installs both); run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgebench.store.locate import open_store  # noqa: E402
from tests.postgres import PgServer  # noqa: E402
from tests.sshd import SshdBoard  # noqa: E402

DIGITS = ROOT / "edgebench" / "bundled" / "demo"
TIMING = {"warmup_s": 0.02, "warmup_iterations": 2, "min_iterations": 30, "min_duration_s": 0.3,
          "max_duration_s": 5}
WRAPPER = """#!/bin/sh
# a board's python: runs the real one, logging each runner job's start and end ({log})
case "$1" in *edgebench_runner.py) job=1 ;; *) job=0 ;; esac
[ "$job" = 1 ] && echo "start $$ $(date +%s.%N)" >> {log}
{python} "$@"
rc=$?
[ "$job" = 1 ] && echo "end $$ $(date +%s.%N)" >> {log}
exit $rc
"""


def make_boards(root: Path, count: int) -> list[tuple[SshdBoard, Path, Path]]:
    """``count`` loopback boards: (the sshd, its profile, its job log)."""
    boards = []
    for i in range(count):
        board = SshdBoard(root / f"board{i}", f"board{i}").start()
        log = root / f"board{i}.jobs"
        wrapper = root / f"board{i}-python"
        wrapper.write_text(WRAPPER.format(log=log, python=sys.executable))
        wrapper.chmod(0o755)
        profile = board.profile(root / f"board{i}.yaml", python=str(wrapper))
        boards.append((board, profile, log))
    return boards


def spec_for(root: Path, host: int, profiles: list[Path], options: int) -> Path:
    """Host ``host``'s sweep: the digits CNN on every board, ``options`` cells per board (threads × batch)."""
    grid = list(itertools.product([1, 2], [1, 2, 4, 8]))[:options]
    spec = {"name": f"host{host}", "models": [{"name": "digits", "path": str(DIGITS / "digits_cnn.onnx")}],
            "recipes": ["fp32"], "formats": ["onnx"], "devices": [str(p) for p in profiles],
            "options": {"threads": sorted({t for t, _ in grid}), "batch": sorted({b for _, b in grid})},
            "timing": TIMING}
    path = root / f"host{host}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def planned_cells(spec: Path) -> int:
    data = yaml.safe_load(spec.read_text())
    return len(data["devices"]) * len(data["options"]["threads"]) * len(data["options"]["batch"])


def overlaps(log: Path) -> tuple[int, int]:
    """(jobs, overlapping pairs) from a board's job log."""
    starts: dict[str, float] = {}
    spans = []
    for line in log.read_text().splitlines() if log.exists() else []:
        what, pid, at = line.split()
        if what == "start":
            starts[pid] = float(at)
        elif pid in starts:
            spans.append((starts.pop(pid), float(at)))
    spans.sort()
    pairs = sum(1 for a, b in itertools.combinations(spans, 2) if b[0] < a[1] and a[0] < b[1])
    return len(spans), pairs


def batch(root: Path, url: str, boards: list[tuple[SshdBoard, Path, Path]], hosts: int, options: int,
          cache: Path) -> dict[str, Any]:
    """One batch: ``hosts`` sweeps at once; the figures of the table row."""
    for _, _, log in boards:
        log.unlink(missing_ok=True)
    profiles = [p for _, p, _ in boards]
    specs = [spec_for(root, h, profiles, options) for h in range(hosts)]
    planned = sum(planned_cells(s) for s in specs)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SELECT coalesce(max(id), 0) FROM edgebench.device_lease_log").fetchone()[0] \
            if conn.execute("SELECT to_regclass('edgebench.device_lease_log')").fetchone()[0] else 0
    procs = []
    started = time.monotonic()
    for h, spec in enumerate(specs):
        env = {**os.environ, "EDGEBENCH_LOCK_DIR": str(root / f"locks-host{h}"), "EDGEBENCH_STORE": url}
        procs.append(subprocess.Popen([sys.executable, "-m", "edgebench", "sweep", str(spec), "--cache-dir",
                                       str(cache)], cwd=root, env=env, stdout=subprocess.DEVNULL,
                                      stderr=open(root / f"host{h}.log", "w")))
    codes = [p.wait() for p in procs]
    wall = time.monotonic() - started
    with open_store(url, read_only=True) as store, psycopg.connect(url, autocommit=True) as conn:
        stored = duplicated = failed = 0
        for h in range(hosts):
            run = store.run(f"host{h}")
            results = store.results(run.id)
            keys = [r.cell_key for r in results]
            stored += len(set(keys))
            duplicated += len(keys) - len(set(keys))
            failed += sum(1 for r in results if not r.ok)
        waits = [row[0] for row in conn.execute(
            "SELECT waited_s FROM edgebench.device_lease_log WHERE id > %s", (before,)).fetchall()]
    jobs_pairs = [overlaps(log) for _, _, log in boards]
    return {"hosts": hosts, "boards": len(boards), "cells": planned, "exit_codes": codes, "wall_s": wall,
            "cells_per_min": 60 * stored / wall, "leases": len(waits),
            "lease_wait_mean_s": statistics.fmean(waits) if waits else 0.0,
            "lease_wait_max_s": max(waits) if waits else 0.0,
            "jobs": sum(j for j, _ in jobs_pairs), "overlaps": sum(p for _, p in jobs_pairs),
            "lost": planned - stored, "duplicated": duplicated, "failed": failed}


def write_latency(url: str, sqlite_path: Path, count: int = 50) -> dict[str, dict[str, float]]:
    """Median and p95 ms of ``add_result`` (one transaction, a real result with its raw samples) per store."""
    out = {}
    with open_store(url, read_only=True) as store:
        run = store.run("host0")
        sample = store.results(run.id)[0]
    from edgebench.result import Result

    for name, location in (("postgresql", url), ("sqlite", str(sqlite_path))):
        with open_store(location) as store:
            run_id = store.create_run("write-latency", {})
            times = []
            for i in range(count):
                cell = Result.from_dict({**sample.to_dict(), "options": {**sample.options, "i": i}})
                t0 = time.perf_counter()
                store.add_result(run_id, cell)
                times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        out[name] = {"median_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
                     "bytes_per_cell": len(json.dumps(sample.to_dict(), separators=(",", ":")))}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="1,2,4", help="numbers of simulated hosts, one batch each")
    parser.add_argument("--boards", type=int, default=2)
    parser.add_argument("--options", type=int, default=4, help="cells per board per host (≤ 8)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="team-scale-"))
    server = PgServer()
    boards: list[tuple[SshdBoard, Path, Path]] = []
    try:
        server.start()
        url = server.url(server.new_database())
        boards = make_boards(root, args.boards)
        cache = root / "cache"
        warm = spec_for(root, 99, [boards[0][1]], 1)  # convert once, so the batches time the pool, not the converter
        subprocess.run([sys.executable, "-m", "edgebench", "sweep", str(warm), "--cache-dir", str(cache), "--store",
                        str(root / "warm.db")], cwd=root, check=True, capture_output=True)
        rows = []
        for hosts in (int(h) for h in args.hosts.split(",")):
            db = server.new_database()
            rows.append(batch(root, server.url(db), boards, hosts, args.options, cache))
            row = rows[-1]
            print(f"N={hosts}: {row['cells']} cells in {row['wall_s']:.1f} s", flush=True)
        latency = write_latency(server.url(db), root / "latency.db")
    finally:
        for board, _, _ in boards:
            board.kill()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"| hosts | boards | cells | wall s | cells/min | leases | lease wait mean / max s | jobs | overlaps | lost "
          "| duplicated | failed |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['hosts']} | {r['boards']} | {r['cells']} | {r['wall_s']:.1f} | {r['cells_per_min']:.1f} | "
              f"{r['leases']} | {r['lease_wait_mean_s']:.2f} / {r['lease_wait_max_s']:.2f} | {r['jobs']} | "
              f"{r['overlaps']} | {r['lost']} | {r['duplicated']} | {r['failed']} |")
    print()
    for name, figures in latency.items():
        print(f"store write per cell, {name}: median {figures['median_ms']:.2f} ms, p95 {figures['p95_ms']:.2f} ms "
              f"({figures['bytes_per_cell'] / 1024:.0f} KiB of result JSON per cell)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "write_latency": latency}, indent=2))
    bad = [r for r in rows if r["overlaps"] or r["lost"] or r["duplicated"] or any(r["exit_codes"])]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
