"""storage-schemas.conf / storage-aggregation.conf (reference/graphite-api.md §3.5–3.8, §4)."""
import time

import pytest

from storage.schemas import (
    DEFAULT_AGGREGATIONS_TEXT, DEFAULT_SCHEMAS_TEXT, FALLBACK_AGGREGATION, FALLBACK_SCHEMA, NOT_READY,
    AggregationRule, ConfigError, Retention, Schema, StorageConfig, parse_aggregations, parse_retentions,
    parse_schemas, serialize_aggregations, serialize_schemas, validate_retentions,
)

D = 86400

# What carbon-relay-ng POSTs to /graphite/config/storageSchema: priority-sorted, no blank lines, priority =
# (userPriority << 32) - fileIndex, GEM keys only when set (graphite-api.md §3.5, §3.8).
CRNG_SCHEMAS = """\
[important]
pattern = ^important\\.
retentions = 1s:1d,1m:30d
priority = 4294967296
intervals = 0:1s
relativeToQuery = true
[carbon]
pattern = ^carbon\\.
retentions = 60s:90d
priority = -1
[default]
pattern = .*
retentions = 10s:1d,1m:30d,10m:5y
priority = -2
"""

# ... and to /graphite/config/storageAggregation: blank line between blocks, xFilesFactor as %.1f.
CRNG_AGGREGATIONS = """\
[min]
pattern = \\.min$
xFilesFactor = 0.1
aggregationMethod = min

[max]
pattern = \\.max$
xFilesFactor = 0.1
aggregationMethod = max

[sum]
pattern = \\.count$
xFilesFactor = 0.0
aggregationMethod = sum

[default_average]
pattern = .*
xFilesFactor = 0.5
aggregationMethod = avg
"""

# carbon's storage-schemas.conf.example style, with comments.
CARBON_SCHEMAS = """\
# Schema definitions for Whisper files. Entries are scanned in order,
# and first match wins. This file is scanned for changes every 60 seconds.
[carbon]
pattern = ^carbon\\.
retentions = 60:90d

; semicolon comments too
[default_1min_for_1day]
pattern = .*
retentions = 60s:1d
"""


# --- Retention ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,interval,ttl", [
    ("10s:6h", 10, 6 * 3600),
    ("60:1440", 60, 60 * 1440),                 # legacy secondsPerPoint:points
    ("60s:1440", 60, 60 * 1440),
    ("60:1d", 60, D),
    ("1m:7d", 60, 7 * D),                       # carbon and metrictank: m is minutes
    ("1min:7d", 60, 7 * D),
    ("1mins:7days", 60, 7 * D),
    ("1minute:1week", 60, 7 * D),
    ("10sec:6hours", 10, 6 * 3600),
    ("10secs:6hours", 10, 6 * 3600),
    ("10seconds:6h", 10, 6 * 3600),
    ("1h:1mon", 3600, 30 * D),
    ("1h:2months", 3600, 60 * D),
    ("10m:5y", 600, 5 * 365 * D),
    ("1d:2years", D, 2 * 365 * D),
    ("1w:10w", 7 * D, 70 * D),
    ("1h30m:3d", 5400, 3 * D),                  # raintank/dur-style combined duration
    (" 10S : 6H ", 10, 6 * 3600),
    ("7s:1m", 7, 60),                           # ttl kept as written even when not a multiple
])
def test_retention_parse(text, interval, ttl):
    r = Retention.parse(text)
    assert (r.interval, r.ttl) == (interval, ttl)
    assert r.ready and r.ready_ts == 0 and r.numchunks == 2


def test_retention_points_and_str():
    r = Retention.parse("10s:6h")
    assert r.points == 2160
    assert str(r) == "10s:6h"
    assert str(Retention.parse("60:1440")) == "1m:1d"
    assert str(Retention(600, 5 * 365 * D)) == "10m:5y"
    assert str(Retention(7, 60)) == "7s:1m"
    assert Retention.parse("10s:6h") == Retention(10, 21600)


