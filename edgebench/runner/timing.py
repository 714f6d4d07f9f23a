"""The timing rules (after MLPerf LoadGen, trtexec and benchmark_model), with the clock injected.

Warm-up runs until it has done at least ``warmup_iterations`` AND ``warmup_s``; measurement then runs
until both ``min_iterations`` and ``min_duration_s`` are met, and never past ``max_duration_s``
(warm-up is capped by ``max_duration_s`` too). Each iteration is timed on its own with a monotonic
ns clock and feeds the next of several distinct inputs, never one pre-filled buffer. With ``feed`` (the
backend's), each input is written into the runtime's input memory right before the timer starts, so a sample
times the inference alone, as benchmark_app and benchmark_model time it; ``infer`` then finds it in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence


@dataclass(frozen=True)
class TimingRules:
    warmup_iterations: int = 5
    warmup_s: float = 0.5
    min_iterations: int = 50
    min_duration_s: float = 1.0
    max_duration_s: float = 60.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TimingRules":
        known = {k: data[k] for k in cls.__dataclass_fields__ if data.get(k) is not None}
        return cls(**known)


class Window(Protocol):
    """Something started right before the first timed iteration and stopped right after the last (a power meter)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def measure(infer: Callable[[Any], Any], feeds: Sequence[Any], rules: TimingRules,
            clock: Callable[[], int], window: Window | None = None,
            feed: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Warm up, then time iterations (``window`` started and stopped around them, outside every sample; ``feed``
    called with each input right before its timer starts); returns raw samples and whether each minimum was met."""
    put = feed or _nothing
    n_feeds = len(feeds)
    max_ns = int(rules.max_duration_s * 1e9)

    start = clock()
    warm = 0
    while True:
        put(feeds[warm % n_feeds])
        infer(feeds[warm % n_feeds])
        warm += 1
        elapsed = clock() - start
        done = warm >= rules.warmup_iterations and elapsed >= rules.warmup_s * 1e9
        if done or elapsed >= max_ns:
            break
    warmup_ns = clock() - start

    samples: list[int] = []
    min_ns = int(rules.min_duration_s * 1e9)
    if window is not None:
        window.start()
    start = clock()
    i = warm
    while True:
        x = feeds[i % n_feeds]
        put(x)
        t0 = clock()
        infer(x)
        t1 = clock()
        samples.append(t1 - t0)
        i += 1
        elapsed = t1 - start
        if elapsed >= max_ns or (len(samples) >= rules.min_iterations and elapsed >= min_ns):
            break
    duration_ns = clock() - start
    if window is not None:
        window.stop()
    return {
        "samples_ns": samples,
        "iterations": len(samples),
        "duration_s": duration_ns / 1e9,
        "warmup": {"iterations": warm, "duration_s": warmup_ns / 1e9},
        "validity": {
            "min_iterations_met": len(samples) >= rules.min_iterations,
            "min_duration_met": duration_ns >= min_ns,
            "stopped_by_max_duration": duration_ns >= max_ns,
        },
    }


def _nothing(_: Any) -> None:
    """No ``feed``: ``infer`` writes its input itself, inside the sample."""


def measure_pair(infers: Sequence[Callable[[Any], Any]], feeds: Sequence[Sequence[Any]], rules: TimingRules,
                 block_s: float, clock: Callable[[], int],
                 feeders: Sequence[Callable[[Any], None] | None] = (None, None)) -> list[dict[str, Any]]:
    """Two models in one process: both warmed up, then timed in alternating blocks (each at least
    ``block_s`` and one iteration; the first of each block pair alternating A B, B A …) until both have
    their minimums, never past ``max_duration_s`` of measuring. Load that comes and goes on the device
    then falls on both models alike; ``feeders`` as ``measure``'s ``feed``. One ``measure``-shaped dict per model."""
    warm = [measure(infer, f, TimingRules(rules.warmup_iterations, rules.warmup_s, 1, 0.0, rules.max_duration_s),
                    clock, feed=put)["warmup"] for infer, f, put in zip(infers, feeds, feeders)]
    puts = [put or _nothing for put in feeders]
    samples: tuple[list[int], list[int]] = ([], [])
    spent = [0, 0]
    counters = [0, 0]
    block_ns, max_ns, min_ns = int(block_s * 1e9), int(rules.max_duration_s * 1e9), int(rules.min_duration_s * 1e9)
    start = clock()
    k = 0
    while True:
        for side in ((0, 1) if k % 2 == 0 else (1, 0)):
            infer, put, own, n_feeds = infers[side], puts[side], samples[side], len(feeds[side])
            block_start = clock()
            while True:
                x = feeds[side][counters[side] % n_feeds]
                put(x)
                t0 = clock()
                infer(x)
                t1 = clock()
                own.append(t1 - t0)
                counters[side] += 1
                if t1 - block_start >= block_ns:
                    break
            spent[side] += clock() - block_start
        k += 1
        met = all(len(s) >= rules.min_iterations and t >= min_ns for s, t in zip(samples, spent))
        if met or clock() - start >= max_ns:
            break
    stopped = clock() - start >= max_ns
    return [{
        "samples_ns": own,
        "iterations": len(own),
        "duration_s": spent[side] / 1e9,
        "warmup": {**warm[side], "blocks": k},
        "validity": {
            "min_iterations_met": len(own) >= rules.min_iterations,
            "min_duration_met": spent[side] >= min_ns,
            "stopped_by_max_duration": stopped,
        },
    } for side, own in enumerate(samples)]
