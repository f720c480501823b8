"""storage-schemas.conf and storage-aggregation.conf: parse, validate, serialise, match.

Accepts the carbon syntax (reference/graphite-api.md §3.6), metrictank's extensions (§3.7: 5-part retentions,
`priority`, `reorderBuffer…`) and GEM/Cloud's (§3.8: `intervals`, `relativeToQuery`), including the exact text
carbon-relay-ng POSTs (§3.5). Unlike whisper, nothing is fixed at creation: the storage engine applies these
at query time, so a new upload changes how existing data is read (the Grafana Cloud promise).

Patterns are unanchored searches, compiled with RE2 so that no uploaded pattern can hang a matcher. Every
validation problem raises ConfigError naming the section, the key and what is wrong (it becomes an HTTP 400).
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

import re2

__all__ = [
    "ConfigError", "Retention", "Schema", "AggregationRule", "StorageConfig",
    "parse_retentions", "validate_retentions", "parse_schemas", "parse_aggregations",
    "serialize_schemas", "serialize_aggregations",
    "DEFAULT_SCHEMAS_TEXT", "DEFAULT_AGGREGATIONS_TEXT", "FALLBACK_SCHEMA", "FALLBACK_AGGREGATION",
    "AGGREGATION_METHODS", "CHUNKSPANS",
]

# Raw 10 s for a day, 1 min for a month, 10 min for five years: fine enough for dashboards of the last day,
# a month of 1-minute history (what most alerting looks back over), and long-term trends. Each precision
# divides the next, as whisper requires, so a carbon user can copy the file unchanged.
DEFAULT_SCHEMAS_TEXT = """\
[default]
pattern = .*
retentions = 10s:1d,1m:30d,10m:5y
"""

# Graphite's (carbon's and Grafana Cloud's) own default: average, and a rollup bucket needs at least half of
# its points to have a value. Rollups keep sum/cnt/min/max/last, so this only picks the read method.
DEFAULT_AGGREGATIONS_TEXT = """\
[default]
pattern = .*
xFilesFactor = 0.5
aggregationMethod = avg
"""

AGGREGATION_METHODS = ("avg", "sum", "min", "max", "last")
_METHOD_ALIASES = {"average": "avg"}

# metrictank's valid chunk spans (seconds); each must also divide 28 days.
_MT_MONTH = 28 * 86400
CHUNKSPANS = tuple(s for s in (
    1, 5, 10, 15, 20, 30, 60, 90, 120, 180, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 9000,
    10800, 14400, 18000, 21600, 25200, 28800, 32400, 36000, 43200, 54000, 64800, 86400,
) if _MT_MONTH % s == 0)
DEFAULT_NUMCHUNKS = 2
MAX_RETENTIONS = 255                 # metrictank's limit per rule
MAX_SECONDS = 2**32 - 1              # intervals and TTLs are uint32 in metrictank (~136 years)
NOT_READY = 2**32 - 1                # `ready = false` (metrictank stores MaxUint32)
_INT64 = 2**63

_UNIT_WORDS = (("seconds", 1), ("minutes", 60), ("hours", 3600), ("days", 86400), ("weeks", 7 * 86400),
               ("years", 365 * 86400))
# Carbon takes any prefix of the words above (so `m` is minutes); raintank/dur adds these.
_UNIT_EXTRA = {"secs": 1, "mins": 60, "mon": 30 * 86400, "month": 30 * 86400, "months": 30 * 86400}
_DURATION = re.compile(r"([0-9]+)([a-z]*)")
_GO_TRUE = ("1", "t", "true")        # strconv.ParseBool, compared case-insensitively
_GO_FALSE = ("0", "f", "false")

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 8 << 20       # a pathological pattern fails to compile instead of eating memory
_RE2_OPTIONS.log_errors = False


class ConfigError(ValueError):
    """An invalid storage-schemas/storage-aggregation file; the message names section, key and problem."""


# --- durations and retentions -------------------------------------------------------------------------------

def _unit_seconds(unit: str) -> int | None:
    for word, seconds in _UNIT_WORDS:
        if word.startswith(unit):
            return seconds
    return _UNIT_EXTRA.get(unit)


def _duration(text: str) -> tuple[int, bool]:
    """`10s`, `1h30m`, `6hours` -> (seconds, True); a bare number -> (number, False) for the caller to read."""
    s = text.strip().lower()
    if s.isascii() and s.isdigit():
        return int(s), False
    total, pos = 0, 0
    while pos < len(s):
        m = _DURATION.match(s, pos)
        if not m or m.end() == pos or not m.group(2):
            raise ValueError(f"invalid duration {text.strip()!r}")
        seconds = _unit_seconds(m.group(2))
        if seconds is None:
            raise ValueError(f"unknown unit {m.group(2)!r} in {text.strip()!r} (use s, m, h, d, w, mon, y)")
        total += int(m.group(1)) * seconds
        pos = m.end()
    if not s:
        raise ValueError("empty duration")
    return total, True


def _seconds(text: str) -> int:
    value, _ = _duration(text)      # a bare number is seconds
    return value


def _go_bool(text: str) -> bool | None:
    t = text.strip().lower()
    return True if t in _GO_TRUE else False if t in _GO_FALSE else None


def _fmt(seconds: int) -> str:
    """Shortest carbon-compatible spelling: 600 -> '10m', 86400 -> '1d'."""
    for unit, size in (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _default_chunkspan(interval: int) -> int:
    """metrictank's default: the smallest valid span that holds at least 100 points."""
    for span in CHUNKSPANS:
        if span >= 100 * interval:
            return span
    return CHUNKSPANS[-1]


