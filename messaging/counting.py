"""Counting rows for the operations figures at a cost that does not grow with the tables.

A table of up to ``EXACT_UP_TO`` rows is counted. Past that, a figure is PostgreSQL's own estimate, the one its
planner works from (``EXPLAIN``: the table's statistics, which autovacuum's ANALYZE keeps current, scaled to the
table's size now): it costs a plan, not a scan. Rows that matter one by one and are few, such as PENDING orders or
unpublished events, are counted exactly up to the same bound through a partial index that holds only them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

EXACT_UP_TO = 10_000
_LITERAL = re.compile(r"[A-Z_]+")


@dataclass(frozen=True)
class Count:
    value: int
    exact: bool
    """False: PostgreSQL's estimate, the rows being more than ``EXACT_UP_TO``."""


async def planned_rows(conn: BaseDBAsyncClient, query: str) -> int:
    """How many rows the planner expects ``query`` to return."""
    (row,) = await conn.execute_query_dict(f"EXPLAIN (FORMAT JSON) {query}")
    plan = row["QUERY PLAN"]
    return round((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])


async def count(conn: BaseDBAsyncClient, rows: str, bound: int = EXACT_UP_TO) -> Count:
    """The rows of ``rows`` (``table`` or ``table WHERE ...``): counted up to ``bound``, estimated past it. The
    count reads at most ``bound`` rows only where an index (or the table itself) yields nothing but matching rows:
    give it a whole table or a condition a partial index holds."""
    (row,) = await conn.execute_query_dict(
        f"SELECT count(*) AS n FROM (SELECT FROM {rows} LIMIT {bound + 1}) AS bounded"
    )
    if row["n"] <= bound:
        return Count(row["n"], exact=True)
    return Count(max(bound + 1, await planned_rows(conn, f"SELECT FROM {rows}")), exact=False)


async def count_by(
    conn: BaseDBAsyncClient, table: str, column: str, values: Iterable[str]
) -> tuple[dict[str, int], bool]:
    """The rows of ``table`` by the value of ``column``, and whether the counts are exact: they are while the table
    holds at most ``EXACT_UP_TO`` rows, and the planner's estimates past that."""
    values = [str(value) for value in values]
    assert all(_LITERAL.fullmatch(value) for value in values), values
    if (await count(conn, table)).exact:
        rows = await conn.execute_query_dict(f"SELECT {column} AS value, count(*) AS n FROM {table} GROUP BY 1")
        return dict.fromkeys(values, 0) | {str(row["value"]): row["n"] for row in rows}, True
    estimates = {value: await planned_rows(conn, f"SELECT FROM {table} WHERE {column} = '{value}'") for value in values}
    return estimates, False
