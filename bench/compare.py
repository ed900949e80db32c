"""``python -m bench.compare A.json B.json [C.json ...]``: results files side by side, as a Markdown table of
every headline figure (medians), CPU ms per order or request, and peak RSS; the last column is the change from
the second-to-last file to the last. A figure a run did not measure shows as "-"."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.report import FIGURES, PROCESS_GROUPS, format_value

# Figures whose key changed, new key -> the key an older results file uses for the same measurement.
RENAMED = {
    "relay_acked_p99_ms_orders": "relay_pickup_p99_ms_orders",
    "relay_acked_p99_ms_payments": "relay_pickup_p99_ms_payments",
}


def _change(before: float | None, after: float | None, unit: str) -> str:
    """The change as a percentage, or as a factor when the figure more than doubled or halved."""
    if before is None or after is None or unit == "ratio" or not before:
        return ""
    factor = after / before
    if factor >= 2:
        return f"x{factor:.1f}"
    if 0 < factor <= 0.5:
        return f"x1/{1 / factor:.0f}" if factor < 0.1 else f"x{factor:.2f}"
    return f"{factor - 1:+.0%}"


def _row(label: str, values: list[float | None], unit: str) -> str:
    cells = [label.strip(), *(format_value(value, unit) for value in values), unit, _change(*values[-2:], unit)]
    return "| " + " | ".join(cells) + " |"


def _figure(result: dict[str, Any], key: str) -> float | None:
    figures = result["figures"]
    return figures.get(key, figures.get(RENAMED.get(key, "")))


def compare(results: list[dict[str, Any]], names: list[str]) -> str:
    lines = [
        "| figure | " + " | ".join(names) + " | unit | change |",
        "| --- | " + " | ".join("---:" for _ in names) + " | --- | ---: |",
    ]
    for figure in FIGURES:
        lines.append(_row(figure.label, [_figure(result, figure.key) for result in results], figure.unit))
    for unit in results[-1]["cpu_ms_per_unit"]:
        for group in PROCESS_GROUPS:
            values = [result["cpu_ms_per_unit"].get(unit, {}).get(group) for result in results]
            lines.append(_row(f"CPU ms {unit}, {group}", values, "ms"))
    for group in PROCESS_GROUPS:
        lines.append(_row(f"peak RSS, {group}", [result["peak_rss_mib"].get(group) for result in results], "MiB"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="+", help="results files, oldest first (at least two)")
    args = parser.parse_args(argv)
    if len(args.results) < 2:
        parser.error("give at least two results files")
    results = [json.loads(path.read_text()) for path in args.results]
    sys.stdout.write(compare(results, [path.stem for path in args.results]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
