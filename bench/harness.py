"""The shared harness: timing, repeats, medians with min–max, references, targets, machine facts.

A workload module measures things and hands back a :class:`WorkloadResult`
made of :class:`Figure` values. Each figure holds the raw value of every
repeat; the median, min and max are derived when it is rendered, as are the
ratios to its references (paired per repeat: figure and reference come from
the same repeat, on the same data, a few seconds apart, so the ratio is much
steadier than either number on a noisy machine).

Ratios are always *time* ratios: the figure's time over the reference's time
for the same work. 2.0 means satchel took twice as long as the reference.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


# --- measuring -----------------------------------------------------------------------


def clock() -> float:
    return time.perf_counter()


def run_timed(cmd: list[str], **kwargs: Any) -> float:
    """Seconds taken by a subprocess (which must succeed)."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def settle(path: Path, pause: float = 0.0) -> None:
    """Flush dirty pages of ``path``'s filesystem (so the next timed step does not pay for earlier
    writes in its own sync), then optionally pause (file creation right after a big delete is slow)."""
    from satchel.cache.durable import sync_filesystem

    sync_filesystem(path)
    if pause:
        time.sleep(pause)


class Counter:
    """Counts calls of functions patched in for the duration of a ``with`` block."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    @contextlib.contextmanager
    def patch(self, owner: Any, attr: str, label: str) -> Iterator[None]:
        original = getattr(owner, attr)
        self.counts.setdefault(label, 0)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.counts[label] += 1
            return original(*args, **kwargs)

        setattr(owner, attr, wrapper)
        try:
            yield
        finally:
            setattr(owner, attr, original)


class Accumulator:
    """Adds up the time spent in a patched function (e.g. the filesystem sync inside a commit)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    @contextlib.contextmanager
    def patch(self, owner: Any, attr: str) -> Iterator[Accumulator]:
        original = getattr(owner, attr)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        setattr(owner, attr, wrapper)
        try:
            yield self
        finally:
            setattr(owner, attr, original)


# --- what a workload reports --------------------------------------------------------------


@dataclass
class Target:
    """A target from issue 5: ``on`` is ``"value"`` (the figure) or ``"ratio"`` (to the first reference)."""

    op: str  # ">=", "<=", "<", "=="
    threshold: float
    text: str
    on: str = "value"

    def met(self, x: float | None) -> bool | None:
        if x is None:
            return None
        return {
            ">=": x >= self.threshold,
            "<=": x <= self.threshold,
            "<": x < self.threshold,
            "==": x == self.threshold,
        }[self.op]

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "on": self.on, "op": self.op, "threshold": self.threshold}


@dataclass
class Series:
    """One quantity over the repeats: a unit, the raw values, and (for rates) the seconds behind them."""

    label: str
    unit: str
    values: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # per repeat, for paired time ratios

    def add(self, value: float, seconds: float | None = None) -> None:
        self.values.append(value)
        if seconds is not None:
            self.seconds.append(seconds)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "unit": self.unit, **summary(self.values), "values": self.values}
        if self.seconds:
            out["seconds"] = {**summary(self.seconds), "values": self.seconds}
        return out


@dataclass
class Figure:
    """A reported number: its series, references measured in the same run, and the issue's target."""

    id: str
    series: Series
    references: list[Series] = field(default_factory=list)
    target: Target | None = None
    note: str = ""

    def ratios(self, ref: Series) -> list[float]:
        """Per-repeat time ratios (figure seconds / reference seconds), paired by repeat."""
        mine = self.series.seconds or self.series.values
        theirs = ref.seconds or ref.values
        return [a / b for a, b in zip(mine, theirs) if b]

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, **self.series.to_json()}
        refs = []
        for ref in self.references:
            r = ref.to_json()
            ratios = self.ratios(ref)
            r["ratio"] = {**summary(ratios), "values": ratios, "meaning": "figure time / reference time"}
            refs.append(r)
        out["reference"] = refs[0] if refs else None
        out["other_references"] = refs[1:]
        out["ratio"] = refs[0]["ratio"]["median"] if refs else None
        if self.target is not None:
            out["target"] = self.target.to_json()
            x = out["ratio"] if self.target.on == "ratio" else out["median"]
            out["met"] = self.target.met(x)
        else:
            out["target"] = None
            out["met"] = None
        out["note"] = self.note
        return out


@dataclass
class WorkloadResult:
    name: str
    number: int
    title: str
    status: str = "ok"
    params: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # for workloads that cannot run yet
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "number": self.number,
            "title": self.title,
            "status": self.status,
            "params": self.params,
            "figures": [f.to_json() for f in self.figures],
            "info": self.info,
            "notes": self.notes,
            "targets": self.targets or [f.target.text for f in self.figures if f.target is not None],
            "wall_seconds": round(self.seconds, 3),
        }


