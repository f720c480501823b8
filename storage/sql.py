"""The SQL schema (SQLAlchemy Core) shared by SQLite and PostgreSQL.

Kept portable on purpose: only types and statements both back ends run the same way. Series identity is
unique per (tenant, key hash) because PostgreSQL cannot index arbitrarily long keys.
"""
from __future__ import annotations

import hashlib
import os

from sqlalchemy import (BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text,
                        UniqueConstraint, create_engine, event)
from sqlalchemy.engine import Engine

IN_CHUNK = 500   # ids per SQL IN list (SQLite's variable limit is generous, but keep statements small)

metadata = MetaData()

series = Table(
    "series", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant", String(256), nullable=False),
    Column("key_hash", String(40), nullable=False),
    Column("key", Text, nullable=False),
    Column("interval", Integer, nullable=False, default=0),
    Column("unit", String(256), nullable=False, default=""),
    Column("mtype", String(32), nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("tenant", "key_hash", name="uq_series_tenant_key"),
    sqlite_autoincrement=True,   # ids of deleted series are never reused: other processes may still know them
)

# Raw samples: one row per series per block, or several "pieces" until compaction merges them.
chunks = Table(
    "chunks", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("series_id", BigInteger, nullable=False),
    Column("block_start", BigInteger, nullable=False),
    Column("min_ts", BigInteger, nullable=False),
    Column("max_ts", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_chunks_series_block", "series_id", "block_start"),
    Index("ix_chunks_block", "block_start"),
    sqlite_autoincrement=True,   # row ids are never reused: the decoded-chunk cache keys on them
)

# Rollup archives: per bucket sum, cnt, min, max, last (read-time aggregation stays free to change).
rollups = Table(
    "rollups", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("series_id", BigInteger, nullable=False),
    Column("interval", Integer, nullable=False),
    Column("block_start", BigInteger, nullable=False),
    Column("min_ts", BigInteger, nullable=False),
    Column("max_ts", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_rollups_series_interval_block", "series_id", "interval", "block_start"),
    Index("ix_rollups_block", "block_start"),
    sqlite_autoincrement=True,
)

# Interval changes of existing series, read by the other processes sharing the database (above a watermark,
# like new series). Rows older than a day are pruned with retention; start-up reads intervals from `series`.
interval_changes = Table(
    "interval_changes", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("series_id", BigInteger, nullable=False),
    Column("interval", Integer, nullable=False),
    Column("changed_ms", BigInteger, nullable=False),
    Index("ix_interval_changes_changed", "changed_ms"),
    sqlite_autoincrement=True,
)

configs = Table(
    "configs", metadata,
    Column("tenant", String(256), primary_key=True),
    Column("kind", String(64), primary_key=True),
    Column("text", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)


def key_hash(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")   # series rows must outlive a crash: WAL records refer to their ids
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def connect(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        engine = create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    return engine
