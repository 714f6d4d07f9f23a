"""CLI commands, one module per noun; each module's ``app`` commands are added to the root app."""

from __future__ import annotations

import importlib

import typer

MODULES = ("bench", "convert", "compress", "sweep", "gate", "devices", "results", "report")


def register(root: typer.Typer) -> None:
    for name in MODULES:
        module = importlib.import_module(f"edgebench.commands.{name}")
        module.install(root)
