"""Violations found during a run: every one is counted, the first few of each kind are kept with their details."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("chaos")

DETAILS_PER_KIND = 20


@dataclass
class Findings:
    counts: Counter[str] = field(default_factory=Counter)
    details: dict[str, list[str]] = field(default_factory=dict)

    def violation(self, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        kept = self.details.setdefault(kind, [])
        if len(kept) < DETAILS_PER_KIND:
            kept.append(detail)
            log.error("violation %s: %s", kind, detail)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, object]:
        return {"total": self.total, "by_kind": dict(self.counts), "details": self.details}
