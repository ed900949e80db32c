"""``python -m bench.compare BEFORE.json AFTER.json``: two results files side by side, as a Markdown table of every
headline figure (medians), CPU ms per order or request, and peak RSS. A figure one of the runs did not measure
shows as "-"."""

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


def _row(label: str, before: float | None, after: float | None, unit: str) -> str:
    cells = [label.strip(), format_value(before, unit), format_value(after, unit), unit, _change(before, after, unit)]
    return "| " + " | ".join(cells) + " |"


def compare(before: dict[str, Any], after: dict[str, Any]) -> str:
    lines = ["| figure | before | after | unit | change |", "| --- | ---: | ---: | --- | ---: |"]
    for figure in FIGURES:
        old = before["figures"].get(figure.key, before["figures"].get(RENAMED.get(figure.key, "")))
        lines.append(_row(figure.label, old, after["figures"].get(figure.key), figure.unit))
    for unit in after["cpu_ms_per_unit"]:
        for group in PROCESS_GROUPS:
            old = before["cpu_ms_per_unit"].get(unit, {}).get(group)
            lines.append(_row(f"CPU ms {unit}, {group}", old, after["cpu_ms_per_unit"][unit].get(group), "ms"))
    for group in PROCESS_GROUPS:
        lines.append(_row(f"peak RSS, {group}", before["peak_rss_mib"].get(group), after["peak_rss_mib"][group], "MiB"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    before, after = (json.loads(path.read_text()) for path in (args.before, args.after))
    sys.stdout.write(compare(before, after) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