@dataclass(frozen=True)
class Retention:
    """One archive: `interval` seconds per point kept for `ttl` seconds.

    metrictank's extra fields: `chunkspan` (0 = its default for the interval), `numchunks`, and `ready_ts`:
    the data timestamp from which this rollup is complete (0 = ready; `ready = false` is NOT_READY).
    """
    interval: int
    ttl: int
    chunkspan: int = 0
    numchunks: int = DEFAULT_NUMCHUNKS
    ready_ts: int = 0

    def __post_init__(self):
        if self.chunkspan == 0:
            object.__setattr__(self, "chunkspan", _default_chunkspan(max(self.interval, 1)))

    @property
    def points(self) -> int:
        return self.ttl // self.interval if self.interval > 0 else 0

    @property
    def ready(self) -> bool:
        return self.ready_ts == 0

    def is_ready_for(self, from_ts: int) -> bool:
        """A rollup that became ready at `ready_ts` serves only queries starting at or after it."""
        return from_ts >= self.ready_ts

    @classmethod
    def parse(cls, text: str) -> "Retention":
        """`10s:6h`, legacy `60:1440` (secondsPerPoint:points), or `interval:ttl:chunkspan:numchunks:ready`."""
        parts = text.split(":")
        if not 2 <= len(parts) <= 5:
            raise ValueError(f"{text.strip()!r} must be interval:ttl (metrictank: up to 5 ':'-separated fields)")
        interval = _seconds(parts[0])
        ttl, has_unit = _duration(parts[1])
        if not has_unit:             # carbon's legacy form counts points
            ttl *= interval
        if interval <= 0:
            raise ValueError(f"{text.strip()!r}: interval must be greater than 0")
        if interval > MAX_SECONDS or ttl > MAX_SECONDS:
            raise ValueError(f"{text.strip()!r}: durations must be at most {MAX_SECONDS} s (about 136 years)")
        if ttl < interval:
            raise ValueError(f"{text.strip()!r}: retention must hold at least one point")
        chunkspan, numchunks, ready_ts = 0, DEFAULT_NUMCHUNKS, 0
        if len(parts) >= 3:
            chunkspan = _seconds(parts[2])
            if chunkspan not in CHUNKSPANS:
                raise ValueError(f"{text.strip()!r}: invalid chunkspan {parts[2].strip()!r} "
                                 f"(metrictank allows {', '.join(_fmt(s) for s in CHUNKSPANS)})")
        if len(parts) >= 4:
            n = parts[3].strip()
            if not (n.isascii() and n.isdigit()) or not 1 <= int(n) <= 2**32 - 1:
                raise ValueError(f"{text.strip()!r}: numchunks {n!r} must be a positive integer")
            numchunks = int(n)
        if len(parts) == 5:
            r = parts[4].strip()
            flag = _go_bool(r)
            if flag is not None:
                ready_ts = 0 if flag else NOT_READY
            elif r.isascii() and r.isdigit() and int(r) <= 2**32 - 1:
                ready_ts = int(r)
            else:
                raise ValueError(f"{text.strip()!r}: ready {r!r} must be true, false or a unix timestamp")
        return cls(interval, ttl, chunkspan, numchunks, ready_ts)

    def __str__(self) -> str:
        base = f"{_fmt(self.interval)}:{_fmt(self.ttl)}"
        if (self.chunkspan, self.numchunks, self.ready_ts) == (_default_chunkspan(self.interval),
                                                               DEFAULT_NUMCHUNKS, 0):
            return base
        ready = "true" if self.ready_ts == 0 else "false" if self.ready_ts == NOT_READY else str(self.ready_ts)
        return f"{base}:{_fmt(self.chunkspan)}:{self.numchunks}:{ready}"


