"""The per-layer profiling pass (``job.profile``): each runtime's own profiler, run after the timed loop on a
second instance of the model, so the latency figures stay unprofiled.

Standard library only (this file runs on the device). A backend's ``profile()`` collects per-node totals from
its runtime's profiler and hands them to ``summary``, which turns them into the reply's ``profile`` part: per
node its mean milliseconds per inference and its share of the profiled total, longest first. Where a runtime
offers no profiler, the part has no ops and a ``note`` that says why and what would provide one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

MIN_ITERATIONS, MAX_ITERATIONS = 10, 100  # inferences in the pass: about a second of them, within these bounds
TOP = 100  # ops kept in the reply, longest first; their shares stay of the whole profiled total


@dataclass
class NodeTime:
    """One node's profiled time over the pass: its op type, the precision (or kernel) it ran in, total ms."""

    op: str
    precision: str | None
    total_ms: float = 0.0


def iterations_for(samples_ns: Sequence[int]) -> int:
    """Inferences in the profiling pass: as many as fit in about a second at the timed median, 10 to 100."""
    ordered = sorted(samples_ns)
    median = ordered[len(ordered) // 2] if ordered else 0
    fit = int(1e9 // median) if median > 0 else MAX_ITERATIONS
    return max(MIN_ITERATIONS, min(MAX_ITERATIONS, fit))


def add(times: dict[str, NodeTime], node: str, op: str, precision: str | None, ms: float) -> None:
    """Add ``ms`` to ``node``'s total (a node seen again in the pass: another inference, or a loop body)."""
    entry = times.setdefault(node, NodeTime(op, precision))
    entry.total_ms += ms


def summary(source: str, iterations: int, times: dict[str, NodeTime], note: str | None = None) -> dict[str, Any]:
    """The reply's ``profile`` part (result.LayerProfile's fields) from per-node totals over ``iterations``."""
    total = sum(t.total_ms for t in times.values())
    ranked = sorted(times.items(), key=lambda item: -item[1].total_ms)
    ops = [{"node": node, "op": t.op, "ms": t.total_ms / iterations, "share": t.total_ms / total if total else 0.0,
            "precision": t.precision} for node, t in ranked[:TOP]]
    if len(ranked) > TOP:
        rest, left = sum(t.total_ms for _, t in ranked[TOP:]), len(ranked) - TOP
        note = "; ".join(filter(None, [note, f"{left} shorter op{'s' if left > 1 else ''} "
                                              f"({rest / total:.1%} of the time) left out"]))
    if not times:
        note = note or f"{source} reported no executed ops"
    return {"source": source, "iterations": iterations if times else 0, "ops": ops, "note": note}


def unsupported(source: str, why: str) -> dict[str, Any]:
    """The ``profile`` part of a runtime that cannot profile: no ops, and why (with what would provide them)."""
    return {"source": source, "iterations": 0, "ops": [], "note": why}


def run_pass(run: Callable[[Any], Any], feeds: Sequence[Any], iterations: int,
             after_each: Callable[[], None] | None = None) -> None:
    """One warm-up inference (the runtime's first-run allocations are not the model's steady state), then
    ``iterations`` over the feeds in turn, calling ``after_each`` after each counted one."""
    run(feeds[0])
    for i in range(iterations):
        run(feeds[i % len(feeds)])
        if after_each is not None:
            after_each()


def ort_node_times(events: list[dict[str, Any]], skip_runs: int = 1) -> tuple[dict[str, NodeTime], int]:
    """Per-node kernel times from an ONNX Runtime profiling trace (Chrome trace JSON: ``Node`` events named
    ``<node>_kernel_time`` with ``args.op_name``/``provider``/types), leaving out the first ``skip_runs``
    ``model_run``s (the warm-up); and how many runs were counted."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    start = runs[skip_runs - 1]["ts"] + runs[skip_runs - 1]["dur"] if 0 < skip_runs <= len(runs) else 0
    times: dict[str, NodeTime] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith("_kernel_time") or e.get("ts", 0) < start:
            continue
        args = e.get("args") or {}
        add(times, name.removesuffix("_kernel_time"), str(args.get("op_name", "?")), _ort_precision(args),
            float(e.get("dur", 0)) / 1e3)  # trace times are µs
    return times, max(0, len(runs) - skip_runs)


def _ort_precision(args: dict[str, Any]) -> str | None:
    """What an ONNX Runtime kernel ran on: its first input's element type (→ its first output's where that
    differs: a quantize, an integer matmul), and the execution provider when it is not the CPU's."""
    def first_type(key: str) -> str | None:
        shapes = args.get(key) or []
        return next(iter(shapes[0]), None) if shapes and isinstance(shapes[0], dict) else None
    given, made = first_type("input_type_shape"), first_type("output_type_shape")
    text = given if made in (None, given) else f"{given}→{made}" if given else made
    provider = str(args.get("provider", "")).removesuffix("ExecutionProvider")
    if provider and provider != "CPU":
        text = f"{text} ({provider})" if text else provider
    return text