@dataclass
class Context:
    """What a workload gets: sizes, repeats, and fresh directories on the data filesystem."""

    data_dir: Path
    quick: bool
    repeat: int
    log: Callable[[str], None]
    remote: Any = None  # a bench.workloads._real.RealServer with --remote; the emulator otherwise
    salt: int = 0  # added to payload seeds: a real server keeps what earlier runs sent, so bytes must be new
    _dirs: int = 0

    def fresh_dir(self, name: str) -> Path:
        """A new, empty directory for one run's data (never reused: creation after deletes is slow)."""
        self._dirs += 1
        path = self.data_dir / f"{self._dirs:03d}-{name}"
        path.mkdir(parents=True)
        return path


# --- machine facts ---------------------------------------------------------------------------


def _mount_of(path: Path) -> dict[str, str]:
    best: dict[str, str] = {}
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype, opts, *_ = line.split()
                mnt = mnt.replace("\\040", " ")
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best.get("mount", "")):
                    best = {"device": dev, "mount": mnt, "type": fstype, "options": opts}
    except OSError:
        pass
    return best


def _cmd(args: list[str]) -> str | None:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine_facts(data_dir: Path) -> dict[str, Any]:
    import blake3
    import sqlalchemy

    import satchel

    mem_total = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    cpu_model = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        pass
    mount = _mount_of(data_dir)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "memory_bytes": mem_total,
        "loadavg_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "data_dir": str(data_dir),
        "filesystem": {
            "type": mount.get("type"),
            "stat_f": _cmd(["stat", "-f", "-c", "%T", str(data_dir)]),
            "mount": mount.get("mount"),
            "device": mount.get("device"),
            "options": mount.get("options"),
        },
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "blake3": getattr(blake3, "__version__", None),
        "satchel": getattr(satchel, "__version__", None) or _pkg_version("satchel"),
        "git_commit": _cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "git_src_modified": _cmd(["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "migrations"]) != "",
        "md5sum": (_cmd(["md5sum", "--version"]) or "").splitlines()[0] if shutil.which("md5sum") else None,
    }


def _pkg_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --- rendering ----------------------------------------------------------------------------------


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if unit in ("files", "count", "assets") or (float(x).is_integer() and abs(x) >= 1000):
        return f"{x:,.0f}"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    if ax == 0:
        return "0"
    return f"{x:.3g}"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 10 else fmt(x)


def _spread(d: dict[str, Any]) -> str:
    u = d.get("unit", "")
    return f"{fmt(d['median'], u)} [{fmt(d['min'], u)}–{fmt(d['max'], u)}]"


def render_table(doc: dict[str, Any]) -> str:
    """The readable table: one block per workload, a line per figure and per reference."""
    lines: list[str] = []
    m = doc["machine"]
    fs = m["filesystem"]
    lines.append(
        f"satchel bench · {doc['started_at']} · {m['cpu_count']} CPUs · Python {m['python']} · "
        f"kernel {m['kernel']} · data on {fs['type']} ({fs['mount']}) · repeat {doc['repeat']}"
        + (" · QUICK sizes" if doc["quick"] else "")
    )
    lines.append("values: median [min–max] over repeats; ratio = satchel time / reference time (median of paired ratios)")
    header = f"  {'figure':<44} {'value':>28} {'unit':<10} {'target':<22} {'met':<4}"
    for w in doc["workloads"]:
        lines.append("")
        lines.append(f"{w['number']}. {w['name']} — {w['title']}")
        if w["status"] != "ok":
            lines.append(f"  {w['status']}")
            for t in w["targets"]:
                lines.append(f"  target: {t}")
            continue
        if w["params"]:
            lines.append("  " + ", ".join(f"{k}={v}" for k, v in w["params"].items()))
        lines.append(header)
        for f in w["figures"]:
            met = {True: "yes", False: "NO", None: ""}[f["met"]]
            target = f["target"]["text"] if f["target"] else ""
            lines.append(f"  {f['label'][:44]:<44} {_spread(f):>28} {f['unit']:<10} {target[:22]:<22} {met:<4}")
            for ref in [r for r in [f["reference"], *f["other_references"]] if r]:
                ratio = ref["ratio"]
                lines.append(
                    f"    vs {ref['label'][:40]:<40} {_spread(ref):>28} {ref['unit']:<10} "
                    f"ratio {fmt_ratio(ratio['median'])} [{fmt_ratio(ratio['min'])}–{fmt_ratio(ratio['max'])}]"
                )
        for note in w["notes"]:
            lines.append(f"  note: {note}")
    return "\n".join(lines)