def parse_retentions(text: str) -> list[Retention]:
    """A comma list of retentions, validated as a whole (see validate_retentions). Raises ValueError."""
    items = [p for p in (x.strip() for x in text.split(",")) if p]
    if not items:
        raise ValueError("no retentions given")
    retentions = [Retention.parse(item) for item in items]
    validate_retentions(retentions)
    return retentions


def validate_retentions(retentions: list[Retention]) -> None:
    """Whisper's archive rules, which also keep rollups cheap: each coarser archive is built from the previous.

    Precisions strictly increase, each divides the next, each archive covers more time than the previous and
    has at least enough points to fill one bucket of the next. Raises ValueError.
    """
    if not retentions:
        raise ValueError("no retentions given")
    if len(retentions) > MAX_RETENTIONS:
        raise ValueError(f"{len(retentions)} retentions, at most {MAX_RETENTIONS} allowed")
    for i, r in enumerate(retentions):
        if r.interval <= 0:
            raise ValueError(f"archive {i + 1} ({r}): interval must be greater than 0")
        if r.ttl < r.interval:
            raise ValueError(f"archive {i + 1} ({r}): retention must hold at least one point")
        if i == 0:
            continue
        p = retentions[i - 1]
        if r.interval <= p.interval:
            raise ValueError(f"archive {i + 1} ({r}): precision {_fmt(r.interval)} must be coarser than "
                             f"{_fmt(p.interval)} of archive {i}")
        if r.interval % p.interval:
            raise ValueError(f"archive {i + 1} ({r}): precision {_fmt(r.interval)} is not a multiple of "
                             f"{_fmt(p.interval)} of archive {i}")
        if r.ttl <= p.ttl:
            raise ValueError(f"archive {i + 1} ({r}): must cover more time than archive {i} ({p})")
        if p.points < r.interval // p.interval:
            raise ValueError(f"archive {i} ({p}) has {p.points} points, fewer than the "
                             f"{r.interval // p.interval} needed to fill one point of archive {i + 1} ({r})")


# --- rules -----------------------------------------------------------------------------------------------------

def _compile(pattern: str):
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except Exception as exc:  # re2's error type is private (re2._re2.Error)
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ConfigError(f"invalid regex {pattern!r}: {detail}") from None


def _intervals(text: str) -> list[tuple[int, int]]:
    """GEM's `intervals = <unixTs>:<interval>[,…]` (raw ingest interval effective from each timestamp)."""
    out: list[tuple[int, int]] = []
    for item in (x.strip() for x in text.split(",")):
        ts, sep, dur = item.partition(":")
        ts = ts.strip()
        if not sep or not (ts.isascii() and ts.isdigit()):
            raise ValueError(f"{item!r} must be <unix timestamp>:<interval>")
        seconds = _seconds(dur)
        if not 0 < seconds <= MAX_SECONDS:
            raise ValueError(f"{item!r}: interval must be greater than 0")
        if out and int(ts) <= out[-1][0]:
            raise ValueError(f"{item!r}: timestamps must increase")
        out.append((int(ts), seconds))
    return out


