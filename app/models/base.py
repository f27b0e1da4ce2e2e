"""The declarative base every model shares, and the column types and SQL
functions they need on both MySQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, MetaData, String, func
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

#: Constraint names that are the same on every database, so migrations can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: BIGINT on MySQL; INTEGER on SQLite, where only an INTEGER primary key autoincrements.
BigID = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Now, in UTC. Used as a column default: called per row, at write time."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime. Stored as naive UTC with microseconds
    (``DATETIME(6)`` on MySQL), read back aware, on every database."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class json_array_of(FunctionElement[Any]):  # noqa: N801 - a SQL function, named as one
    """An aggregate: the group's values as a JSON array (``[]`` over no rows).
    ``JSON_ARRAYAGG`` on MySQL and MariaDB, ``json_group_array`` on SQLite: one
    column for a list of values, which :func:`json_object` embeds as an array."""

    inherit_cache = True
    type = String()


@compiles(json_array_of, "mysql")
def _json_arrayagg(element: json_array_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"COALESCE(JSON_ARRAYAGG({compiler.process(element.clauses, **kw)}), JSON_ARRAY())"


@compiles(json_array_of, "sqlite")
def _json_group_array(element: json_array_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


class json_utc(FunctionElement[str]):  # noqa: N801 - a SQL function, named as one
    """A :class:`UTCDateTime` column as RFC 3339 text in UTC, with microseconds
    and ``Z`` (``2026-01-02T03:04:05.000006Z``): what JSON carries of it.
    ``DATE_FORMAT`` on MySQL; on SQLite, the text SQLAlchemy stored."""

    inherit_cache = True
    type = String()


@compiles(json_utc, "mysql")
def _date_format(element: json_utc, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(func.date_format(column, "%Y-%m-%dT%H:%i:%s.%fZ"), **kw)


@compiles(json_utc, "sqlite")
def _stored_text(element: json_utc, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff" (models/base.UTCDateTime: naive UTC).
    (column,) = element.clauses
    return compiler.process(func.replace(column, " ", "T").concat("Z"), **kw)
