"""A statement composer: SQL is written with named placeholders, and the composer numbers the parameters.

``Sql("UPDATE accounts SET balance = balance - {amount} WHERE user_id = {user}", amount=..., user=...)`` binds
each ``{name}`` to its value. A placeholder may also name another ``Sql``, which is inlined with its own values (a
part written elsewhere, such as the outbox's INSERT inside a service's statement), or an ``Identifier`` (a table
name, quoted). ``render`` numbers the values in the order they appear: ``$1``, ``$2``... A value named twice in one
text is one parameter; values of different parts never share a number by accident. Nothing is numbered by hand,
so a part can gain a column without its callers renumbering theirs.

A statement that writes outbox rows says so (``writing_outbox``, which the outbox's own part does), and so does
every statement it is a part of: the unit of work that runs it wakes the relay after its commit
(``messaging.unit_of_work``).

Rows come back typed: ``fetch_one(conn, statement, Row)`` builds ``Row`` (a NamedTuple or dataclass) from the
columns, and refuses a statement whose columns are not exactly the row's fields.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
Row = TypeVar("Row")


@dataclass(frozen=True)
class Identifier:
    """A table or column name, quoted where it is inlined."""

    name: str

    def quoted(self) -> str:
        return '"' + self.name.replace('"', '""') + '"'


class Sql:
    """A piece of SQL and its values; immutable, and composable into other pieces. It keeps the text's parsed pieces
    and its items as given: the work of numbering is done once, when the whole statement is rendered."""

    __slots__ = ("_items", "_pieces", "writes_outbox")

    def __init__(self, text: str, /, **items: object) -> None:
        pieces, names = _parsed(text)
        if names != items.keys():
            if missing := names - items.keys():
                raise ValueError(f"no value for {sorted(missing)} in {text!r}")
            raise ValueError(f"{sorted(items.keys() - names)} not used in {text!r}")
        self._pieces = pieces
        self._items = items
        self.writes_outbox = any(isinstance(item, Sql) and item.writes_outbox for item in items.values())

    def writing_outbox(self) -> Sql:
        """This statement, marked as one that writes outbox rows."""
        marked = Sql.__new__(Sql)
        marked._pieces, marked._items, marked.writes_outbox = self._pieces, self._items, True
        return marked

    def render(self) -> tuple[str, list[object]]:
        """The statement text with ``$n`` parameters, and their values in order."""
        text: list[str] = []
        arguments: list[object] = []
        self._render_into(text, arguments, {})
        return "".join(text), arguments

    def _render_into(self, text: list[str], arguments: list[object], numbers: dict[tuple[int, str], int]) -> None:
        """Append this piece to ``text``; a value gets the next number the first time (this piece, its name) is met."""
        for literal, name in self._pieces:
            text.append(literal)
            if name is None:
                continue
            item = self._items[name]
            if isinstance(item, Sql):
                item._render_into(text, arguments, numbers)
            elif isinstance(item, Identifier):
                text.append(item.quoted())
            else:
                number = numbers.get((id(self), name))
                if number is None:
                    arguments.append(item)
                    number = numbers[id(self), name] = len(arguments)
                text.append(f"${number}")

    def __repr__(self) -> str:
        text, arguments = self.render()
        return f"Sql({text!r}, {arguments!r})"


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> tuple[tuple[tuple[str, str | None], ...], frozenset[str]]:
    """The text as (literal, the placeholder after it or None at the end) pairs, and the placeholders' names. The
    statements' texts are constants, so each is parsed once."""
    pieces, position = [], 0
    for match in PLACEHOLDER.finditer(text):
        pieces.append((text[position : match.start()], match.group(1)))
        position = match.end()
    pieces.append((text[position:], None))
    return tuple(pieces), frozenset(name for _, name in pieces if name is not None)


async def execute(conn: BaseDBAsyncClient, statement: Sql) -> int:
    """Run a statement that returns no rows the caller reads; returns the rows it affected."""
    affected, _ = await conn.execute_query(*statement.render())
    return affected


async def fetch_all(conn: BaseDBAsyncClient, statement: Sql, row: type[Row]) -> list[Row]:
    # Not execute_query: Tortoise returns no rows from a statement that starts with UPDATE or DELETE.
    records = await conn.execute_query_dict(*statement.render())
    return [typed(row, record) for record in records]


async def fetch_one(conn: BaseDBAsyncClient, statement: Sql, row: type[Row]) -> Row:
    """The statement's only row; one that returns none or several is a bug in the statement."""
    rows = await fetch_all(conn, statement, row)
    if len(rows) != 1:
        raise LookupError(f"{row.__name__}: expected one row, got {len(rows)}")
    return rows[0]


def typed(row: type[Row], record: Mapping[str, Any]) -> Row:
    """``row`` from a record whose columns are exactly its fields."""
    fields = _fields(row)
    columns = tuple(record.keys())
    if set(columns) != set(fields):
        raise TypeError(f"{row.__name__} has fields {fields}, the statement returned {columns}")
    return row(**{column: record[column] for column in columns})


def _fields(row: type) -> tuple[str, ...]:
    if dataclasses.is_dataclass(row):
        return tuple(field.name for field in dataclasses.fields(row))
    return tuple(row._fields)  # type: ignore[attr-defined]
