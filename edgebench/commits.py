"""Which commit a result belongs to: edgebench's own (when it runs from its checkout) and the user's code
(``GITHUB_SHA``, else the git HEAD of the working directory)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Mapping

_PACKAGE = Path(__file__).resolve().parent


def _git(args: list[str], cwd: Path | None) -> str | None:
    """``git ARGS``'s output in ``cwd``; None where git is missing, slow, or ``cwd`` is no repository."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(path: Path = _PACKAGE) -> dict[str, Any] | None:
    """The edgebench checkout's commit and whether it has uncommitted changes; None when edgebench does not run
    from its own git checkout (an installed edgebench inside a user's repository is not that repository)."""
    top = _git(["rev-parse", "--show-toplevel"], path)
    if top is None or Path(top).resolve() != _PACKAGE.parent:
        return None
    sha = _git(["rev-parse", "HEAD"], path)
    dirty = _git(["status", "--porcelain", "--untracked-files=no"], path)
    return {"sha": sha, "dirty": bool(dirty)} if sha and dirty is not None else None


def user_commit(environ: Mapping[str, str], cwd: Path | None = None) -> tuple[str, str] | None:
    """The commit of the user's code that a result belongs to, and where it was read: ``GITHUB_SHA`` (GitHub
    Actions), else the git HEAD of ``cwd`` (default: the working directory), else None."""
    sha = environ.get("GITHUB_SHA", "").strip()
    if sha:
        return sha, "GITHUB_SHA"
    head = _git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd)
    return (head, "git") if head else None
