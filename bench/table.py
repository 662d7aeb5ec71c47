"""Turns a pytest-benchmark JSON file into markdown tables of speed ratios, one per group.

Usage: python bench/table.py bench/results.json > bench/results.md

In each group the row named by ``extra_info["baseline"] = True`` is the reference; every row gets
its median time and its speed-up over that baseline (baseline time / row time).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def tables(data: dict) -> str:
    groups: dict[str, list[dict]] = defaultdict(list)
    for bench in data["benchmarks"]:
        groups[bench.get("group") or bench["name"]].append(bench)
    lines = []
    machine = data.get("machine_info", {})
    lines.append(f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, Python {machine.get('python_version', '?')}\n")
    for group, rows in groups.items():
        baseline = next((r for r in rows if r.get("extra_info", {}).get("baseline")), None)
        lines.append(f"### {group}\n")
        lines.append("| implementation | median | speed-up vs baseline | notes |")
        lines.append("|---|---|---|---|")
        for row in sorted(rows, key=lambda r: r["stats"]["median"]):
            info = row.get("extra_info", {})
            median = row["stats"]["median"]
            ratio = baseline["stats"]["median"] / median if baseline else float("nan")
            label = info.get("impl") or row["name"]
            notes = ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("impl", "baseline"))
            lines.append(f"| {label}{' (baseline)' if row is baseline else ''} | {_fmt_time(median)} | {ratio:.1f}x | {notes} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(tables(json.load(handle)))
