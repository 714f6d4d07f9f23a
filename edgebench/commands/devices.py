"""`edgebench devices list | check NAME | schema | status`: the profiles known here, what a device offers, the
JSON schema editors use to validate profile YAML, and who holds which device (leases and local locks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from edgebench.commands.common import environment, print_warnings, store_option, writable_file
from edgebench.config import DeviceProfile, find_profiles, load_profile, profile_dirs, user_profiles_dir
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.text import one_line
from edgebench.files import atomic_write_text

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Device profiles: list them, check a device, print the schema; who holds which device.")


@app.command("list")
def list_devices(ctx: typer.Context) -> None:
    """The profiles found (EDGEBENCH_PROFILES, ./device_profiles, the user config dir, bundled), where each came
    from, and the folders searched."""
    console = environment(ctx).console
    table = Table(title="device profiles")
    table.add_column("name", no_wrap=True)
    table.add_column("from", no_wrap=True)
    for col in ("type", "host", "accelerator", "runtimes"):
        table.add_column(col)
    table.add_column("file", overflow="fold")
    warnings: list[str] = []
    named: dict[str, Path] = {}  # each profile's `name:` field and the file that has it
    for found in find_profiles():
        source = found.source + (f" (overrides {', '.join(d.source for d in found.overrides)})"
                                 if found.overrides else "")
        if found.ambiguity:
            warnings.append(found.ambiguity)
        try:
            p = load_profile(str(found.path))
        except EdgebenchError as exc:
            table.add_row(escape(found.name), source, "[red]invalid[/red]", escape(one_line(str(exc))), "", "",
                          escape(str(found.path)))
            warnings.append(f"skipped an invalid profile: {one_line(str(exc))}")
            continue
        if p.name in named:
            warnings.append(f"profiles {named[p.name]} and {found.path} both have name: {p.name}: their results "
                            "would be stored as one device; rename one")
        named.setdefault(p.name, found.path)
        host = p.connection.host or "localhost"
        table.add_row(escape(found.name), source, p.connection.type, escape(host), p.accelerator,
                      ", ".join(p.runtimes), escape(str(found.path)))
    console.print(table)
    print_warnings(console, warnings)
    console.print("folders searched, first match wins:")
    for d in profile_dirs():
        count = len(d.profiles())
        state = f"{count} profile{'s' * (count != 1)}" if d.path.is_dir() else "absent"
        console.print(f"  {d.source:<19} {escape(str(d.path))}  ({state})", soft_wrap=True)
    user = escape(str(user_profiles_dir() / "NAME.yaml"))
    console.print(f"Your own profiles: ./device_profiles/NAME.yaml (this project) or {user} (this user); "
                  "a profile named like a bundled one overrides it.", soft_wrap=True)


def _runtime_cell(info: dict[str, Any], required: bool) -> str:
    need = " (profile)" if required else ""
    if not info.get("ok"):
        colour = "red" if required else "yellow"
        return f"[{colour}]no{need}: {info.get('error')} — pip install {info.get('pip')}[/{colour}]"
    extra = info.get("providers") or info.get("devices")
    return f"[green]{info.get('version')}[/green]{need}" + (f"  {', '.join(extra)}" if extra else "")


def _rows(profile: DeviceProfile, r: dict[str, Any]) -> list[tuple[str, str]]:
    mem, cuda = r.get("memory_mb") or {}, r.get("cuda") or {}
    freq = r.get("frequency_mhz") or {}
    rows = [("reachable", f"yes — {r['device']}"), ("python", f"{r['python']} ({r['executable']})"),
            ("os", f"{r['os']} {r['machine']}"), ("cpu", f"{r['cpu']}, {r['cores']} cores")]
    rows.append(("governor", f"{r.get('governor') or '—'}"
                 + (f", {freq.get('scaling_cur_freq', 0):.0f}/{freq.get('cpuinfo_max_freq', 0):.0f} MHz"
                    if freq else "")))
    temps = r.get("temperatures_c") or {}
    rows.append(("temperature sensors", ", ".join(f"{k}={v:.1f}°C" for k, v in temps.items()) or "none readable"))
    rows += [(name, _runtime_cell(info, name in profile.runtimes or name == "numpy"))
             for name, info in r["runtimes"].items()]
    rows.append(("cuda", f"nvidia-smi {'yes' if cuda.get('nvidia_smi') else 'no'}, /dev/nvidia0 "
                         f"{'yes' if cuda.get('dev_nvidia0') else 'no'}, libcudart {cuda.get('libcudart') or 'no'}"
                         + (f", Jetson {cuda['tegra']}" if cuda.get("tegra") else "")))
    if mem.get("available") is not None:
        rows.append(("memory", f"{mem['available']:.0f} MB free of {mem['total']:.0f} MB"))
    if r.get("disk_free_mb") is not None:
        rows.append(("disk", f"{r['disk_free_mb']:.0f} MB free at {r['workdir']}"))
    return rows


@app.command("check")
def check(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Device profile name or YAML path."),
    json_out: bool = typer.Option(False, "--json", help="Print the probe's report as JSON."),
) -> None:
    """Reach a device and report python, numpy, runtimes, accelerators, CPU, clocks, temperatures, memory, disk."""
    from edgebench.devices.probe import missing_lines, probe

    env = environment(ctx)
    profile = load_profile(name)
    report = probe(profile)
    if json_out:
        env.stdout.write(json.dumps(report, indent=1) + "\n")
    else:
        table = Table(title=f"device {profile.name}", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        for row in _rows(profile, report):
            table.add_row(*row)
        env.console.print(table)
    problems = missing_lines(profile, report)
    if problems:
        raise EdgebenchError("; ".join(problems), ExitStatus.RUNTIME_MISSING)


@app.command("schema")
def schema(ctx: typer.Context,
           out: Optional[Path] = typer.Option(None, "--out", "-o", callback=writable_file,
                                              help="Write it here instead of stdout.")) -> None:
    """JSON schema of a device profile, generated from the model (for editors' YAML validation)."""
    env = environment(ctx)
    text = json.dumps(DeviceProfile.model_json_schema(), indent=2) + "\n"
    if out:
        atomic_write_text(out, text)
        env.console.print(f"schema written to {out}")
    else:
        env.stdout.write(text)



def _seconds(value: float) -> str:
    return f"{value:.0f} s" if abs(value) < 120 else f"{value / 60:.0f} min"


@app.command("status")
def status(
    ctx: typer.Context,
    store: str = store_option(),
) -> None:
    """Who holds which device: the leases in a PostgreSQL store (every host of a team) and the device locks held
    on this host."""
    from edgebench.devices.leases import lease_rows
    from edgebench.devices.lock import held_locks, lock_dir
    from edgebench.postgres import holder_host, is_url, redact

    console = environment(ctx).console
    leases = lease_rows(store) if is_url(store) else None  # an SQLite store: leases are this host's locks
    locks = held_locks()
    if leases:
        table = Table(title=f"device leases in {escape(redact(store))}")
        for col in ("device", "holder host", "pid", "command", "run", "since", "heartbeat", "expires in", "state"):
            table.add_column(col, overflow="fold")
        for row in leases:
            state = row.state if row.state == "held" else f"[yellow]{row.state}[/yellow]"
            expires = _seconds(row.expires_in_s) if row.expires_in_s >= 0 else f"expired {_seconds(-row.expires_in_s)} ago"
            table.add_row(escape(row.device), escape(row.holder_host), str(row.pid), escape(row.command),
                          escape(row.run_name or "—"), row.acquired_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
                          f"{_seconds(row.heartbeat_age_s)} ago", expires, state)
        console.print(table)
    if locks:
        table = Table(title=f"device locks held on this host ({escape(holder_host())})")
        for col in ("device", "pid", "command", "since", "lock file"):
            table.add_column(col, overflow="fold")
        for lock in locks:
            table.add_row(escape(lock["device"]), str(lock["pid"] or "?"), escape(lock["command"]),
                          escape(lock["since"]), escape(lock["file"]))
        console.print(table)
    if not leases and not locks:
        where = f"leased in {escape(redact(store))} or " if leases is not None else ""
        hint = "" if leases is not None else " (--store postgresql://… also shows a team's leases)"
        console.print(f"no device is {where}locked on this host (locks in {escape(str(lock_dir()))}){hint}",
                      soft_wrap=True)
