"""Issue 14's classes re-run as a catalogue of concrete cases, each a real ``edgebench`` subprocess started from a
fresh working folder: outputs × places that cannot take them, full disks, damaged and read-only stores, bad data,
limits, signals and a second process, runner replies, odd files, gate inputs, hostile text, messages. Prints one
row per class: cases, clean one-line errors with the right status, tracebacks (or exit 1 / an undocumented status),
silent passes (exit 0 where it should fail, or a check of what it printed or left failed), hangs (timeouts) and
other (a clean error with another status than expected); then every case that is not clean.

    sudo .venv/bin/python benchmarks/bad_inputs.py [--jobs 3] [--only CLASS] [--verbose]

Root is needed for the tmpfs mounts (a read-only and a full disk); without it those cases are left out, said.
"""

from __future__ import annotations

import argparse
import shutil
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bad_input_cases import Case, all_cases, write_spec  # noqa: E402
from tests.mounts import Tmpfs  # noqa: E402

DOCUMENTED = {0, *range(2, 13), 130, 143}
JUDGING = {"gate", "ab", "compare"}


@dataclass
class Context:
    root: Path
    store: Path  # one finished run, "small" (id 1)
    spec: Path
    cache: Path
    disks: dict[str, Path] = field(default_factory=dict)
    skipped: str = ""

    @classmethod
    @contextmanager
    def made(cls) -> Iterator["Context"]:
        root = Path(tempfile.mkdtemp(prefix="bad-inputs-"))
        spec = write_spec(root / "small.yaml")
        ctx = cls(root, root / "results.db", spec, root / "cache")
        done = subprocess.run([sys.executable, "-m", "edgebench", "sweep", str(spec), "--store", str(ctx.store),
                               "--cache-dir", str(ctx.cache)], capture_output=True, text=True, cwd=root)
        assert done.returncode == 0, done.stderr
        mounted: list[Path] = []
        try:
            for name, size in (("ro", 1 << 20), ("full", 256 << 10)):
                path = root / "mnt" / name
                path.mkdir(parents=True)
                if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                  capture_output=True).returncode != 0:
                    ctx.skipped = "read-only and full disk cases (mounting a tmpfs needs root)"
                    break
                mounted.append(path)
            if len(mounted) == 2:
                shutil.copy(ctx.store, mounted[0] / "results.db")
                Tmpfs(mounted[0], 1 << 20).remount("ro")
                Tmpfs(mounted[1], 256 << 10).fill()
                ctx.disks = {"read-only disk": mounted[0], "full disk": mounted[1]}
            yield ctx
        finally:
            for path in mounted:
                subprocess.run(["umount", "-l", str(path)], capture_output=True)
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class Verdict:
    case: Case
    kind: str  # clean, traceback, silent, hang, other
    status: int | None
    detail: str = ""


@dataclass
class Done:
    status: int
    stdout: str
    stderr: str
    steps: list[tuple[int, str, str]] = field(default_factory=list)


def execute(case: Case, ctx: Context) -> Verdict:
    folder = Path(tempfile.mkdtemp(prefix="case-", dir=ctx.root))
    env = {**os.environ, "EDGEBENCH_LOCK_DIR": str(ctx.root / "locks"), "NO_COLOR": "1", **case.env}
    steps = case.argv(folder, ctx)
    done: list[tuple[int, str, str]] = []
    for argv in steps:
        proc = subprocess.Popen([sys.executable, "-m", "edgebench", *argv], cwd=folder, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            if case.signal_after is not None and argv is steps[-1]:
                time.sleep(case.signal_after)
                proc.send_signal(case.signal)
            out, err = proc.communicate(timeout=case.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return Verdict(case, "hang", None, f"no end after {case.timeout:.0f} s")
        done.append((proc.returncode, out, err))
    status, out, err = done[-1]
    return judge(case, Done(status, out, err, done), folder)


def judge(case: Case, done: Done, folder: Path) -> Verdict:
    for status, _, err in done.steps:
        if "Traceback" in err:
            return Verdict(case, "traceback", status, err.strip().splitlines()[-1][:200])
    command = case.command
    if done.status not in DOCUMENTED or (done.status == 1 and command not in JUDGING):
        return Verdict(case, "traceback", done.status, f"exit {done.status}: {done.stderr.strip()[-200:]}")
    errors = [line for line in done.stderr.splitlines() if line.startswith("edgebench: error: ")]
    problem = case.verify(folder, done.status, done.stdout, done.stderr) if case.verify else None
    if done.status == 0 and 0 not in case.expect:
        return Verdict(case, "silent", 0, "exit 0" + (f"; {problem}" if problem else ""))
    if problem:
        return Verdict(case, "silent", done.status, problem)
    if done.status not in case.expect:
        return Verdict(case, "other", done.status, f"expected {sorted(case.expect)}: {done.stderr.strip()[-200:]}")
    if done.status in (0, 1, 130, 143):
        return Verdict(case, "clean", done.status)
    if len(errors) != 1:  # notes (a device in use, a skipped profile) may come before it
        return Verdict(case, "other", done.status, f"not one line: {done.stderr.strip()[-300:]!r}")
    return Verdict(case, "clean", done.status)


def table(verdicts: list[Verdict]) -> str:
    kinds = ["clean", "traceback", "silent", "hang", "other"]
    head = f"{'class':<14}{'cases':>7}{'clean':>7}{'tracebacks':>12}{'silent passes':>15}{'hangs':>7}{'other':>7}"
    lines = [head, "-" * len(head)]
    classes = list(dict.fromkeys(v.case.cls for v in verdicts))
    for cls in [*classes, "total"]:
        mine = [v for v in verdicts if cls in ("total", v.case.cls)]
        counts = [sum(v.kind == k for v in mine) for k in kinds]
        if cls == "total":
            lines.append("-" * len(head))
        lines.append(f"{cls:<14}{len(mine):>7}{counts[0]:>7}{counts[1]:>12}{counts[2]:>15}{counts[3]:>7}{counts[4]:>7}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--only", help="run one class only")
    parser.add_argument("--verbose", action="store_true", help="print every case as it ends")
    args = parser.parse_args()
    started = time.monotonic()
    with Context.made() as ctx:
        cases = [c for c in all_cases(ctx) if args.only in (None, c.cls)]
        if ctx.skipped:
            print(f"left out: {ctx.skipped}")
        serial = [c for c in cases if c.alone]
        parallel = [c for c in cases if not c.alone]
        report: Callable[[Verdict], None] = (
            lambda v: print(f"{v.kind:<10}{v.case.cls:<12}{v.case.name} → {v.status} {v.detail}", flush=True)
        ) if args.verbose else (lambda v: None)
        verdicts: list[Verdict] = []
        with ThreadPoolExecutor(args.jobs) as pool:
            for verdict in pool.map(lambda c: execute(c, ctx), parallel):
                report(verdict)
                verdicts.append(verdict)
        for case in serial:  # signals and locks: timing-sensitive, one at a time
            verdicts.append(execute(case, ctx))
            report(verdicts[-1])
    order = {c.cls: i for i, c in enumerate(cases)}
    verdicts.sort(key=lambda v: order[v.case.cls])
    print(table(verdicts))
    print(f"({time.monotonic() - started:.0f} s)")
    bad = [v for v in verdicts if v.kind != "clean"]
    for v in bad:
        print(f"  {v.kind}: [{v.case.cls}] {v.case.name} → {v.status}: {v.detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
