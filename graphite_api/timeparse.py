"""Graphite time syntax: `from`/`until`/`now` values and interval arguments.

Semantics follow graphite-web 1.1.10 (`parseATTime`, `parseTimeReference`, `parseTimeOffset`; see
reference/graphite-web.md §2), written from that description. Two deliberate differences, both invisible in UTC:

* Day references (`yesterday`, `jan10`, `monday`…) are calendar arithmetic in the requested zone, and a wall
  time is resolved with zoneinfo. graphite-web keeps now's UTC offset while replacing the date (a pytz quirk), so
  `20150101` asked in summer came out an hour off.
* Results are integer unix seconds rather than datetimes.

Offsets are absolute durations added to the reference instant, exactly like graphite-web: `midnight+3h` on a
spring-forward day is 04:00 local time.

Unit `m`: graphite-web rejects a bare `m` (also `mi`, `mo`) because it could be minutes or months. metrictank
takes `m` as minutes, but Grafana rewrites `m` to `min` before it sends anything to a Graphite datasource. So
we follow graphite-web and reject it: a request that works here also works on graphite-web.
"""
from __future__ import annotations

import functools
import math
import re
import time
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["TimeParseError", "parse_time", "parse_offset", "parse_interval"]

MAX_INPUT = 200                      # longer "times" are junk or abuse; refuse before any work
# Python's datetime range (years 1..9999), which is also the range graphite-web can represent.
MIN_TS = -62135596800
MAX_TS = 253402300799
# timedelta's limit: graphite-web raises OverflowError beyond it; we raise TimeParseError.
MAX_OFFSET = 999999999 * 86400

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")   # index = date.weekday()
_TIME_WORDS = (("noon", 12), ("midnight", 0), ("teatime", 16))
_PAIR = re.compile(r"([0-9]*)([A-Za-z]*)")
_DAY = 86400


class TimeParseError(ValueError):
    """A time or interval that cannot be parsed; the message names the text (it becomes an HTTP 400)."""


def _unit_seconds(unit: str, text: str) -> int:
    """Seconds per unit, matched by prefix as graphite-web's getUnitString does (`5hours`, `5h`, `5ho`)."""
    if unit.startswith("s"):
        return 1
    if unit.startswith("min"):
        return 60
    if unit.startswith("h"):
        return 3600
    if unit.startswith("d"):
        return _DAY
    if unit.startswith("w"):
        return 7 * _DAY
    if unit.startswith("mon"):
        return 30 * _DAY
    if unit.startswith("y"):
        return 365 * _DAY
    if not unit:
        raise TimeParseError(f"invalid offset {text!r}: a number needs a unit (s, min, h, d, w, mon, y)")
    raise TimeParseError(f"invalid offset unit {unit!r} in {text!r} (use s, min, h, d, w, mon, y)")


def _check_length(text: str, what: str) -> None:
    if len(text) > MAX_INPUT:
        raise TimeParseError(f"{what} too long ({len(text)} characters, at most {MAX_INPUT}): {text[:40]!r}...")
    if not text.isascii():
        raise TimeParseError(f"invalid {what} {text!r}: non-ASCII characters")


def _offset(text: str, *, allow_empty: bool) -> int:
    if not isinstance(text, str):
        raise TimeParseError(f"invalid offset {text!r}: not a string")
    _check_length(text, "offset")
    body = text.strip()
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    elif body and not body[0].isdigit():
        raise TimeParseError(f"invalid offset {text!r}: must start with +, - or a digit")
    if not body:
        if allow_empty:          # graphite-web: '', '+' and '-' are all a zero offset
            return 0
        raise TimeParseError(f"invalid interval {text!r}: expected a number and a unit such as '5min'")
    total = 0
    pos = 0
    while pos < len(body):
        m = _PAIR.match(body, pos)
        digits, unit = m.group(1), m.group(2)
        if not digits:
            raise TimeParseError(f"invalid offset {text!r}: expected a number at {body[pos:]!r}")
        total += int(digits) * _unit_seconds(unit, text)
        pos = m.end()
    if total > MAX_OFFSET:
        raise TimeParseError(f"offset {text!r} is too large")
    return sign * total


def parse_offset(text: str) -> int:
    """graphite-web `parseTimeOffset`: signed seconds. `-1d12h` is -(1d+12h); a month is 30 days, a year 365.

    `''`, `'+'` and `'-'` are zero. Units are case-sensitive, as in graphite-web (parse_time lowercases first).
    """
    return _offset(text, allow_empty=True)


def parse_interval(text: str) -> int:
    """An interval argument of a function (`'5min'`, `'-1d'`): signed seconds like parse_offset, but at least
    one number+unit is required. Zero (`'0s'`) is returned as 0; callers that need a positive step check it."""
    return _offset(text, allow_empty=False)


@functools.lru_cache(maxsize=64)
def _zone(name: str | None) -> tzinfo:
    """An IANA zone; unknown or empty names fall back to UTC (graphite-web ignores an unknown `tz`)."""
    if not name or name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except Exception:   # ZoneInfoNotFoundError, ValueError on odd keys, IsADirectoryError…
        return timezone.utc


def _digits(s: str) -> bool:
    return s.isdigit()    # input is ASCII-only (checked), so this means [0-9]+


def _number(s: str, ref: str) -> int:
    if not _digits(s):
        raise TimeParseError(f"invalid time reference {ref!r}: expected a number, got {s!r}")
    return int(s)