def test_metrictank_five_part_retention():
    r = Retention.parse("1s:1d:10min:2:true")
    assert (r.interval, r.ttl, r.chunkspan, r.numchunks, r.ready_ts) == (1, D, 600, 2, 0)
    assert r.ready
    r = Retention.parse("1m:30d:2h:3:false")
    assert (r.chunkspan, r.numchunks, r.ready_ts, r.ready) == (7200, 3, NOT_READY, False)
    r = Retention.parse("10m:1y:6h:2:1600000000")
    assert r.ready_ts == 1600000000
    assert not r.is_ready_for(1599999999) and r.is_ready_for(1600000000)
    assert Retention.parse("1s:1d:10min").numchunks == 2
    assert Retention.parse("1s:1d:10min:5").numchunks == 5
    assert Retention.parse("1s:1d:10min:2:1").ready_ts == 0            # Go ParseBool: "1" is true
    assert Retention.parse("1s:1d:10min:2:F").ready_ts == NOT_READY
    assert str(Retention.parse("1m:30d:2h:3:false")) == "1m:30d:2h:3:false"
    assert str(Retention.parse("10m:1y:6h:2:1600000000")) == "10m:1y:6h:2:1600000000"


def test_default_chunkspan_is_smallest_span_with_100_points():
    assert Retention(1, D).chunkspan == 120            # 2min holds 120 points
    assert Retention(10, D).chunkspan == 1200          # 20min
    assert Retention(60, D).chunkspan == 7200          # 2h
    assert Retention(3600, 365 * D).chunkspan == 86400  # nothing holds 100 points: the largest span