@dataclass
class Schema:
    """A storage-schemas rule. `extra` keeps keys plumbago does not interpret (original spelling -> value)."""
    name: str
    pattern: str
    retentions: list[Retention]
    priority: int = 0
    intervals: str | None = None
    relative_to_query: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    retentions_text: str | None = None        # as written, echoed by serialize_schemas
    _regex: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        def bad(key, msg):
            return ConfigError(f"[{self.name}] {key}: {msg}")
        try:
            self._regex = _compile(self.pattern)
        except ConfigError as exc:
            raise bad("pattern", exc) from None
        try:
            validate_retentions(self.retentions)
        except ValueError as exc:
            raise bad("retentions", exc) from None
        if not -_INT64 <= self.priority < _INT64:
            raise bad("priority", f"{self.priority} does not fit in a signed 64-bit integer")
        if self.intervals is not None:
            try:
                _intervals(self.intervals)
            except ValueError as exc:
                raise bad("intervals", exc) from None

    def matches(self, series_name: str) -> bool:
        """Unanchored search, as carbon's re.search: `name` or `name;k=v;…`, whatever the caller passes."""
        return self._regex.search(series_name) is not None

    @property
    def raw_intervals(self) -> list[tuple[int, int]]:
        """GEM `intervals` parsed: [(from_unix_ts, seconds)], empty when not set."""
        return _intervals(self.intervals) if self.intervals else []

    def archive_for(self, from_ts: int, now: int) -> int:
        """Index of the archive to read for a query from `from_ts`: the finest ready archive that reaches back
        that far, else the ready one that reaches furthest. The raw archive is always ready."""
        best = 0
        for i, r in enumerate(self.retentions):
            if i and not r.is_ready_for(from_ts):
                continue
            if now - r.ttl <= from_ts:
                return i
            best = i
        return best


@dataclass
class AggregationRule:
    """A storage-aggregation rule. `methods[0]` is the primary method used on read (metrictank)."""
    name: str
    pattern: str
    xfiles_factor: float = 0.5
    methods: list[str] = field(default_factory=lambda: ["avg"])
    extra: dict[str, str] = field(default_factory=dict)
    _regex: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        try:
            self._regex = _compile(self.pattern)
        except ConfigError as exc:
            raise ConfigError(f"[{self.name}] pattern: {exc}") from None
        if not (isinstance(self.xfiles_factor, (int, float)) and 0.0 <= self.xfiles_factor <= 1.0):
            raise ConfigError(f"[{self.name}] xFilesFactor: {self.xfiles_factor!r} must be between 0 and 1")
        try:
            self.methods = _methods(",".join(self.methods))
        except ValueError as exc:
            raise ConfigError(f"[{self.name}] aggregationMethod: {exc}") from None

    @property
    def method(self) -> str:
        return self.methods[0]

    def matches(self, series_name: str) -> bool:
        return self._regex.search(series_name) is not None


def _methods(text: str) -> list[str]:
    out: list[str] = []
    for item in text.split(","):
        m = item.strip().lower()
        m = _METHOD_ALIASES.get(m, m)
        if m not in AGGREGATION_METHODS:
            raise ValueError(f"unknown method {item.strip()!r} (use {', '.join(AGGREGATION_METHODS)} or average)")
        if m not in out:
            out.append(m)
    return out


FALLBACK_SCHEMA = Schema("default", ".*", [Retention(60, 7 * 86400)])   # carbon's last resort: 1m for 7 days
FALLBACK_AGGREGATION = AggregationRule("default", ".*", 0.5, ["avg"])


# --- INI reading ---------------------------------------------------------------------------------------------

_KEY_VALUE = re.compile(r"(?P<key>[^=:]*?)\s*[=:]\s*(?P<value>.*)$")   # the first '=' or ':' splits (configparser)


