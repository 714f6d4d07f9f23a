#!/usr/bin/env python3
"""How well does `edgebench sweep` scale, and what does it cost per cell?

Prints, for the digits model on loopback sshd "boards" (real OpenSSH servers on 127.0.0.1):
  * conversions performed by a re-run of an unchanged sweep (must be 0: everything from the cache);
  * per-cell overhead: wall time of a cell minus the time it spent measuring (warm-up + measurement);
  * speed-up with K boards vs 1 board: the sweep with K boards has K× the cells (one set per board), so
    speed-up = K · T(1) / T(K); target ≥ 0.9·K when measured time dominates. All boards share this
    machine's cores, so CPU-bound cells contend beyond the core count: the scheduler's own share is
    shown by its efficiency (busy time of the K workers / (K · makespan)).

    .venv/bin/python benchmarks/sweep_scaling.py [--boards 1,2,4] [--cells 4] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from edgebench.cli import main as cli  # noqa: E402
from tests.sshd import SshdBoard  # noqa: E402

DIGITS = ROOT / "edgebench" / "bundled" / "demo"


def spec_for(path: Path, devices: list[str], cells: int, seconds: float, formats: list[str]) -> Path:
    batches = [1, 2, 4, 8, 16, 32, 64, 128][:cells]
    path.write_text(yaml.safe_dump({
        "name": path.stem, "models": [{"name": "digits", "path": str(DIGITS / "digits_cnn.onnx"),
                                       "dataset": str(DIGITS / "eval.npz")}],
        "recipes": ["fp32"], "formats": formats, "devices": devices,
        "options": {"threads": [1], "batch": batches},
        "timing": {"warmup_s": 0.1, "min_iterations": 20, "min_duration_s": seconds, "max_duration_s": seconds * 4}}))
    return path


def run(spec: Path, store: Path, cache: Path) -> tuple[float, list[dict]]:
    out = store.with_suffix(".json")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the sweep's own tables; this script prints the figures
            status = cli(["sweep", str(spec), "--store", str(store), "--cache-dir", str(cache), "--json", str(out)])
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"sweep failed with status {int(status)}")
    return wall, json.loads(out.read_text())


def cell_seconds(r: dict) -> float:
    s = r["extra"]["sweep"]
    return (dt.datetime.fromisoformat(s["finished_utc"]) - dt.datetime.fromisoformat(s["started_utc"])).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", default="1,2,4")
    parser.add_argument("--cells", type=int, default=4, help="cells per board")
    parser.add_argument("--seconds", type=float, default=1.0, help="min_duration_s of each cell")
    args = parser.parse_args(argv)
    ks = [int(k) for k in args.boards.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = root / "cache"
        # 1. re-running an unchanged sweep converts nothing
        spec = spec_for(root / "convert.yaml", ["local-cpu"], 1, 0.2, ["onnx", "openvino"])
        first = _conversions(spec, root / "c1.db", cache)
        again = _conversions(spec, root / "c2.db", cache)
        boards = [SshdBoard(root / f"board{i}", f"board{i}").start() for i in range(max(ks))]
        try:
            profiles = [str(b.profile()) for b in boards]
            rows = []
            for k in ks:
                spec = spec_for(root / f"k{k}.yaml", profiles[:k], args.cells, args.seconds, ["onnx"])
                wall, results = run(spec, root / f"k{k}.db", cache)
                busy = sum(cell_seconds(r) for r in results)
                measured = sum(r["duration_s"] + r["timing"]["warmup_done"]["duration_s"] for r in results)
                rows.append((k, len(results), wall, busy, measured))
        finally:
            for b in boards:
                b.kill()
    print(f"re-run of an unchanged sweep: {first} conversions the first time, {again} the second (target 0)")
    print(f"{'boards':>6} {'cells':>5} {'wall s':>7} {'per-cell overhead s':>20} {'speed-up':>9} {'target':>7} "
          f"{'scheduler efficiency':>21}")
    t1 = rows[0][2] if rows[0][0] == 1 else None
    for k, n, wall, busy, measured in rows:
        overhead = (busy - measured) / n
        speedup = k * t1 / wall if t1 else float("nan")
        print(f"{k:>6} {n:>5} {wall:>7.1f} {overhead:>20.3f} {speedup:>9.2f} {0.9 * k:>7.1f} {busy / (k * wall):>21.2f}")
    print(f"(this machine has {os.cpu_count()} cores: K boards run CPU-bound cells on them side by side)")
    return 0


def _conversions(spec: Path, store: Path, cache: Path) -> int:
    from edgebench.artifacts import cache as artifacts
    before = artifacts.STATS["conversions"]
    run(spec, store, cache)
    return artifacts.STATS["conversions"] - before


if __name__ == "__main__":
    sys.exit(main())
