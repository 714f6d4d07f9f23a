"""Running a planned sweep: convert each (model, recipe, format) once, then measure cells with one
worker per device (devices in parallel, never two jobs on one device), committing each cell at once.

A failing conversion or cell is recorded with its error and the sweep goes on. Ctrl-C stops
scheduling; the cells in flight finish (or fail) and every finished cell is kept for ``--resume``. SIGTERM (CI's
cancel), or a second Ctrl-C, also stops the cells in flight at once: their runners are killed, here or on the
board, and nothing of them is recorded. Each device worker holds the device's lock (``devices.lock``) for its
cells, so another edgebench process never measures on it meanwhile. A result the sink cannot take (a full
or read-only disk) stops the sweep the same way, and the outcome names it (``store_error``, ``unstored``): the
caller must not mark such a run finished.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import AbstractSet, Callable, Protocol

from edgebench.artifacts.targets import Target
from edgebench.devices.lock import device_lock
from edgebench.devices.stop import STOP, Stopped
from edgebench.errors import EdgebenchError, Terminated
from edgebench.pipeline.bench import provenance
from edgebench.result import CellKey, DeviceInfo, ModelInfo, Result, ResultError
from edgebench.pipeline.sweep.plan import Cell, Plan
from edgebench.text import one_line

STOPPING_S = 30.0  # how long a stop at once waits for the killed runners' cells to end

Converter = Callable[[Plan, tuple[str, str, str]], Target]  # the resolved artifact (target.cache_hit: found)
CellBench = Callable[[Plan, Cell, "Target | None"], Result]  # None: the cell needs no conversion


class ResultSink(Protocol):
    def add_result(self, run_id: int, result: Result, cell: Cell) -> None: ...


class Events(Protocol):
    """What a progress display hears; called from worker threads."""

    def conversion_started(self, conversion: tuple[str, str, str]) -> None: ...
    def conversion_done(self, conversion: tuple[str, str, str], hit: bool, error: str | None) -> None: ...
    def cell_started(self, cell: Cell) -> None: ...
    def cell_done(self, cell: Cell, result: Result) -> None: ...
    def stopping(self, in_flight: int, at_once: bool) -> None: ...
    """No new cell starts; the ``in_flight`` cells are awaited, or (``at_once``) their runners are stopped."""


@dataclass
class Outcome:
    results: list[Result] = field(default_factory=list)
    conversions: int = 0
    cache_hits: int = 0
    interrupted: bool = False
    terminated: bool = False  # by SIGTERM: the cells in flight were stopped
    store_error: EdgebenchError | None = None  # the first result the sink could not take; the sweep stopped
    unstored: list[Cell] = field(default_factory=list)  # cells measured but not stored (run them again)
    crash: Exception | None = None  # an edgebench bug in a worker: re-raised once every worker has ended

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.ok)


def error_result(plan: Plan, cell: Cell, kind: str, message: str) -> Result:
    profile = plan.profiles[cell.device]
    return Result(
        model=ModelInfo(name=cell.model.name, recipe=cell.recipe, format=cell.format,
                        path=str(plan.source(cell.model))),
        device=DeviceInfo(profile=cell.device, host=profile.connection.host or "localhost",
                          accelerator=profile.accelerator),
        status="error", error=ResultError(kind=kind, message=message), options=cell.options_dict,
        provenance=provenance())


class SweepRunner:
    def __init__(self, plan: Plan, sink: ResultSink, run_id: int, convert: Converter, bench: CellBench,
                 events: Events, done: AbstractSet[CellKey] = frozenset(), device_wait_s: float | None = None) -> None:
        self.plan, self.sink, self.run_id, self.device_wait_s = plan, sink, run_id, device_wait_s
        self.convert, self.bench, self.events = convert, bench, events
        self.todo = [c for c in plan.cells if c.key not in done]
        self.stop = threading.Event()
        self.outcome = Outcome()
        self._lock = threading.Lock()
        self.artifacts: dict[tuple[str, str, str], Target] = {}
        self.conversion_errors: dict[tuple[str, str, str], EdgebenchError | Exception] = {}

    def run(self) -> Outcome:
        STOP.clear()
        try:
            self._convert_all()
            self._measure_all()
        except KeyboardInterrupt as exc:  # while converting, in this thread: the converter's process is gone
            self.stop.set()
            self.outcome.interrupted = True
            self.outcome.terminated |= isinstance(exc, Terminated)
        if self.outcome.crash is not None:
            raise self.outcome.crash
        return self.outcome

    def _convert_all(self) -> None:
        needed = list(dict.fromkeys(c.conversion for c in self.todo if c.needs_conversion))
        for conversion in needed:
            if self.stop.is_set():
                return
            self.events.conversion_started(conversion)
            try:
                target = self.convert(self.plan, conversion)
                hit = bool(target.cache_hit)
                self.artifacts[conversion] = target
                self.outcome.cache_hits += hit
                self.outcome.conversions += not hit
                self.events.conversion_done(conversion, hit, None)
            except Exception as exc:  # recorded on every cell that needs it; the sweep goes on
                self.conversion_errors[conversion] = exc
                self.events.conversion_done(conversion, False, _one_line(exc))

    def _measure_all(self) -> None:
        by_device: dict[str, list[Cell]] = {}
        for cell in self.todo:
            by_device.setdefault(cell.device, []).append(cell)
        # Each worker sets its own event when it ends. Not Thread.join/is_alive: on Python < 3.13 a join that
        # Ctrl-C interrupts can mark a thread that still runs as stopped (CPython issue 90882), and the sweep
        # would then exit without waiting for the cells in flight.
        ended = [threading.Event() for _ in by_device]
        workers = [threading.Thread(target=self._worker, args=(cells, end), name=f"device-{device}", daemon=True)
                   for (device, cells), end in zip(by_device.items(), ended)]
        for w in workers:
            w.start()
        try:
            for end in ended:
                while not end.wait(timeout=0.2):
                    pass
        except KeyboardInterrupt as exc:
            self.stop.set()
            self.outcome.interrupted = True
            self.outcome.terminated |= isinstance(exc, Terminated)
            self._wait_in_flight(ended, at_once=isinstance(exc, Terminated))

    def _wait_in_flight(self, ended: list[threading.Event], at_once: bool) -> None:
        """Wait for the cells in flight: to their end (Ctrl-C), or for their runners to be stopped (SIGTERM, or
        another Ctrl-C meanwhile; at most STOPPING_S, then what is left ends with the process)."""
        deadline: float | None = None
        while True:
            if at_once and deadline is None:
                STOP.set()  # every transport kills its runner; those cells end without a result
                deadline = time.monotonic() + STOPPING_S
            self.events.stopping(sum(not end.is_set() for end in ended), at_once)  # said now: the wait may be long
            try:
                for end in ended:
                    while not end.wait(timeout=0.2):
                        if deadline is not None and time.monotonic() > deadline:
                            return
                return
            except KeyboardInterrupt as again:
                at_once = True
                self.outcome.terminated |= isinstance(again, Terminated)

    def _worker(self, cells: list[Cell], ended: threading.Event) -> None:
        try:
            self._work(cells)
        except Exception as exc:  # a bug: stop every worker, then raise it where the sweep was called
            with self._lock:
                self.outcome.crash = self.outcome.crash or exc
            self.stop.set()
        finally:
            ended.set()

    def _work(self, cells: list[Cell]) -> None:
        """Measure ``cells`` (all on one device) holding the device; if another process keeps it past
        ``device_wait_s``, each cell is recorded failed with who holds it (a resume retries them)."""
        busy: EdgebenchError | None = None
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(device_lock(self.plan.profiles[cells[0].device], self.device_wait_s, self.stop))
            except Stopped:  # the sweep stopped while waiting for the device
                return
            except EdgebenchError as exc:
                busy = exc
            self._measure(cells, busy)

    def _measure(self, cells: list[Cell], busy: EdgebenchError | None) -> None:
        for cell in cells:
            if self.stop.is_set():
                return
            self.events.cell_started(cell)
            started = utc_now_precise()
            result = self._run_cell(cell) if busy is None else error_result(self.plan, cell, busy.kind, str(busy))
            result.extra["sweep"] = {"started_utc": started, "finished_utc": utc_now_precise()}
            if self.stop.is_set() and not result.ok:
                return  # killed by the interrupt: not a real failure, leave it for --resume
            try:
                self.sink.add_result(self.run_id, result, cell)
            except EdgebenchError as exc:  # the store cannot take it: stop, and say which cell is not stored
                with self._lock:
                    self.outcome.store_error = self.outcome.store_error or exc
                    self.outcome.unstored.append(cell)
                self.stop.set()
                return
            with self._lock:
                self.outcome.results.append(result)
            self.events.cell_done(cell, result)

    def _run_cell(self, cell: Cell) -> Result:
        failed = self.conversion_errors.get(cell.conversion)
        if failed is not None:
            kind = getattr(getattr(failed, "status", None), "name", "conversion_failed").lower()
            return error_result(self.plan, cell, kind, f"conversion failed: {_one_line(failed)}")
        try:
            return self.bench(self.plan, cell, self.artifacts.get(cell.conversion))
        except EdgebenchError as exc:
            return error_result(self.plan, cell, exc.kind, str(exc))
        except Exception as exc:  # an edgebench bug must not lose the rest of the sweep
            return error_result(self.plan, cell, "internal",
                                f"{_one_line(exc)} ({traceback.format_exc().splitlines()[-3].strip()})")


def utc_now_precise() -> str:
    """Wall-clock stamps (µs) of when a cell ran, so schedules can be checked: never two jobs on one device."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


def _one_line(exc: BaseException) -> str:
    """The whole message on one line (a converter's cause is often on its last line), bounded."""
    return one_line(str(exc), 600) or type(exc).__name__