def _sections(text: str, what: str) -> list[tuple[str, int, dict[str, tuple[str, str]]]]:
    """[(section name, line, {lower key: (key as written, value)})], in file order.

    Comments are whole lines starting with `#` or `;`. There are no inline comments: patterns may contain
    both characters (tagged names use `;`).
    """
    if not isinstance(text, str):
        raise ConfigError(f"{what}: expected text")
    sections: list[tuple[str, int, dict[str, tuple[str, str]]]] = []
    for no, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or not line[1:-1].strip():
                raise ConfigError(f"{what} line {no}: malformed section header {line!r}")
            sections.append((line[1:-1].strip(), no, {}))
            continue
        m = _KEY_VALUE.match(line)
        if not m or not m.group("key"):
            raise ConfigError(f"{what} line {no}: expected '[section]' or 'key = value', got {line[:80]!r}")
        if not sections:
            raise ConfigError(f"{what} line {no}: {m.group('key')!r} appears before any [section]")
        name, _, keys = sections[-1]
        key = m.group("key")
        if key.lower() in keys:
            raise ConfigError(f"{what} line {no}: [{name}] {key}: duplicate key")
        keys[key.lower()] = (key, m.group("value").strip())
    return sections


def _err(what: str, name: str, line: int, key: str, msg) -> ConfigError:
    return ConfigError(f"{what} line {line}: [{name}] {key}: {msg}")


def parse_schemas(text: str) -> list[Schema]:
    """Parse storage-schemas.conf; rules ordered by priority (desc), then file order."""
    what = "storage-schemas.conf"
    out: list[Schema] = []
    for name, line, keys in _sections(text, what):
        for required in ("pattern", "retentions"):
            if required not in keys:
                raise ConfigError(f"{what} line {line}: [{name}] missing '{required}'")
        pattern = keys.pop("pattern")[1]
        ret_key, ret_text = keys.pop("retentions")
        try:
            retentions = parse_retentions(ret_text)
        except ValueError as exc:
            raise _err(what, name, line, ret_key, exc) from None
        priority = 0
        if "priority" in keys:
            key, value = keys.pop("priority")
            if not re.fullmatch(r"[+-]?[0-9]{1,19}", value):
                raise _err(what, name, line, key, f"{value!r} is not an integer")
            priority = int(value)
        intervals = keys.pop("intervals")[1] if "intervals" in keys else None
        relative = keys.pop("relativetoquery")[1] if "relativetoquery" in keys else None
        if "reorderbuffer" in keys:
            key, value = keys["reorderbuffer"]
            if not (value.isascii() and value.isdigit() and int(value) <= 2**32 - 1):
                raise _err(what, name, line, key, f"{value!r} must be a non-negative integer")
        if "reorderbufferallowupdate" in keys:
            key, value = keys["reorderbufferallowupdate"]
            if _go_bool(value) is None:
                raise _err(what, name, line, key, f"{value!r} must be true or false")
        try:
            out.append(Schema(name, pattern, retentions, priority, intervals, relative,
                              extra=dict(keys.values()), retentions_text=ret_text))
        except ConfigError as exc:
            raise ConfigError(f"{what} line {line}: {exc}") from None
    out.sort(key=lambda s: -s.priority)     # stable: ties keep file order
    return out


def parse_aggregations(text: str) -> list[AggregationRule]:
    """Parse storage-aggregation.conf; rules in file order. Defaults: xFilesFactor 0.5, method avg."""
    what = "storage-aggregation.conf"
    out: list[AggregationRule] = []
    for name, line, keys in _sections(text, what):
        if "pattern" not in keys:
            raise ConfigError(f"{what} line {line}: [{name}] missing 'pattern'")
        pattern = keys.pop("pattern")[1]
        xff = 0.5
        if "xfilesfactor" in keys:
            key, value = keys.pop("xfilesfactor")
            try:
                xff = float(value)
            except ValueError:
                raise _err(what, name, line, key, f"{value!r} is not a number") from None
            if not (math.isfinite(xff) and 0.0 <= xff <= 1.0):
                raise _err(what, name, line, key, f"{value!r} must be between 0 and 1")
        methods = ["avg"]
        if "aggregationmethod" in keys:
            key, value = keys.pop("aggregationmethod")
            try:
                methods = _methods(value)
            except ValueError as exc:
                raise _err(what, name, line, key, exc) from None
        try:
            out.append(AggregationRule(name, pattern, xff, methods, extra=dict(keys.values())))
        except ConfigError as exc:
            raise ConfigError(f"{what} line {line}: {exc}") from None
    return out


