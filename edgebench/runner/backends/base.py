"""The backend lifecycle every runtime follows; the runner times ``infer`` and nothing else.

``open()`` imports the runtime and checks the job's backend options, once, before anything loads (both are
part of the memory baseline); ``load()`` loads the model (the runner times it) through the backend's
``load_impl``; ``prepare`` turns feeds into what ``infer`` takes, outside the timed region; ``feed`` writes the
next one into the runtime's input memory right before the timer starts; ``infer`` is the backend's own method,
called bare in the timed loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

from ..profiling import unsupported
from ..runner_env import thread_limit
from ..throughput import counts, measure_concurrent

if TYPE_CHECKING:
    from ..job import RunnerJob
    from ..timing import TimingRules

    OptionType = type | tuple[type, ...]  # an option's value type, or the types it may take


class RuntimeMissing(Exception):
    """The backend's runtime does not import on this device; the message says what to install."""


class BadOption(ValueError):
    """A backend option this backend does not take, or a value it refuses."""


class BaseBackend:
    runtime_name = "unknown"
    pip_package = "unknown"  # what to install when the runtime does not import
    # The backend_options it reads and the type(s) of each value; any other key is refused. The host builds
    # its typed --option model from this (edgebench.formats.base.runner_options_for), so both ends agree.
    option_types: ClassVar[dict[str, OptionType]] = {}

    def __init__(self, job: RunnerJob) -> None:
        self.job = job
        self.threads = job.threads
        self.device = job.device
        self.backend_options: dict[str, Any] = dict(job.backend_options)
        self.device_name = job.device_name
        self.is_open = False

    def open(self) -> None:
        """Import the runtime (RuntimeMissing when it does not import), then check the options (BadOption)."""
        try:
            self.import_runtime()
        except ImportError as exc:
            raise RuntimeMissing(f"{self.runtime_name} is not installed on {self.device_name} ({exc}): "
                                 f"pip install {self.pip_package}") from exc
        unknown = sorted(set(self.backend_options) - set(self.option_types))
        if unknown:
            raise BadOption(f"{self.runtime_name} takes no {', '.join(unknown)} (it takes "
                            f"{', '.join(sorted(self.option_types)) or 'none'})")
        limit = thread_limit()
        for key, value in self.backend_options.items():
            if key.endswith("threads") and not (isinstance(value, int) and 0 <= value <= limit):
                raise BadOption(f"{key} {value!r} is outside 0 (the runtime's default) to {limit}, 4 per CPU of "
                                f"{self.device_name}")
        self.check_options()
        self.is_open = True

    def import_runtime(self) -> None:
        """Import the runtime and keep what ``load_impl`` needs (ImportError, or RuntimeMissing with its own
        message, when it is not there)."""
        raise NotImplementedError

    def check_options(self) -> None:
        """Refuse bad option values (raise BadOption); the runtime is imported."""

    def load(self, artifact: str) -> None:
        """Load the model: the runner times this call."""
        if not self.is_open:
            raise RuntimeError(f"{type(self).__name__}.load() before open()")
        self.load_impl(artifact)

    def load_impl(self, artifact: str) -> None:
        raise NotImplementedError

    def runtime_version(self) -> str:
        raise NotImplementedError

    def prepare(self, feed: dict[str, Any]) -> Any:
        """Turn a {name: array} feed into what ``infer`` takes, outside the timed region."""
        return feed

    def feed(self, prepared: Any) -> None:
        """Write ``prepared`` into the runtime's own input memory, untimed, right before the timed ``infer(prepared)``
        (which then finds it in place, and feeds it itself when not). Default: nothing, for runtimes that take
        their inputs in the call itself."""

    def infer(self, prepared: Any) -> Any:
        """One inference, timed by the runner: nothing here but the runtime's call."""
        raise NotImplementedError

    def outputs(self, prepared: Any) -> dict[str, Any]:
        raise NotImplementedError

    def io(self) -> dict[str, Any]:
        return {}

    def options(self) -> dict[str, Any]:
        return {"threads": self.threads, "device": self.device, **self.backend_options}

    def extra_timings(self) -> dict[str, Any]:
        return {}

    def threads_used(self) -> int | None:
        """The threads the loaded model runs with: the job's, or with 0 the runtime's own default, where the
        runtime (or its documented rule) says; None where it cannot."""
        return None

    def profile(self, prepared: Sequence[Any], iterations: int) -> dict[str, Any]:
        """The per-layer profiling pass (runner/profiling.py): ``iterations`` inferences over the prepared feeds on
        a second, profiled instance of the loaded model, after the timed loop; the reply's ``profile`` part."""
        return unsupported(self.runtime_name, f"{self.runtime_name} offers edgebench no per-layer profiler")

    def throughput(self, feeds: Sequence[Any], streams: int | None, requests: int | None, rules: TimingRules,
                   clock: Callable[[], int]) -> dict[str, Any]:
        """Throughput mode (runner/throughput.py): ``requests`` in flight on ``streams`` instances of the loaded
        model, timed together after the single-stream loop; the settings that ran under ``settings``."""
        streams, requests = counts(streams, requests)
        workers, settings = self.throughput_workers(streams, requests)
        return {**measure_concurrent(workers, feeds, rules, clock),
                "settings": {"streams": streams, "requests": requests, **settings}}

    def throughput_workers(self, streams: int, requests: int) -> tuple[list[Callable[[Any], Any]], dict[str, Any]]:
        """One ``infer`` per request, each on one of ``streams`` new instances of the model (a thread-safe one
        may serve several requests), and what they run with."""
        raise BadOption(f"{self.runtime_name} has no throughput mode in edgebench: use --mode latency")
