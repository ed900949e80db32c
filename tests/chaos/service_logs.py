"""What the services' own logs say happened: duplicates they recognised, fault points they hit, offset commits
that were refused, and which concurrent pairs really raced."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

PATTERNS = {
    "inbox_duplicates": "already handled",
    "ledger_duplicates": "was already decided",
    "fault_point_hits": "fault point ",
    "failed_offset_commits": "] commit of ",
}
# servicekit.logs.FORMAT: "%(asctime)s %(levelname)s %(name)s [rid=%(request_id)s] %(message)s"
DECIDED = re.compile(r"^(\S+ \S+) INFO payments\.service \[rid=[^]]*\] order (\S+) (?:paid|failed)")
DUPLICATE = re.compile(r"^(\S+ \S+) INFO payments\.service \[rid=[^]]*\] payment command \S+ for order (\S+) already")
RACE_WINDOW = 0.1


def figures(log_dir: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in log_dir.glob("*.log"):
        with path.open(errors="replace") as lines:
            for line in lines:
                for name, pattern in PATTERNS.items():
                    if pattern in line:
                        counts[name] += 1
    return counts


def raced(log_dir: Path, order_ids: set[str]) -> int:
    """Orders one payments instance decided while the other found the same command already handled within
    ``RACE_WINDOW`` seconds: both held a copy at once."""
    decided: dict[str, tuple[datetime, Path]] = {}
    duplicates: dict[str, list[tuple[datetime, Path]]] = defaultdict(list)
    for path in log_dir.glob("payments-*.log"):
        with path.open(errors="replace") as lines:
            for line in lines:
                if (match := DECIDED.match(line)) and match[2] in order_ids:
                    decided.setdefault(match[2], (_time(match[1]), path))
                elif (match := DUPLICATE.match(line)) and match[2] in order_ids:
                    duplicates[match[2]].append((_time(match[1]), path))
    return sum(
        1
        for order_id, (at, path) in decided.items()
        if any(
            other != path and abs((seen - at).total_seconds()) <= RACE_WINDOW for seen, other in duplicates[order_id]
        )
    )


def _time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
