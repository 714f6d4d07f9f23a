"""edgebench: which format, precision and compression of a model runs best on each device.

The Python API is :mod:`edgebench.api` (docs/python-api.md): ``from edgebench import api``, or ``edgebench.api``
after ``import edgebench`` — imported on first use, so ``edgebench --version`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from edgebench import api as api


def __getattr__(name: str) -> Any:
    if name == "api":
        import edgebench.api

        return edgebench.api
    raise AttributeError(f"module 'edgebench' has no attribute {name!r}")
