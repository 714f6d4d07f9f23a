"""Progress of long work, for a person or for a log: in a terminal a spinner or rich progress bars; when stdout
is not a terminal (CI logs, ``| tee``), plain lines — what started and, when it ends, how long it took or why it
failed — so a log never goes silent for a minute and holds no control codes."""

from __future__ import annotations

from types import TracebackType

from rich.markup import escape
from rich.status import Status

from edgebench.environment import Environment
from edgebench.text import one_line


def log_line(env: Environment, text: str) -> None:
    """One plain line, never wrapped and never read as markup."""
    env.console.print(escape(text), soft_wrap=True, highlight=False)


class Steps:
    """The steps of one piece of work: ``with Steps(env, "converting …") as steps: … steps.step("running …")``
    (``first`` None: nothing shown until the first ``step``).
    A terminal shows the current step on a spinner; a log gets ``TEXT …`` when a step starts and ``TEXT: done
    (X s)`` (or ``TEXT: failed: why (X s)``) when the next one starts or the work ends."""

    def __init__(self, env: Environment, first: str | None = None) -> None:
        self.env, self.first = env, first
        self.terminal = env.console.is_terminal
        self._status: Status | None = None
        self._current: tuple[str, float] | None = None

    def __enter__(self) -> "Steps":
        if self.terminal:
            self._status = self.env.console.status(escape(self.first or "…"))
            self._status.start()
        elif self.first is not None:
            self._begin(self.first)
        return self

    def step(self, text: str, finished: str = "done") -> None:
        """End the current step (``finished`` says how: ``done``, ``cache hit`` …) and start ``text``."""
        if self._status is not None:
            self._status.update(escape(text))
            return
        self._end(finished)
        self._begin(text)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._status is not None:
            self._status.stop()
        elif exc is None:
            self._end("done")
        else:
            why = one_line(str(exc)) or type(exc).__name__
            self._end(f"failed: {why}" if not isinstance(exc, KeyboardInterrupt) else "interrupted")

    def _begin(self, text: str) -> None:
        self._current = (text, self.env.clock())
        log_line(self.env, f"{text} …")

    def _end(self, how: str) -> None:
        if self._current is not None:
            text, started = self._current
            log_line(self.env, f"{text}: {how} ({self.env.clock() - started:.1f} s)")
            self._current = None