def serialize_schemas(schemas: list[Schema]) -> str:
    """INI text that parses back to the same rules in the same order."""
    blocks = []
    for s in schemas:
        lines = [f"[{s.name}]", f"pattern = {s.pattern}",
                 f"retentions = {s.retentions_text or ','.join(str(r) for r in s.retentions)}"]
        if s.priority:
            lines.append(f"priority = {s.priority}")
        if s.intervals is not None:
            lines.append(f"intervals = {s.intervals}")
        if s.relative_to_query is not None:
            lines.append(f"relativeToQuery = {s.relative_to_query}")
        lines += [f"{k} = {v}" for k, v in s.extra.items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def serialize_aggregations(rules: list[AggregationRule]) -> str:
    blocks = []
    for r in rules:
        lines = [f"[{r.name}]", f"pattern = {r.pattern}", f"xFilesFactor = {float(r.xfiles_factor)!r}",
                 f"aggregationMethod = {','.join(r.methods)}"]
        lines += [f"{k} = {v}" for k, v in r.extra.items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


# --- lookup ----------------------------------------------------------------------------------------------------

class StorageConfig:
    """One tenant's schemas and aggregations, with per-name LRU caches (names repeat on every write and read).

    Immutable: a new upload builds a new StorageConfig (see with_schemas / with_aggregations), so the caches
    never go stale. `schemas_text` / `aggregations_text` are the texts as uploaded, for GET to echo.
    """

    def __init__(self, schemas: list[Schema] | None = None, aggregations: list[AggregationRule] | None = None,
                 *, schemas_text: str | None = None, aggregations_text: str | None = None,
                 cache_size: int = 65536):
        self.schemas = list(schemas) if schemas is not None else parse_schemas(DEFAULT_SCHEMAS_TEXT)
        self.aggregations = (list(aggregations) if aggregations is not None
                             else parse_aggregations(DEFAULT_AGGREGATIONS_TEXT))
        self.schemas_text = schemas_text if schemas_text is not None else serialize_schemas(self.schemas)
        self.aggregations_text = (aggregations_text if aggregations_text is not None
                                  else serialize_aggregations(self.aggregations))
        self._cache_size = cache_size
        self.schema_for = functools.lru_cache(maxsize=cache_size)(self._schema_for)
        self.aggregation_for = functools.lru_cache(maxsize=cache_size)(self._aggregation_for)

    @classmethod
    def from_texts(cls, schemas_text: str | None = None, aggregations_text: str | None = None,
                   cache_size: int = 65536) -> "StorageConfig":
        """Parse and validate both files (None = plumbago's default). Raises ConfigError."""
        schemas_text = DEFAULT_SCHEMAS_TEXT if schemas_text is None else schemas_text
        aggregations_text = DEFAULT_AGGREGATIONS_TEXT if aggregations_text is None else aggregations_text
        return cls(parse_schemas(schemas_text), parse_aggregations(aggregations_text),
                   schemas_text=schemas_text, aggregations_text=aggregations_text, cache_size=cache_size)

    def with_schemas(self, text: str) -> "StorageConfig":
        return StorageConfig(parse_schemas(text), self.aggregations, schemas_text=text,
                             aggregations_text=self.aggregations_text, cache_size=self._cache_size)

    def with_aggregations(self, text: str) -> "StorageConfig":
        return StorageConfig(self.schemas, parse_aggregations(text), schemas_text=self.schemas_text,
                             aggregations_text=text, cache_size=self._cache_size)

    def _schema_for(self, name: str) -> Schema:
        """The first rule (priority desc, file order) whose pattern matches; else carbon's 1m:7d fallback."""
        for schema in self.schemas:
            if schema.matches(name):
                return schema
        return FALLBACK_SCHEMA

    def _aggregation_for(self, name: str) -> AggregationRule:
        """The first matching rule in file order; else avg with xFilesFactor 0.5."""
        for rule in self.aggregations:
            if rule.matches(name):
                return rule
        return FALLBACK_AGGREGATION