@pytest.mark.parametrize("text,fragment", [
    ("10s", "interval:ttl"),
    ("1:2:3:4:5:6", "interval:ttl"),
    ("0s:1d", "greater than 0"),
    ("0:1440", "greater than 0"),
    ("10x:1d", "unknown unit 'x'"),
    ("10s:6mo", "unknown unit 'mo'"),
    ("10s:", "empty duration"),
    (":1d", "empty duration"),
    ("-10s:1d", "invalid duration"),
    ("1.5s:1d", "invalid duration"),
    ("10s:5s", "at least one point"),
    ("10s:0", "at least one point"),
    ("1s:200y", "at most"),
    ("1s:99999999999999999999999d", "at most"),
    ("1s:1d:7min", "invalid chunkspan"),
    ("1s:1d:150min", "invalid chunkspan"),          # on metrictank's list, but does not divide 28 days
    ("1s:1d:10min:0", "numchunks"),
    ("1s:1d:10min:x", "numchunks"),
    ("1s:1d:10min:2:maybe", "ready"),
    ("1s:1d:10min:2:-5", "ready"),
])
def test_retention_errors(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        Retention.parse(text)


@pytest.mark.parametrize("text,fragment", [
    ("", "no retentions"),
    ("1m:1d,10s:7d", "must be coarser"),
    ("1m:1d,1m:7d", "must be coarser"),
    ("1m:1d,90s:7d", "not a multiple"),
    ("1m:7d,5m:1d", "must cover more time"),
    ("1m:7d,5m:7d", "must cover more time"),
    ("1m:2m,5m:1d", "fewer than the 5 needed"),
])
def test_retention_list_errors(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_retentions(text)


def test_retention_count_limit():
    # Unreachable through divisibility within uint32, but the limit is checked first and cheaply.
    with pytest.raises(ValueError, match="at most 255"):
        validate_retentions([Retention(60, D)] * 256)


def test_retention_list_ok():
    rs = parse_retentions("10s:1d, 1m:30d ,10m:5y,")
    assert [(r.interval, r.ttl) for r in rs] == [(10, D), (60, 30 * D), (600, 5 * 365 * D)]


# --- parse_schemas ---------------------------------------------------------------------------------------------

def test_carbon_relay_ng_schemas_body():
    schemas = parse_schemas(CRNG_SCHEMAS)
    assert [s.name for s in schemas] == ["important", "carbon", "default"]
    imp, carbon, default = schemas
    assert imp.priority == 4294967296 and carbon.priority == -1 and default.priority == -2
    assert imp.intervals == "0:1s" and imp.raw_intervals == [(0, 1)]
    assert imp.relative_to_query == "true"
    assert carbon.intervals is None and carbon.relative_to_query is None
    assert [(r.interval, r.ttl) for r in imp.retentions] == [(1, D), (60, 30 * D)]
    assert imp.retentions_text == "1s:1d,1m:30d"
    assert imp.matches("important.foo") and not imp.matches("carbon.important.x")
    assert default.matches("anything") and default.matches("")


def test_gem_documented_example():
    text = "[default]\npattern    = .*\nintervals  = 0:1s\nretentions = 1m:5w"
    (s,) = parse_schemas(text)
    assert s.intervals == "0:1s" and [(r.interval, r.ttl) for r in s.retentions] == [(60, 35 * D)]
    (s,) = parse_schemas("[x]\npattern = .*\nintervals = 1594166400:30min,1625702400:15s\nretentions = 1m:5w,2h:1y")
    assert s.raw_intervals == [(1594166400, 1800), (1625702400, 15)]


def test_carbon_example_file():
    carbon, default = parse_schemas(CARBON_SCHEMAS)
    assert carbon.name == "carbon" and carbon.retentions == [Retention(60, 90 * D)]
    assert default.name == "default_1min_for_1day" and default.retentions == [Retention(60, D)]
    assert carbon.priority == default.priority == 0


def test_priority_orders_desc_then_file_order():
    text = """
[a]
pattern = a
retentions = 1m:1d
[b]
pattern = b
retentions = 1m:1d
priority = 10
[c]
pattern = c
retentions = 1m:1d
[d]
pattern = d
retentions = 1m:1d
priority = +10
[e]
pattern = e
retentions = 1m:1d
priority = -3
"""
    assert [s.name for s in parse_schemas(text)] == ["b", "d", "a", "c", "e"]


def test_unknown_and_metrictank_keys_are_kept():
    text = ("[x]\npattern = ^x\\.\nretentions = 1s:1d:10min:2:true,1m:30d:2h:2:false\n"
            "reorderBuffer = 20\nreorderBufferAllowUpdate = true\nfutureKey = whatever\n")
    (s,) = parse_schemas(text)
    assert s.extra == {"reorderBuffer": "20", "reorderBufferAllowUpdate": "true", "futureKey": "whatever"}
    assert s.retentions[1].ready_ts == NOT_READY


def test_ini_details():
    text = ("\ufeff[ spaced name ]\r\n  PATTERN = ^a=b;c:d#e$ \r\nRetentions: 10s:6h\r\n\r\n"
            "[colon]\npattern: foo\nretentions: 60:1440\n")
    a, b = parse_schemas(text)
    assert a.name == "spaced name" and a.pattern == "^a=b;c:d#e$"     # no inline comments
    assert a.matches("a=b;c:d#e")
    assert a.retentions == [Retention(10, 21600)]
    assert b.pattern == "foo" and b.retentions == [Retention(60, D)]
    assert parse_schemas("") == [] and parse_schemas("# only a comment\n\n") == []


def test_duplicate_section_names_are_separate_rules():
    text = "[x]\npattern = ^a\nretentions = 1m:1d\n[x]\npattern = ^b\nretentions = 1h:1y\n"
    assert [s.pattern for s in parse_schemas(text)] == ["^a", "^b"]


def test_empty_pattern_matches_everything_like_carbon():
    (s,) = parse_schemas("[x]\npattern =\nretentions = 1m:1d\n")
    assert s.matches("anything")


@pytest.mark.parametrize("text,fragments", [
    ("[x]\nretentions = 1m:1d\n", ["line 1", "[x]", "missing 'pattern'"]),
    ("[x]\npattern = .*\n", ["[x]", "missing 'retentions'"]),
    ("[x]\npattern = .*\nretentions = 10s:6x\n", ["[x]", "retentions", "unknown unit 'x'"]),
    ("[x]\npattern = .*\nretentions =\n", ["[x]", "retentions", "no retentions"]),
    ("[x]\npattern = .*\nretentions = 0s:1d\n", ["[x]", "retentions", "greater than 0"]),
    ("[x]\npattern = .*\nretentions = 1m:1d,30s:7d\n", ["[x]", "retentions", "coarser"]),
    ("[x]\npattern = .*\nretentions = 1m:1d,90s:7d\n", ["[x]", "retentions", "not a multiple"]),
    ("[x]\npattern = .*\nretentions = 1m:7d,5m:1d\n", ["[x]", "retentions", "more time"]),
    ("[x]\npattern = (\nretentions = 1m:1d\n", ["[x]", "pattern", "invalid regex '('"]),
    ("[x]\npattern = ^(?!foo)\nretentions = 1m:1d\n", ["[x]", "pattern", "invalid regex"]),   # RE2: no lookahead
    ("[x]\npattern = (a)\\1\nretentions = 1m:1d\n", ["[x]", "pattern", "invalid regex"]),     # no backrefs
    ("[x]\npattern = .*\nretentions = 1m:1d\npriority = high\n", ["[x]", "priority", "not an integer"]),
    ("[x]\npattern = .*\nretentions = 1m:1d\npriority = 1.5\n", ["[x]", "priority", "not an integer"]),
    ("[x]\npattern = .*\nretentions = 1m:1d\npriority = 9223372036854775808\n",
     ["[x]", "priority", "64-bit"]),
    ("[x]\npattern = .*\nretentions = 1m:1d\nintervals = 1s\n", ["[x]", "intervals", "<unix timestamp>"]),
    ("[x]\npattern = .*\nretentions = 1m:1d\nintervals = 0:0s\n", ["[x]", "intervals", "greater than 0"]),
    ("[x]\npattern = .*\nretentions = 1m:1d\nintervals = 100:1s,50:10s\n", ["intervals", "increase"]),
    ("[x]\npattern = .*\nretentions = 1m:1d\nreorderBuffer = -1\n", ["[x]", "reorderBuffer"]),
    ("[x]\npattern = .*\nretentions = 1m:1d\nreorderBufferAllowUpdate = yes\n",
     ["[x]", "reorderBufferAllowUpdate"]),
    ("[x]\npattern = .*\npattern = a\nretentions = 1m:1d\n", ["line 3", "[x]", "duplicate key"]),
    ("pattern = .*\n", ["line 1", "before any [section]"]),
    ("[x]\npattern = .*\nretentions = 1m:1d\njunk line\n", ["line 4", "expected"]),
    ("[x\npattern = .*\n", ["line 1", "malformed section"]),
    ("[]\npattern = .*\n", ["line 1", "malformed section"]),
    ("[good]\npattern = .*\nretentions = 1m:1d\n\n[bad]\npattern = .*\nretentions = 1m\n",
     ["line 5", "[bad]", "retentions"]),
])
def test_schema_errors_are_precise(text, fragments):
    with pytest.raises(ConfigError) as info:
        parse_schemas(text)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("storage-schemas.conf")
    for fragment in fragments:
        assert fragment in str(info.value)


def test_schema_constructed_directly_is_validated():
    s = Schema("x", "^x", [Retention(10, D)])
    assert s.matches("x.y") and not s.matches("y.x")
    with pytest.raises(ConfigError, match=r"\[bad\] retentions"):
        Schema("bad", ".*", [Retention(60, D), Retention(10, 7 * D)])
    with pytest.raises(ConfigError, match=r"\[bad\] pattern"):
        Schema("bad", "[", [Retention(60, D)])


# --- matching ----------------------------------------------------------------------------------------------------

def test_matches_is_unanchored_search():
    (s,) = parse_schemas("[x]\npattern = cpu\\.\nretentions = 1m:1d\n")
    assert s.matches("servers.cpu.user") and s.matches("cpu.x") and not s.matches("servers.cpux")
    (t,) = parse_schemas("[x]\npattern = ;dc=east(;|$)\nretentions = 1m:1d\n")
    assert t.matches("a.b;dc=east") and t.matches("a.b;dc=east;env=prod") and not t.matches("a.b;dc=eastern")
    (e,) = parse_schemas("[x]\npattern = \\.count$\nretentions = 1m:1d\n")
    assert e.matches("a.b.count") and not e.matches("a.b.count;")   # RE2: $ is end of text only


def test_pathological_pattern_cannot_hang():
    (s,) = parse_schemas("[x]\npattern = ^(a+)+$\nretentions = 1m:1d\n")
    start = time.monotonic()
    assert not s.matches("a" * 50000 + "!")
    assert time.monotonic() - start < 1.0


def test_archive_for_picks_finest_ready_archive_that_covers():
    (s,) = parse_schemas("[x]\npattern = .*\nretentions = 10s:1d,1m:30d,10m:5y\n")
    now = 1_700_000_000
    assert s.archive_for(now - 3600, now) == 0
    assert s.archive_for(now - D, now) == 0
    assert s.archive_for(now - 2 * D, now) == 1
    assert s.archive_for(now - 60 * D, now) == 2
    assert s.archive_for(now - 50 * 365 * D, now) == 2          # nothing covers: the longest
    (r,) = parse_schemas("[x]\npattern = .*\nretentions = 10s:1d:20min:2:true,1m:30d:2h:2:false,"
                         f"10m:5y:6h:2:{now - 40 * D}\n")
    assert r.archive_for(now - 2 * D, now) == 2                 # the 1m rollup is not ready: skipped
    assert r.archive_for(now - 60 * D, now) == 0                # 10m only ready from now-40d; raw is the fallback
    assert r.archive_for(now - 3600, now) == 0


# --- aggregations -----------------------------------------------------------------------------------------------

def test_carbon_relay_ng_aggregations_body():
    rules = parse_aggregations(CRNG_AGGREGATIONS)
    assert [(r.name, r.xfiles_factor, r.methods) for r in rules] == [
        ("min", 0.1, ["min"]), ("max", 0.1, ["max"]), ("sum", 0.0, ["sum"]), ("default_average", 0.5, ["avg"]),
    ]
    assert rules[0].matches("a.b.min") and not rules[0].matches("a.min.b")


def test_aggregation_methods_normalised():
    text = ("[a]\npattern = ^a\naggregationMethod = average\n"
            "[b]\npattern = ^b\nxFilesFactor = 0\naggregationMethod = Sum, average ,last,max,min,avg\n"
            "[c]\npattern = ^c\n")
    a, b, c = parse_aggregations(text)
    assert a.methods == ["avg"] and a.method == "avg" and a.xfiles_factor == 0.5
    assert b.methods == ["sum", "avg", "last", "max", "min"] and b.method == "sum" and b.xfiles_factor == 0.0
    assert c.methods == ["avg"] and c.xfiles_factor == 0.5          # carbon's defaults


def test_aggregation_file_order_and_extra_keys():
    rules = parse_aggregations("[z]\npattern = .*\nfoo = bar\n[a]\npattern = ^a\n")
    assert [r.name for r in rules] == ["z", "a"] and rules[0].extra == {"foo": "bar"}


@pytest.mark.parametrize("text,fragments", [
    ("[x]\nxFilesFactor = 0.5\n", ["[x]", "missing 'pattern'"]),
    ("[x]\npattern = .*\nxFilesFactor = 1.5\n", ["[x]", "xFilesFactor", "between 0 and 1"]),
    ("[x]\npattern = .*\nxFilesFactor = -0.1\n", ["xFilesFactor", "between 0 and 1"]),
    ("[x]\npattern = .*\nxFilesFactor = nan\n", ["xFilesFactor", "between 0 and 1"]),
    ("[x]\npattern = .*\nxFilesFactor = half\n", ["xFilesFactor", "not a number"]),
    ("[x]\npattern = .*\naggregationMethod = median\n", ["[x]", "aggregationMethod", "unknown method 'median'"]),
    ("[x]\npattern = .*\naggregationMethod = avg,\n", ["aggregationMethod", "unknown method ''"]),
    ("[x]\npattern = .*\naggregationMethod =\n", ["aggregationMethod", "unknown method"]),
    ("[x]\npattern = *\n", ["[x]", "pattern", "invalid regex"]),
])
def test_aggregation_errors_are_precise(text, fragments):
    with pytest.raises(ConfigError) as info:
        parse_aggregations(text)
    assert str(info.value).startswith("storage-aggregation.conf")
    for fragment in fragments:
        assert fragment in str(info.value)


def test_aggregation_rule_constructed_directly():
    r = AggregationRule("x", "^x", 0.3, ["average", "max"])
    assert r.methods == ["avg", "max"]
    with pytest.raises(ConfigError, match="xFilesFactor"):
        AggregationRule("x", ".*", 2.0, ["avg"])
    with pytest.raises(ConfigError, match="aggregationMethod"):
        AggregationRule("x", ".*", 0.5, [])


# --- serialisation ----------------------------------------------------------------------------------------------

def test_serialize_round_trip():
    for text in (CRNG_SCHEMAS, CARBON_SCHEMAS, DEFAULT_SCHEMAS_TEXT,
                 "[x]\npattern = .*\nretentions = 1s:1d:10min:2:true\nreorderBuffer = 5\n"):
        schemas = parse_schemas(text)
        again = parse_schemas(serialize_schemas(schemas))
        assert again == schemas
    for text in (CRNG_AGGREGATIONS, DEFAULT_AGGREGATIONS_TEXT, "[x]\npattern = ;a=b\nxFilesFactor = 0.05\n"):
        rules = parse_aggregations(text)
        assert parse_aggregations(serialize_aggregations(rules)) == rules


def test_serialize_format():
    s = Schema("x", "^x\\.", [Retention(10, 21600), Retention(60, 7 * D)], priority=3, intervals="0:1s")
    assert serialize_schemas([s]) == "[x]\npattern = ^x\\.\nretentions = 10s:6h,1m:1w\npriority = 3\nintervals = 0:1s\n"
    r = AggregationRule("y", ".*", 0.05, ["average", "max"])
    assert serialize_aggregations([r]) == "[y]\npattern = .*\nxFilesFactor = 0.05\naggregationMethod = avg,max\n"


# --- StorageConfig --------------------------------------------------------------------------------------------

def test_defaults():
    cfg = StorageConfig()
    s = cfg.schema_for("some.metric")
    assert s.name == "default"
    assert [(r.interval, r.ttl) for r in s.retentions] == [(10, D), (60, 30 * D), (600, 5 * 365 * D)]
    a = cfg.aggregation_for("some.metric")
    assert (a.methods, a.xfiles_factor) == (["avg"], 0.5)
    assert cfg.schemas_text == DEFAULT_SCHEMAS_TEXT or parse_schemas(cfg.schemas_text) == cfg.schemas
    d = StorageConfig.from_texts()
    assert d.schemas_text == DEFAULT_SCHEMAS_TEXT and d.aggregations_text == DEFAULT_AGGREGATIONS_TEXT


def test_from_texts_keeps_raw_text_and_matches_first_rule():
    cfg = StorageConfig.from_texts(CRNG_SCHEMAS, CRNG_AGGREGATIONS)
    assert cfg.schemas_text == CRNG_SCHEMAS and cfg.aggregations_text == CRNG_AGGREGATIONS
    assert cfg.schema_for("important.x").name == "important"
    assert cfg.schema_for("carbon.agents.a.cpu").name == "carbon"
    assert cfg.schema_for("other.thing;dc=east").name == "default"
    assert cfg.aggregation_for("a.b.min").name == "min"
    assert cfg.aggregation_for("a.b.count").method == "sum"
    assert cfg.aggregation_for("a.b.count;env=prod").name == "default_average"  # tags follow the name


def test_no_match_uses_fallbacks():
    cfg = StorageConfig.from_texts("[x]\npattern = ^x\\.\nretentions = 1s:1d\n", "[x]\npattern = ^x\\.\n")
    assert cfg.schema_for("y.z") is FALLBACK_SCHEMA
    assert FALLBACK_SCHEMA.retentions == [Retention(60, 7 * D)]               # carbon's 1m:7d
    assert cfg.aggregation_for("y.z") is FALLBACK_AGGREGATION
    assert (FALLBACK_AGGREGATION.method, FALLBACK_AGGREGATION.xfiles_factor) == ("avg", 0.5)
    empty = StorageConfig.from_texts("", "")
    assert empty.schemas == [] and empty.schema_for("a") is FALLBACK_SCHEMA
    assert empty.schemas_text == ""


def test_lookup_is_cached_and_bounded():
    cfg = StorageConfig.from_texts(CRNG_SCHEMAS, CRNG_AGGREGATIONS, cache_size=4)
    for _ in range(3):
        cfg.schema_for("carbon.a")
    info = cfg.schema_for.cache_info()
    assert info.hits == 2 and info.misses == 1 and info.maxsize == 4
    for i in range(10):
        cfg.schema_for(f"m{i}")
    assert cfg.schema_for.cache_info().currsize == 4


def test_with_schemas_and_aggregations_replace_one_side():
    cfg = StorageConfig.from_texts(CRNG_SCHEMAS, CRNG_AGGREGATIONS)
    assert cfg.schema_for("carbon.x").name == "carbon"
    new = cfg.with_schemas(CARBON_SCHEMAS)
    assert new.schemas_text == CARBON_SCHEMAS and new.aggregations_text == CRNG_AGGREGATIONS
    assert new.schema_for("important.x").name == "default_1min_for_1day"
    assert cfg.schema_for("important.x").name == "important"                # the old config is untouched
    newer = new.with_aggregations(DEFAULT_AGGREGATIONS_TEXT)
    assert newer.aggregation_for("a.min").name == "default" and newer.schemas_text == CARBON_SCHEMAS
    with pytest.raises(ConfigError):
        cfg.with_schemas("[x]\npattern = (\nretentions = 1m:1d\n")