def _time_of_day(ref: str, raw: str) -> tuple[int, int, str]:
    """Leading `HH:MM[am|pm]`, `Xam`, `XXpm`, `noon`, `midnight`, `teatime`; returns (hour, minute, rest).

    graphite-web quirk kept on purpose: `12am` is 12:00 and `12pm` is 00:00 (pm adds 12 modulo 24).
    """
    hour = minute = 0
    i = ref.find(":")
    if 0 < i < 3:
        hour = _number(ref[:i], raw)
        minute = _number(ref[i + 1:i + 3], raw)
        ref = ref[i + 3:]
        if ref.startswith("am"):
            ref = ref[2:]
        elif ref.startswith("pm"):
            hour = (hour + 12) % 24
            ref = ref[2:]
    i = ref.find("am")
    if 0 < i < 3:
        hour = _number(ref[:i], raw)
        ref = ref[i + 2:]
    i = ref.find("pm")
    if 0 < i < 3:
        hour = (_number(ref[:i], raw) + 12) % 24
        ref = ref[i + 2:]
    for word, word_hour in _TIME_WORDS:
        if ref.startswith(word):
            hour, minute = word_hour, 0
            ref = ref[len(word):]
            break
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise TimeParseError(f"invalid time of day in {raw!r}: {hour}:{minute:02d}")
    return hour, minute, ref


def _day(ref: str, today: date, raw: str) -> date:
    """The day part: today/yesterday/tomorrow, MM/DD/YY[YY], YYYYMMDD, month name + day, weekday name."""
    if ref in ("", "today"):
        return today
    if ref == "yesterday":
        return today - timedelta(days=1)
    if ref == "tomorrow":
        return today + timedelta(days=1)
    if ref.count("/") == 2:
        month, day, year = (_number(part, raw) for part in ref.split("/"))
        if year < 1900:          # two-digit years: 70..99 -> 19xx, 00..69 -> 20xx (graphite-web's rule)
            year += 1900
        if year < 1970:
            year += 100
        return _date(year, month, day, raw)
    if len(ref) == 8 and _digits(ref):
        return _date(int(ref[:4]), int(ref[4:6]), int(ref[6:]), raw)
    if ref[:3] in _MONTHS:
        # The day is the trailing one or two digits: `jan10`, `january8` (so `january800` is day 0, an error).
        if _digits(ref[-2:]):
            day = int(ref[-2:])
        elif _digits(ref[-1:]):
            day = int(ref[-1:])
        else:
            raise TimeParseError(f"invalid time {raw!r}: day of month required after month name")
        return _date(today.year, _MONTHS.index(ref[:3]) + 1, day, raw)
    if ref[:3] in _WEEKDAYS:
        # The most recent such day, today included.
        back = (today.weekday() - _WEEKDAYS.index(ref[:3])) % 7
        return today - timedelta(days=back)
    raise TimeParseError(f"invalid time {raw!r}: unknown day reference {ref!r}")


def _date(year: int, month: int, day: int, raw: str) -> date:
    try:
        return date(year, month, day)
    except (ValueError, OverflowError):
        raise TimeParseError(f"invalid date in {raw!r}: {year:04d}-{month:02d}-{day:02d}") from None


def _reference(ref: str, now: float, zone: tzinfo, raw: str) -> float:
    """graphite-web `parseTimeReference` as a unix time."""
    if ref in ("", "now"):
        return now
    hour, minute, rest = _time_of_day(ref, raw)
    today = datetime.fromtimestamp(now, zone).date()
    day = _day(rest, today, raw)
    # zoneinfo resolves a wall time in a DST gap or fold with fold=0 (the earlier offset).
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()


def parse_time(text: str, now: float | None = None, tz: str | None = None) -> int:
    """graphite-web `parseATTime`: a `from`/`until`/`now` value to integer unix seconds.

    Accepts unix timestamps, `now`, `-1h`, `now-5min`, `HH:MM_YYYYMMDD`, `YYYYMMDD`, `MM/DD/YY[YY]`,
    `today`/`yesterday`/`tomorrow`, `noon`/`midnight`/`teatime`, `6pm_today`, `midnight_tomorrow+3h`, `jan10`,
    weekday names. `now` defaults to the current time, `tz` (IANA name) to UTC; an unknown zone is UTC.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        raise TimeParseError(f"invalid time {text!r}: not a string")
    _check_length(text, "time")
    if now is None:
        now = time.time()
    elif not math.isfinite(now) or not MIN_TS <= now <= MAX_TS:
        raise TimeParseError(f"invalid 'now' value {now!r}")
    zone = _zone(tz)
    s = text.strip().lower().replace("_", "").replace(",", "").replace(" ", "")
    try:
        if _digits(s) and not (len(s) == 8 and int(s[:4]) > 1900 and int(s[4:6]) < 13 and int(s[6:]) < 32):
            result = int(s)          # a unix timestamp (8 digits that look like YYYYMMDD are a date instead)
        else:
            if "+" in s:
                ref, sep, offset = s.partition("+")
            else:
                ref, sep, offset = s.partition("-")
            result = math.floor(_reference(ref, now, zone, text)) + parse_offset(sep + offset)
    except TimeParseError as exc:
        if repr(text) in str(exc):
            raise
        raise TimeParseError(f"invalid time {text!r}: {exc}") from None
    except (ValueError, OverflowError, OSError) as exc:
        raise TimeParseError(f"invalid time {text!r}: {exc}") from None
    if not MIN_TS <= result <= MAX_TS:
        raise TimeParseError(f"time {text!r} is out of range")
    return result
