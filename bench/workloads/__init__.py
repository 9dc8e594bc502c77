"""The workloads of issue 5, in its order. One module each; a module exposes

``NAME``, ``NUMBER``, ``TITLE``, ``sizes(quick) -> dict`` and ``run(ctx) -> WorkloadResult``,
or, while it cannot run yet, ``BLOCKED`` (the reason) and ``TARGETS`` (the issue's targets).
"""

from __future__ import annotations

from types import ModuleType

from bench.workloads import (
    bundle,
    capture_large,
    capture_small,
    gc,
    noop_redownload,
    push_large,
    push_small,
    resume,
    scale,
)

WORKLOADS: list[ModuleType] = sorted(
    [capture_small, capture_large, noop_redownload, push_small, push_large, resume, scale, bundle, gc],
    key=lambda m: m.NUMBER,
)
BY_NAME: dict[str, ModuleType] = {m.NAME: m for m in WORKLOADS}
