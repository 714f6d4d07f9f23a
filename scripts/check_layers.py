#!/usr/bin/env python3
"""Check the layering rule of docs/architecture.md: every import of edgebench code (lazy ones too) goes
from a layer to a lower one, and the device runner imports nothing but the standard library and numpy.

    python scripts/check_layers.py      # prints each violation; exit status 1 if there is one
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "edgebench"

# Lowest first; a unit may import its own package and any unit of a lower layer, nothing else.
LAYERS: list[set[str]] = [
    {"runner", "errors", "text", "edgebench"},  # "edgebench": the package itself (__version__)
    {"paths", "files", "environment", "commits", "records", "postgres"},
    {"data", "result_parts"},
    {"compress"},
    {"training"},
    {"formats", "sources"},
    {"config", "result"},
    {"artifacts", "devices", "store"},
    {"pipeline"},
    {"report"},
    {"commands", "api"},  # the API sits at the CLI's level: neither imports the other
    {"cli"},
    {"__main__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
# (importing module, imported unit) allowed against the layers: the package re-exports its API, lazily.
LAZY_EXPORTS = {("edgebench", "api")}
RUNNER_MAY_IMPORT = set(sys.stdlib_module_names) | {"numpy"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, lazy ones too."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def violations() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        source = module_name(path)
        where = path.relative_to(ROOT.parent)
        for line, target in imports(path):
            if unit(source) == "runner":
                # the runner's own package, the standard library and numpy; runtimes only lazily (importlib)
                if not target.startswith("edgebench.runner") and target.split(".")[0] not in RUNNER_MAY_IMPORT:
                    found.append(f"{where}:{line}: the runner imports {target}")
                continue
            if not target.startswith("edgebench") or unit(target) == unit(source) \
                    or (source, unit(target)) in LAZY_EXPORTS:
                continue
            rank = RANK.get(unit(target))
            if rank is None or RANK.get(unit(source)) is None:
                found.append(f"{where}:{line}: {unit(source)} or {unit(target)} is in no layer of LAYERS")
            elif rank >= RANK[unit(source)]:
                found.append(f"{where}:{line}: {unit(source)} imports {target} from a layer not below it")
    return found


if __name__ == "__main__":
    problems = violations()
    print("\n".join(problems) or "layering: every import goes down a layer; the runner imports stdlib + numpy")
    sys.exit(1 if problems else 0)
