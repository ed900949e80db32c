"""The Tortoise models and the SQL migrations describe the same schema, so neither can drift from the other.

For each service, against its database as migrated for the session (read from ``information_schema`` as the
database's owner, who sees every table): every table but ``schema_migrations`` has exactly one concrete model in the
service's models module, every model has a table, and each model's columns are the table's, each with the same
type, nullability, primary key and whether the database generates it (``bigserial``). Only metadata is read.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections import Counter
from dataclasses import dataclass

import asyncpg
import pytest
from tortoise.fields import Field
from tortoise.models import Model

from stack.local import LocalStack

SERVICES = ("orders", "payments")
NOT_MODELLED = {"schema_migrations"}
"""Tables that belong to the migration runner, not to the service."""

# Spellings of one type, as PostgreSQL's information_schema and udt names and Tortoise's SQL types write them.
TYPE_ALIASES = {
    "character varying": "varchar",
    "character": "char",
    "bpchar": "char",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "decimal": "numeric",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
}
SQL_TYPE = re.compile(r"(?P<name>[a-z0-9 ]+?)\s*(?:\((?P<arguments>[0-9, ]+)\))?(?P<array>\[\])?")


@dataclass(frozen=True)
class Column:
    """One column, as either side describes it."""

    type: str
    """Normalised: ``varchar(64)``, ``char(64)``, ``numeric(12,2)``, ``timestamptz``, ``bigint[]``..."""
    nullable: bool
    primary_key: bool
    generated: bool
    """The database fills it in (a sequence, as ``bigserial`` makes)."""


Table = dict[str, Column]
"""A table's columns by name."""
Schema = dict[str, Table]
"""A database's tables by name."""


def normalise_type(sql_type: str) -> str:
    """One spelling per type: lower case, PostgreSQL's short names, no spaces in the arguments."""
    match = SQL_TYPE.fullmatch(sql_type.strip().lower())
    assert match, f"cannot read the SQL type {sql_type!r}"
    name = TYPE_ALIASES.get(match["name"], match["name"])
    arguments = f"({match['arguments'].replace(' ', '')})" if match["arguments"] else ""
    return f"{name}{arguments}{match['array'] or ''}"


def information_schema_type(row: asyncpg.Record) -> str:
    """The column's type from its ``information_schema.columns`` row, with its length or precision and scale."""
    if row["data_type"] == "ARRAY":
        # An array's element type is only named by its udt_name: "_int8" is bigint[].
        return normalise_type(f"{row['udt_name'].removeprefix('_')}[]")
    if row["character_maximum_length"] is not None:
        return normalise_type(f"{row['data_type']}({row['character_maximum_length']})")
    if row["data_type"] == "numeric" and row["numeric_precision"] is not None:
        return normalise_type(f"numeric({row['numeric_precision']},{row['numeric_scale']})")
    return normalise_type(row["data_type"])


async def database_tables(dsn: str) -> Schema:
    """Every table of the public schema but those in ``NOT_MODELLED``, with its columns."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type, udt_name, character_maximum_length, numeric_precision, "
            "numeric_scale, is_nullable, column_default, is_identity "
            "FROM information_schema.columns WHERE table_schema = 'public'"
        )
        primary_keys = await conn.fetch(
            "SELECT k.table_name, k.column_name FROM information_schema.table_constraints AS c "
            "JOIN information_schema.key_column_usage AS k "
            "ON k.constraint_schema = c.constraint_schema AND k.constraint_name = c.constraint_name "
            "AND k.table_name = c.table_name "
            "WHERE c.table_schema = 'public' AND c.constraint_type = 'PRIMARY KEY'"
        )
    finally:
        await conn.close()
    keys = {(row["table_name"], row["column_name"]) for row in primary_keys}
    result: Schema = {row["table_name"]: {} for row in tables if row["table_name"] not in NOT_MODELLED}
    for row in columns:
        if (table := result.get(row["table_name"])) is not None:
            table[row["column_name"]] = Column(
                type=information_schema_type(row),
                nullable=row["is_nullable"] == "YES",
                primary_key=(row["table_name"], row["column_name"]) in keys,
                generated=row["is_identity"] == "YES" or (row["column_default"] or "").startswith("nextval("),
            )
    return result


def concrete_models(service: str) -> list[type[Model]]:
    """The models Tortoise finds in the service's models module (as ``Tortoise.init`` does): the non-abstract ones."""
    module = importlib.import_module(f"{service}.models")
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, Model) and not value._meta.abstract
    ]


def model_column(field: Field) -> Column:
    return Column(
        type=normalise_type(field.get_for_dialect("postgres", "SQL_TYPE")),
        nullable=field.null,
        primary_key=field.pk,
        generated=field.generated,
    )


def model_table(model: type[Model]) -> Table:
    """The columns the model says its table has: its fields stored in a column, by column name."""
    return {
        column: model_column(model._meta.fields_map[name]) for name, column in model._meta.fields_db_projection.items()
    }


def differences(table_name: str, model: Table, database: Table) -> list[str]:
    """One line per difference between the model's and the database's description of the table."""
    lines = [f"{table_name}.{name}: in the model, not in the database" for name in sorted(model.keys() - database)]
    lines += [f"{table_name}.{name}: in the database, not in the model" for name in sorted(database.keys() - model)]
    for name in sorted(model.keys() & database.keys()):
        for attribute in ("type", "nullable", "primary_key", "generated"):
            modelled, actual = getattr(model[name], attribute), getattr(database[name], attribute)
            if modelled != actual:
                lines.append(f"{table_name}.{name}: {attribute} is {modelled} in the model, {actual} in the database")
    return lines


@pytest.fixture(scope="module")
async def schemas(infra: LocalStack) -> dict[str, Schema]:
    """Each service's tables, as its migrations made them."""
    return {service: await database_tables(infra.migration_database_urls[service]) for service in SERVICES}


@pytest.mark.parametrize("service", SERVICES)
async def test_every_table_has_exactly_one_model(service: str, schemas: dict[str, Schema]) -> None:
    """A table nothing models, a model of a table no migration creates, and two models of one table all fail."""
    modelled = Counter(model._meta.db_table for model in concrete_models(service))
    tables = schemas[service].keys()
    assert not (missing := sorted(tables - modelled.keys())), f"{service}: tables without a model: {missing}"
    assert not (extra := sorted(modelled.keys() - tables)), f"{service}: models of no table: {extra}"
    assert not (twice := sorted(t for t, n in modelled.items() if n > 1)), f"{service}: tables with two models: {twice}"


@pytest.mark.parametrize(
    ("service", "model"),
    [(service, model) for service in SERVICES for model in concrete_models(service)],
    ids=lambda value: value if isinstance(value, str) else value._meta.db_table,
)
async def test_model_matches_its_table(service: str, model: type[Model], schemas: dict[str, Schema]) -> None:
    """Same columns, and each with the same type, nullability, primary key and generation as the migrated table."""
    table = model._meta.db_table
    assert table in schemas[service], f"{service}: {model.__name__}'s table {table} does not exist"
    problems = differences(table, model_table(model), schemas[service][table])
    assert not problems, f"{service}: {model.__name__} is not its table:\n" + "\n".join(problems)
