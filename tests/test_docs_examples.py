"""The runnable pages of the docs: every ```python block of a page runs, in order, in one namespace, in an
empty folder, so the examples (and the ``assert`` lines they show) stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNABLE_PAGES = ["docs/python-api.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """(line number of its first line, code) of every ```python block of ``page``."""
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_every_python_block_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = ROOT / page
    blocks = python_blocks(source)
    assert blocks, f"{page} has no python block"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGEBENCH_CACHE", raising=False)  # the examples' cache lives in the empty folder
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for line, code in blocks:
        # padded so that a traceback names the page's own line
        exec(compile("\n" * (line - 1) + code, str(source), "exec"), namespace)
    assert (tmp_path / ".edgebench" / "cache").is_dir()  # the examples converted through the cache, here


def test_python_blocks_are_found() -> None:
    page = ROOT / RUNNABLE_PAGES[0]
    blocks = python_blocks(page)
    assert len(blocks) == page.read_text(encoding="utf-8").count("```python")
    assert all(code.strip() for _, code in blocks)
