"""satchel's benchmark suite (issue 5): ``python -m bench`` from the repository root.

Not part of the installed package. Workloads live one per module in
``bench/workloads/``; ``bench/harness.py`` times, repeats, and renders.
See docs/performance.md.
"""
