#!/usr/bin/env python3
"""Every corpus model × {onnx, openvino, tflite} × {fp32, fp16, int8, int8-dynamic} through edgebench's own
compare and bench paths: does it convert, run and agree with fp32 — and how fast is int8 against fp32?

The corpus is the real third-party models fetched by scripts/fetch_corpus.py (`make corpus-all`). Per model,
`compare` (edgebench.pipeline.compare) runs every format at each precision on the model's reference data and judges
each output against the fp32 ONNX Runtime reference (cosine, SNR, top-1 agreement where the output is class
scores; the precision's default pass criteria); then `bench` measures p50 latency (1 thread, batch 1) of
every cell that ran, in interleaved rounds so drift hits all cells of a model alike. A .tflite made elsewhere
is benchmarked as it is (no ONNX source to convert or compare with).

Prints the matrix and writes docs/model-zoo.md: per cell ✔/✘ with p50, size against fp32 of the same format
and the agreement, int8-vs-fp32 speed per format, and every ✘ with its one-line reason.

    .venv/bin/python benchmarks/model_zoo.py [--corpus .corpus] [--only M1,M2] [--formats onnx,openvino,tflite]
        [--precisions fp32,fp16,int8,int8-dynamic] [--seconds 1.0] [--rounds 2] [--out docs/model-zoo.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebench import __version__
from edgebench.pipeline.bench import BenchRequest, run_bench
from edgebench.pipeline.compare import Row, compare
from edgebench.config import TimingSpec
from edgebench.errors import EdgebenchError

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("onnx", "openvino", "tflite")
PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic")


@dataclass
class Cell:
    model: str
    format: str
    precision: str
    ok: bool = False
    reason: str = ""
    row: Row | None = None
    p50s: list[float] = field(default_factory=list)
    size_bytes: int | None = None

    @property
    def p50(self) -> float | None:
        return statistics.median(self.p50s) if self.p50s else None


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def agreement_text(row: Row | None) -> str:
    if row is None:
        return ""
    parts = []
    if row.agreement_top1 is not None:
        parts.append(f"top-1 agr {row.agreement_top1:.3f}")
    if row.snr_db is not None:
        parts.append(f"SNR {row.snr_db:.0f} dB")
    if row.cosine is not None:
        parts.append(f"cos {row.cosine:.4f}")
    ious = [o["mask_iou"] for o in row.outputs.values() if o.get("mask_iou") is not None]
    if ious:
        parts.append(f"mask IoU {min(ious):.3f}")
    return ", ".join(parts)


def run_model(entry: dict[str, Any], corpus: Path, formats: list[str], precisions: list[str], cache: Path,
              timing: TimingSpec, rounds: int) -> list[Cell]:
    name, model, data = entry["name"], corpus / entry["file"], corpus / entry["data"]["path"]
    values = {k: float(v) for k, v in (entry.get("suggested_values") or {}).items()}
    if model.suffix == ".tflite":
        cells = [Cell(name, "tflite", "as shipped")]
        pairs = [(cells[0], BenchRequest(model=model, dataset=data, threads=1, timing=timing, name=name))]
    else:
        cells, pairs = [], []
        for precision in precisions:
            try:
                rows = compare(model, formats, data, precision=precision, threads=1, calibration=data,
                               cache_dir=cache, values=values)
            except EdgebenchError as exc:  # the reference itself failed: every cell of this precision
                rows = [Row(f, precision, status="error", passed=False, error=str(exc)) for f in formats]
            for row in rows:
                cell = Cell(name, row.format, precision, row=row)
                cells.append(cell)
                if row.status != "ok":
                    cell.reason = one_line(row.error or "failed")
                    continue
                cell.ok = bool(row.passed)
                if not cell.ok:
                    cell.reason = "agreement: " + one_line("; ".join(row.failures) or "failed the criteria")
                pairs.append((cell, BenchRequest(model=model, dataset=data, threads=1, timing=timing, name=name,
                                                 format=row.format, precision=precision, calibration=data,
                                                 cache_dir=cache, values=values)))
    for _ in range(rounds):  # every cell of the model once per round: interleaved
        for cell, req in pairs:
            try:
                result = run_bench(req)
            except EdgebenchError as exc:
                cell.ok, cell.reason = False, one_line(f"bench: {exc}")
                continue
            if result.p50 is None:
                cell.ok, cell.reason = False, one_line(f"bench: {result.error.message if result.error else 'no samples'}")
                continue
            cell.p50s.append(result.p50)
            cell.size_bytes = result.model.size_bytes
            if model.suffix == ".tflite":
                cell.ok, cell.precision = True, result.model.precision or "as shipped"
    return cells


def cell_from_dict(model: str, d: dict[str, Any]) -> Cell:
    """A cell of an earlier run, from --json."""
    row = Row(**d["row"]) if d.get("row") else None
    return Cell(model, d["format"], d["precision"], ok=d["ok"], reason=d["reason"], row=row,
                p50s=list(d.get("p50_rounds") or []), size_bytes=d.get("size_bytes"))


def speedup(cells: list[Cell], fmt: str, precision: str = "int8") -> float | None:
    by = {(c.format, c.precision): c for c in cells}
    fp32, other = by.get((fmt, "fp32")), by.get((fmt, precision))
    if fp32 is None or other is None or fp32.p50 is None or other.p50 is None:
        return None
    return fp32.p50 / other.p50


def cell_text(cell: Cell, fp32: Cell | None) -> str:
    if cell.p50 is None:
        return "✘"
    size = ""
    if fp32 is not None and fp32.size_bytes and cell.size_bytes and cell is not fp32:
        size = f" · {cell.size_bytes / fp32.size_bytes:.2f}× size"
    agree = agreement_text(cell.row)
    return f"{'✔' if cell.ok else '✘'} {cell.p50:.3f} ms{size}" + (f" · {agree}" if agree else "")


def markdown(all_cells: dict[str, list[Cell]], manifest: dict[str, dict[str, Any]], formats: list[str],
             precisions: list[str], args: argparse.Namespace, seconds: float | None) -> str:
    lines = ["# Model zoo: real third-party models through edgebench", "",
             f"Made by `benchmarks/model_zoo.py` (edgebench {__version__}, {dt.date.today().isoformat()}, "
             f"{platform.machine()}, {platform.processor() or platform.platform()}{f'; {seconds:.0f} s' if seconds else ''}). "
             f"p50 of {args.rounds} interleaved rounds of ≥ {args.seconds:g} s, 1 thread, batch 1, on a shared "
             "2-core machine: compare ratios within a model, not absolute times across runs. "
             "Agreement is against the fp32 ONNX Runtime reference on the model's reference data "
             "(scripts/corpus.md); ✔ = converted, ran and passed the precision's default agreement criteria "
             "(docs/formats.md); ✘ = anything else, with the reason below.", ""]
    for name, cells in all_cells.items():
        entry = manifest[name]
        lines += [f"## {name}", "", f"{entry.get('maker', '')} — {entry.get('task', '')}; "
                  f"{entry['size_bytes'] / 1e6:.1f} MB, opset {entry.get('opset') or '–'}; "
                  f"classes: {', '.join(entry.get('classes', []))}", ""]
        fmts = [f for f in formats if any(c.format == f for c in cells)]
        precs = [p for p in (precisions if cells[0].precision != "as shipped" else []) if
                 any(c.precision == p for c in cells)] or sorted({c.precision for c in cells})
        by = {(c.format, c.precision): c for c in cells}
        lines += ["| format | " + " | ".join(precs) + " | int8 vs fp32 |", "|---" * (len(precs) + 2) + "|"]
        for fmt in fmts:
            fp32 = by.get((fmt, "fp32"))
            row = [cell_text(by[(fmt, p)], fp32) if (fmt, p) in by else "—" for p in precs]
            up = speedup(cells, fmt)
            lines.append(f"| {fmt} | " + " | ".join(row) + f" | {f'{up:.2f}× faster' if up and up >= 1 else (f'{1 / up:.2f}× SLOWER' if up else '—')} |")
        failures = [c for c in cells if not c.ok]
        if failures:
            lines += ["", "Failures:", ""] + [f"- {c.format}/{c.precision}: {c.reason}" for c in failures]
        lines.append("")
    return "\n".join(lines)


BEGIN, END = "<!-- model_zoo.py: measured matrix begins -->", "<!-- model_zoo.py: measured matrix ends -->"


def with_notes(matrix: str, out: Path) -> str:
    """The new matrix between the markers of ``out``, keeping the hand-written text around them."""
    block = f"{BEGIN}\n{matrix}\n{END}"
    old = out.read_text() if out.is_file() else ""
    if BEGIN in old and END in old:
        return old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    return block + "\n"


def write_json(all_cells: dict[str, list[Cell]], path: Path) -> None:
    path.write_text(json.dumps({n: [{"format": c.format, "precision": c.precision, "ok": c.ok, "reason": c.reason,
                                     "p50_ms": c.p50, "p50_rounds": c.p50s, "size_bytes": c.size_bytes,
                                     "row": c.row.to_dict() if c.row else None} for c in cells]
                                for n, cells in all_cells.items()}, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / ".corpus")
    parser.add_argument("--only", default="")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".edgebench" / "zoo-cache")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "model-zoo.md")
    parser.add_argument("--json", type=Path, default=None, help="write every cell here (with --merge: read too)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the cells --json already holds that are not run now (re-run some cells)")
    args = parser.parse_args(argv)
    manifest_path = args.corpus / "manifest.json"
    if not manifest_path.is_file():
        print(f"no corpus at {args.corpus}: run 'make corpus-all'", file=sys.stderr)
        return 2
    manifest = {m["name"]: m for m in json.loads(manifest_path.read_text())["models"]}
    only = [s for s in args.only.split(",") if s]
    formats, precisions = args.formats.split(","), args.precisions.split(",")
    timing = TimingSpec(warmup_s=0.2, warmup_iterations=5, min_iterations=20, min_duration_s=args.seconds,
                        max_duration_s=args.seconds * 10)
    start = time.monotonic()
    all_cells: dict[str, list[Cell]] = {}
    if args.merge and args.json and args.json.is_file():
        all_cells = {n: [cell_from_dict(n, c) for c in cells] for n, cells in json.loads(args.json.read_text()).items()
                     if n in manifest}
    for name, entry in manifest.items():
        if only and name not in only:
            continue
        t0 = time.monotonic()
        if args.merge and not only:
            continue  # --merge alone: re-render what --json holds
        cells = run_model(entry, args.corpus, formats, precisions, args.cache_dir, timing, args.rounds)
        new = {(c.format, c.precision) for c in cells}
        all_cells[name] = [c for c in all_cells.get(name, []) if (c.format, c.precision) not in new] + cells
        ok = sum(c.ok for c in cells)
        ups = ", ".join(f"{f} {u:.2f}×" for f in formats if (u := speedup(cells, f)) is not None)
        print(f"{name:24s} {ok}/{len(cells)} ✔  int8 vs fp32 speed: {ups or '—'}  ({time.monotonic() - t0:.0f} s)",
              flush=True)
        for c in cells:
            print(f"    {c.format:9s} {c.precision:13s} {cell_text(c, None):60s} {c.reason[:160]}", flush=True)
    all_cells = {n: all_cells[n] for n in manifest if n in all_cells}  # the corpus's order
    if args.json:
        write_json(all_cells, args.json)
    text = markdown(all_cells, manifest, list(FORMATS), list(PRECISIONS), args,  # every column a cell has
                    None if args.merge else time.monotonic() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(with_notes(text, args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
