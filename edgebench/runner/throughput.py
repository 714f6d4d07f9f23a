"""Throughput mode: several requests in flight at once (benchmark_app ``-hint throughput``, trtexec
``--infStreams``), and CPU affinity. Standard library only (and what the caller hands in).

``streams`` are the model's independent execution instances (OpenVINO streams, ONNX Runtime sessions, TFLite
interpreters, TensorRT execution contexts); ``requests`` the inferences in flight, each worker feeding the next
input as soon as its previous one returns. Warm-up runs every worker until the job's warm-up rules are met (and
each worker has run once); the timed window then runs until ``min_iterations`` completions and
``min_duration_s``, never past ``max_duration_s``. Inferences per second are the completions inside the window
over its length; each completion's own latency (under that load) is a sample.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Sequence

from .timing import TimingRules

MODES = ("latency", "throughput")
_POLL_S = 0.002  # how often the coordinator looks at the completion count


class AffinityError(ValueError):
    """CPUs this process cannot run on: one line for the user."""


def pin(cpus: Sequence[int]) -> list[int]:
    """Pin this process (and the threads it starts later) to ``cpus``; the CPUs it then runs on, sorted."""
    if not hasattr(os, "sched_setaffinity"):
        raise AffinityError("this device's OS offers no CPU affinity (os.sched_setaffinity): remove cpus")
    allowed = sorted(os.sched_getaffinity(0))
    bad = sorted(set(cpus) - set(allowed))
    if bad:
        raise AffinityError(f"cpus {', '.join(map(str, bad))} {'is' if len(bad) == 1 else 'are'} not among the CPUs "
                            f"this device lets the runner use ({', '.join(map(str, allowed))}): fix --cpus or the "
                            "profile's cpus")
    os.sched_setaffinity(0, set(cpus))
    return sorted(os.sched_getaffinity(0))


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def counts(streams: int | None, requests: int | None) -> tuple[int, int]:
    """(streams, requests) where each instance serves its own requests: either one given sets the other, and
    neither means one of each per CPU this process may use."""
    requests = requests or streams or usable_cpus()
    return streams or requests, requests


def measure_concurrent(workers: Sequence[Callable[[Any], Any]], feeds: Sequence[Any], rules: TimingRules,
                       clock: Callable[[], int] = time.perf_counter_ns) -> dict[str, Any]:
    """One thread per worker (each an ``infer`` bound to its own instance, or several sharing a thread-safe
    one), all in flight at once; the runtimes release the GIL while they infer."""
    ends: list[list[tuple[int, int]]] = [[] for _ in workers]
    stop = threading.Event()
    failures: list[BaseException] = []

    def loop(index: int) -> None:
        infer, own, n = workers[index], ends[index], len(feeds)
        i = index
        try:
            while not stop.is_set():
                t0 = clock()
                infer(feeds[i % n])
                own.append((t0, clock()))
                i += len(workers)
        except BaseException as exc:  # reported by the coordinator, which stops the others
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(len(workers))]
    return _coordinate(threads, ends, stop, failures, rules, clock)


def measure_async(submit: Callable[[Any], None], drain: Callable[[], None], ends: list[tuple[int, int]],
                  feeds: Sequence[Any], rules: TimingRules, clock: Callable[[], int] = time.perf_counter_ns
                  ) -> dict[str, Any]:
    """A runtime's own request queue (OpenVINO's AsyncInferQueue, driven as benchmark_app drives it):
    ``submit(feed)`` waits for a free request, appends the (start, end) of the one that finished there to
    ``ends`` and starts the next; ``drain`` waits for those in flight."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def loop() -> None:
        i = 0
        try:
            while not stop.is_set():
                submit(feeds[i % len(feeds)])
                i += 1
            drain()
        except BaseException as exc:
            failures.append(exc)
            stop.set()

    return _coordinate([threading.Thread(target=loop, daemon=True)], [ends], stop, failures, rules, clock)


def _coordinate(threads: list[threading.Thread], ends: list[list[tuple[int, int]]], stop: threading.Event,
                failures: list[BaseException], rules: TimingRules, clock: Callable[[], int]) -> dict[str, Any]:
    max_ns, min_ns = int(rules.max_duration_s * 1e9), int(rules.min_duration_s * 1e9)
    start = clock()
    for t in threads:
        t.start()
    while not stop.is_set():  # warm-up: its rules met, and every worker (or the queue) has run
        elapsed = clock() - start
        warm = sum(map(len, ends)) >= rules.warmup_iterations and elapsed >= rules.warmup_s * 1e9 \
            and all(ends)
        if warm or elapsed >= max_ns:
            break
        time.sleep(_POLL_S)
    window_start = clock()
    before = sum(map(len, ends))
    while not stop.is_set():
        elapsed = clock() - window_start
        if elapsed >= max_ns or (sum(map(len, ends)) - before >= rules.min_iterations and elapsed >= min_ns):
            break
        time.sleep(_POLL_S)
    window_end = clock()
    stop.set()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    done = sorted((t1, t1 - t0) for own in ends for t0, t1 in own if window_start <= t1 <= window_end)
    duration_ns = window_end - window_start
    return {
        "samples_ns": [latency for _, latency in done],
        "iterations": len(done),
        "duration_s": duration_ns / 1e9,
        "warmup": {"iterations": before, "duration_s": (window_start - start) / 1e9},
        "validity": {"min_iterations_met": len(done) >= rules.min_iterations,
                     "min_duration_met": duration_ns >= min_ns,
                     "stopped_by_max_duration": duration_ns >= max_ns},
    }
