"""Headless Chromium for the report tests: a real screenshot, the console messages and the rendered DOM of a
page, offline (no network features)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.results_fixtures import chromium

needs_chromium = pytest.mark.skipif(chromium() is None, reason="chromium is not installed: run scripts/system-deps.sh")


def open_in_chromium(html: Path, tmp: Path, height: int = 2000) -> tuple[Path, list[str], str]:
    """Screenshot (1280 × ``height``), console messages and rendered DOM of the page."""
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--v=0", f"--window-size=1280,{height}", "--hide-scrollbars"]
    png = tmp / "shot.png"
    shot = subprocess.run([*base, f"--user-data-dir={tmp / 'profile-1'}", f"--screenshot={png}", html.as_uri()],
                          capture_output=True, text=True, timeout=120)
    dom = subprocess.run([*base, f"--user-data-dir={tmp / 'profile-2'}", "--dump-dom", html.as_uri()],
                         capture_output=True, text=True, timeout=120)
    console = [line for line in (shot.stderr + dom.stderr).splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return png, console, dom.stdout


def distinct_colours(png: Path, height: int = 2000) -> int:
    from PIL import Image

    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (1280, height)
        return len(image.convert("RGB").getcolors(maxcolors=1 << 24))
