"""Drawing sync progress with rich: one bar for bytes (rate, ETA), one per item step."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from satchel.sync import ProgressEvent


class BinarySpeedColumn(ProgressColumn):
    """Transfer speed in binary units (MiB/s), as the summaries print sizes."""

    def render(self, task: Any) -> Text:
        from satchel.cli._common import human_bytes

        speed = task.finished_speed or task.speed
        return Text(f"{human_bytes(int(speed))}/s" if speed else "?", style="progress.data.speed")


class SyncBars:
    """A progress callback that draws; use as a context manager around the sync."""

    def __init__(self, console: Console | None = None, *, enabled: bool = True):
        self.bytes = Progress(
            TextColumn("{task.description:>10}"), BarColumn(), DownloadColumn(binary_units=True), BinarySpeedColumn(),
            TimeRemainingColumn(), console=console, disable=not enabled, transient=False,
        )
        self.items = Progress(
            TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console, disable=not enabled, transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._live: Any = None
        self.enabled = enabled

    def __enter__(self) -> SyncBars:
        if self.enabled:
            from rich.console import Group
            from rich.live import Live

            self._live = Live(Group(self.bytes, self.items), console=self.items.console, refresh_per_second=8)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def __call__(self, event: ProgressEvent) -> None:
        bars = self.bytes if event.unit == "bytes" else self.items
        total = event.total or None  # 0: not known (a pull's rows), drawn as a count without a fraction
        task = self._tasks.get(event.step)
        if task is None:
            task = self._tasks[event.step] = bars.add_task(event.step, total=total)
        bars.update(task, completed=event.done, total=total)
