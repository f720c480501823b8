"""Graphite events (graphite-web's `events` app): annotations with a time, a title, tags and free text.

One SQL table on the storage engine's database, per tenant. Tag matching follows graphite-web 1.1.10, which
delegates it to django-tagging:

* an event's tags are its tag text parsed by django-tagging's `parse_tag_input` (split on spaces, or on
  commas when the text holds any, double quotes group words); the text itself is kept as given and
  `get_data` reports it split on whitespace, as graphite-web's `Event.as_dict` does;
* a query's tags that no event carries are dropped before matching (django-tagging looks the names up in
  its tag table first); when none is left nothing matches;
* default (`with_all`) and `intersection`: events carrying every remaining tag; `union`: any of them.
  `intersection` additionally requires every *requested* tag to appear in the event's text split on
  whitespace (graphite-web's own post-filter).
"""
from __future__ import annotations

import math
import threading
import time

from sqlalchemy import (BigInteger, Column, Float, Index, Integer, String, Table, Text, and_, insert, select)
from sqlalchemy.engine import Engine

from .sql import metadata

events = Table(
    "events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant", String(256), nullable=False),
    Column("when", Float(precision=53), nullable=False),      # unix seconds; double precision on PostgreSQL
    Column("what", Text, nullable=False),
    Column("tags", Text, nullable=False, default=""),           # as given (a list is joined by spaces)
    Column("data", Text, nullable=False, default=""),
    Index("ix_events_tenant_when", "tenant", "when"),
)

_created: set[int] = set()
_created_lock = threading.Lock()


def _engine(db) -> Engine:
    """Accept a `storage.engine.Storage` or an SQLAlchemy engine."""
    return getattr(db, "db", db)


def _ensure(engine: Engine) -> None:
    # `sql.connect` runs create_all, which covers this table whenever this module was imported first;
    # an engine opened before that import gets the table here, once.
    key = id(engine)
    if key in _created:
        return
    with _created_lock:
        if key not in _created:
            events.create(engine, checkfirst=True)
            _created.add(key)


def parse_tag_input(text: str | None) -> list[str]:
    """django-tagging's `parse_tag_input`: sorted unique tag names from a tag string."""
    if not text:
        return []
    if "," not in text and '"' not in text:
        return sorted({w.strip() for w in text.split(" ") if w.strip()})
    words: list[str] = []
    loose: list[str] = []       # unquoted stretches, split once we know the delimiter
    buf: list[str] = []
    saw_comma = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            if buf:
                loose.append("".join(buf))
                buf = []
            j = text.find('"', i + 1)
            if j < 0:               # an unclosed quote: the rest is unquoted text
                rest = text[i + 1:]
                if "," in rest:
                    saw_comma = True
                buf = list(rest)
                break
            word = text[i + 1:j].strip()
            if word:
                words.append(word)
            i = j + 1
            continue
        if c == ",":
            saw_comma = True
        buf.append(c)
        i += 1
    if buf:
        loose.append("".join(buf))
    delimiter = "," if saw_comma else " "
    for chunk in loose:
        words.extend(w.strip() for w in chunk.split(delimiter) if w.strip())
    return sorted(set(words))


def tags_text(tags) -> str:
    """graphite-web's POST /events: a list of tags is joined by spaces, a string is kept as is."""
    if tags is None:
        return ""
    if isinstance(tags, (list, tuple)):
        return " ".join(str(t) for t in tags)
    if isinstance(tags, str):
        return tags
    raise ValueError('"tags" must be an array or space-separated string')


def add_event(db, tenant: str, what: str, tags=None, when: float | None = None, data: str = "") -> int:
    """Store one event; returns its id. `when` defaults to now (unix seconds, fractions kept)."""
    engine = _engine(db)
    _ensure(engine)
    when = time.time() if when is None else float(when)
    if not math.isfinite(when):
        raise ValueError(f"invalid event time {when!r}")
    row = {"tenant": tenant, "when": when, "what": str(what), "tags": tags_text(tags),
           "data": "" if data is None else str(data)}
    with engine.begin() as conn:
        return int(conn.execute(insert(events).returning(events.c.id), row).scalar())


def _known_tags(conn, tenant: str) -> set[str]:
    known: set[str] = set()
    for (text,) in conn.execute(select(events.c.tags).where(events.c.tenant == tenant).distinct()):
        known.update(parse_tag_input(text))
    return known


def get_events(db, tenant: str, start: float | None = None, end: float | None = None, tags=None,
               set_operation: str | None = None) -> list[dict]:
    """Events with start <= when <= end (either bound optional) matching `tags`, ordered by time.

    Each is `{"id", "when" (float seconds), "what", "data", "tags" (the tag text split on whitespace)}`.
    `tags=None` means every event; `set_operation` is None, "union" or "intersection" (see module doc).
    """
    engine = _engine(db)
    _ensure(engine)
    cond = [events.c.tenant == tenant]
    if start is not None:
        cond.append(events.c.when >= float(start))
    if end is not None:
        cond.append(events.c.when <= float(end))
    query = (select(events.c.id, events.c.when, events.c.what, events.c.data, events.c.tags)
             .where(and_(*cond)).order_by(events.c.when, events.c.id))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        wanted: list[str] = []
        if tags is not None:
            requested = [str(t) for t in tags]
            known = _known_tags(conn, tenant) if rows else set()
            wanted = sorted({t for t in requested if t in known})
            if not wanted:
                return []
    out = []
    for row in rows:
        if tags is not None:
            have = set(parse_tag_input(row.tags))
            if set_operation == "union":
                if not have.intersection(wanted):
                    continue
            elif not have.issuperset(wanted):
                continue
            if set_operation == "intersection" and \
                    len(set(requested) & set(row.tags.split())) != len(requested):
                continue
        out.append({"id": int(row.id), "when": float(row.when), "what": row.what, "data": row.data,
                    "tags": row.tags.split()})
    return out


def get_event(db, tenant: str, event_id: int) -> dict | None:
    engine = _engine(db)
    _ensure(engine)
    with engine.connect() as conn:
        row = conn.execute(select(events.c.id, events.c.when, events.c.what, events.c.data, events.c.tags)
                           .where(and_(events.c.tenant == tenant, events.c.id == int(event_id)))).first()
    if row is None:
        return None
    return {"id": int(row.id), "when": float(row.when), "what": row.what, "data": row.data,
            "tags": row.tags.split()}
