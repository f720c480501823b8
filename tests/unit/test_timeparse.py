"""graphite-web 1.1.10 time syntax (reference/graphite-web.md §2), incl. cases from its test_attime.py."""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from graphite_api.timeparse import TimeParseError, parse_interval, parse_offset, parse_time

NOW = 1700000000          # Tuesday 2023-11-14 22:13:20 UTC
UTC = timezone.utc
LA = "America/Los_Angeles"


def ts(*args, tz=UTC):
    return int(datetime(*args, tzinfo=ZoneInfo(tz) if isinstance(tz, str) else tz).timestamp())


# --- golden values, now = 1700000000 UTC ---------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("now", NOW),
    ("", NOW),
    ("NOW", NOW),
    ("-1h", NOW - 3600),
    ("now-5min", NOW - 300),
    ("now-6h", NOW - 6 * 3600),
    ("now+1d", NOW + 86400),
    ("-1d12h", NOW - 36 * 3600),
    ("-7d", NOW - 7 * 86400),
    ("-1w", NOW - 7 * 86400),
    ("-1mon", NOW - 30 * 86400),
    ("-2y", NOW - 730 * 86400),
    ("-10sec", NOW - 10),
    ("-", NOW),
    ("+", NOW),
    ("1700000000", 1700000000),
    ("0", 0),
    ("1", 1),
    ("12345678", 12345678),                       # 8 digits but not a plausible YYYYMMDD: a timestamp
    ("19991332", 19991332),                       # month 13: a timestamp
    ("20150308", ts(2015, 3, 8)),
    ("12:00_20150308", ts(2015, 3, 8, 12)),
    ("9:0020150308", ts(2015, 3, 8, 9)),
    ("12:00 20150308", ts(2015, 3, 8, 12)),       # Grafana/metrictank style with a space
    ("02/25/15", ts(2015, 2, 25)),
    ("02/25/2015", ts(2015, 2, 25)),
    ("01/02/70", ts(1970, 1, 2)),
    ("01/02/69", ts(2069, 1, 2)),                 # graphite-web: two-digit years below 70 are 20xx
    ("today", ts(2023, 11, 14)),
    ("yesterday", ts(2023, 11, 13)),
    ("tomorrow", ts(2023, 11, 15)),
    ("noon", ts(2023, 11, 14, 12)),
    ("midnight", ts(2023, 11, 14)),
    ("teatime", ts(2023, 11, 14, 16)),
    ("6pm_today", ts(2023, 11, 14, 18)),
    ("6pm", ts(2023, 11, 14, 18)),
    ("8am", ts(2023, 11, 14, 8)),
    ("10pm", ts(2023, 11, 14, 22)),
    ("8:50", ts(2023, 11, 14, 8, 50)),
    ("8:50am", ts(2023, 11, 14, 8, 50)),
    ("8:50pm", ts(2023, 11, 14, 20, 50)),
    ("12pm", ts(2023, 11, 14, 0)),                # graphite-web quirk: pm adds 12 modulo 24
    ("12am", ts(2023, 11, 14, 12)),               # ... and am keeps the hour
    ("midnight_tomorrow", ts(2023, 11, 15)),
    ("midnight_tomorrow+3h", ts(2023, 11, 15, 3)),
    ("midnight+1h", ts(2023, 11, 14, 1)),
    ("noon yesterday", ts(2023, 11, 13, 12)),     # '+' URL-decoded to a space
    ("noon_yesterday-1h", ts(2023, 11, 13, 11)),
    ("noon,yesterday", ts(2023, 11, 13, 12)),
    ("yesterday+6h", ts(2023, 11, 13, 6)),
    ("jan10", ts(2023, 1, 10)),
    ("january8", ts(2023, 1, 8)),
    ("january10", ts(2023, 1, 10)),
    ("dec25", ts(2023, 12, 25)),                  # month names stay in the current year, even in the future
    ("4pm_dec25", ts(2023, 12, 25, 16)),
    ("monday", ts(2023, 11, 13)),
    ("tuesday", ts(2023, 11, 14)),                # today counts as the most recent Tuesday
    ("wednesday", ts(2023, 11, 8)),
    ("sun", ts(2023, 11, 12)),
    ("noon_friday", ts(2023, 11, 10, 12)),
    ("20231114-1d", ts(2023, 11, 13)),
    ("  now-1h  ", NOW - 3600),
    ("now-", NOW),                                # a bare sign is a zero offset
    ("now-5 min", NOW - 300),                     # spaces are removed before parsing
    ("-1H", NOW - 3600),                          # the whole text is lowercased
    ("NOON_Yesterday", ts(2023, 11, 13, 12)),
])
def test_golden(text, expected):
    assert parse_time(text, now=NOW) == expected


def test_result_is_int_and_fractional_now_is_floored():
    value = parse_time("now-5min", now=NOW + 0.75)
    assert value == NOW - 300 and type(value) is int
    assert parse_time("now", now=NOW + 0.75) == NOW


def test_int_input_is_a_timestamp():
    assert parse_time(1600000000, now=NOW) == 1600000000


def test_default_now_is_current_time():
    import time
    before = int(time.time())
    assert before - 1 <= parse_time("now") <= int(time.time()) + 1
    assert abs(parse_time("-1h") - (int(time.time()) - 3600)) <= 2


# --- graphite-web test_attime.py, translated to unix seconds -------------------------------------------------

GW_NOW = ts(2015, 1, 1, 11)          # parseTimeReferenceTest mocks 2015-01-01 11:00 UTC (a Thursday)


@pytest.mark.parametrize("text,expected", [
    ("", GW_NOW), ("now", GW_NOW),
    ("8:50", ts(2015, 1, 1, 8, 50)), ("8:50am", ts(2015, 1, 1, 8, 50)), ("8:50pm", ts(2015, 1, 1, 20, 50)),
    ("8am", ts(2015, 1, 1, 8)), ("10pm", ts(2015, 1, 1, 22)),
    ("noon", ts(2015, 1, 1, 12)), ("midnight", ts(2015, 1, 1)), ("teatime", ts(2015, 1, 1, 16)),
    ("yesterday", ts(2014, 12, 31)), ("today", ts(2015, 1, 1)), ("tomorrow", ts(2015, 1, 2)),
    ("02/25/15", ts(2015, 2, 25)), ("02/25/2015", ts(2015, 2, 25)), ("20140606", ts(2014, 6, 6)),
    ("january8", ts(2015, 1, 8)), ("january10", ts(2015, 1, 10)), ("monday", ts(2014, 12, 29)),
])
def test_graphite_web_time_reference(text, expected):
    assert parse_time(text, now=GW_NOW) == expected


@pytest.mark.parametrize("text", ["random", ":", "january800", "january", "noon+yesterday"])
def test_graphite_web_reference_errors(text):
    with pytest.raises(TimeParseError):
        parse_time(text, now=GW_NOW)


def test_graphite_web_bug_551771():
    now = ts(2010, 3, 30)
    assert parse_time("02/23/10", now=now) == ts(2010, 2, 23)
    assert parse_time("20100223", now=now) == ts(2010, 2, 23)


@pytest.mark.parametrize("now,text,expected", [
    (ts(2016, 2, 29), "-1year", ts(2015, 3, 1)),
    (ts(2016, 2, 29), "-4years", ts(2012, 3, 1)),
    (ts(2016, 2, 29), "-1month", ts(2016, 1, 30)),
    (ts(2013, 2, 28), "-1year", ts(2012, 2, 29)),
    (ts(2013, 2, 28), "-4years", ts(2009, 3, 1)),
    (ts(2013, 2, 28), "-1month", ts(2013, 1, 29)),
])
def test_graphite_web_leap_years(now, text, expected):
    assert parse_time(text, now=now) == expected


class TestTimezones:
    """ATTimeTimezoneTests: now = 2015-03-08 12:00 America/Los_Angeles, the day DST starts (02:00 -> 03:00)."""
    now = ts(2015, 3, 8, 12, tz=LA)

    def test_absolute_time_respects_tz(self):
        assert parse_time("12:0020150308", now=self.now, tz=LA) == ts(2015, 3, 8, 12, tz=LA)
        assert parse_time("9:0020150308", now=self.now, tz=LA) == ts(2015, 3, 8, 9, tz=LA)
        assert parse_time("20150110", now=self.now, tz=LA) == ts(2015, 1, 10, tz=LA)
        assert parse_time("12:0020150308", now=self.now) == ts(2015, 3, 8, 12)    # default UTC

    def test_midnight_and_relative_days(self):
        assert parse_time("midnight", now=self.now, tz=LA) == ts(2015, 3, 8, tz=LA)
        assert parse_time("midnight+1h", now=self.now, tz=LA) == ts(2015, 3, 8, 1, tz=LA)
        assert parse_time("midnight_tomorrow", now=self.now, tz=LA) == ts(2015, 3, 9, tz=LA)
        assert parse_time("midnight_tomorrow+3h", now=self.now, tz=LA) == ts(2015, 3, 9, 3, tz=LA)

    def test_offsets_are_absolute_across_dst(self):
        # graphite-web test_should_handle_dst_boundary: three real hours after midnight is 04:00 PDT.
        assert parse_time("midnight+3h", now=self.now, tz=LA) == ts(2015, 3, 8, 4, tz=LA)
        assert parse_time("midnight+3h", now=self.now, tz=LA) - ts(2015, 3, 8, tz=LA) == 3 * 3600

    def test_now_and_relative_ignore_tz(self):
        assert parse_time("now", now=self.now, tz=LA) == self.now
        assert parse_time("-1h", now=self.now, tz=LA) == self.now - 3600
        assert parse_time("1425816000", now=self.now, tz=LA) == 1425816000

    def test_today_is_the_local_day(self):
        # 2023-11-14 22:13 UTC is already the 15th in Tokyo and still the 14th in Los Angeles.
        assert parse_time("today", now=NOW, tz="Asia/Tokyo") == ts(2023, 11, 15, tz="Asia/Tokyo")
        assert parse_time("today", now=NOW, tz=LA) == ts(2023, 11, 14, tz=LA)
        assert parse_time("wednesday", now=NOW, tz="Asia/Tokyo") == ts(2023, 11, 15, tz="Asia/Tokyo")

    def test_winter_date_asked_in_summer_uses_winter_offset(self):
        summer = ts(2023, 7, 1, 12)
        assert parse_time("20230115", now=summer, tz="Europe/Berlin") == ts(2023, 1, 15, tz="Europe/Berlin")
        assert parse_time("20230115", now=summer, tz="Europe/Berlin") == ts(2023, 1, 14, 23)

    @pytest.mark.parametrize("tz", ["Not/AZone", "", None, "UTC", "../../etc/passwd", "utc"])
    def test_unknown_or_empty_zone_is_utc(self, tz):
        assert parse_time("20150308", now=NOW, tz=tz) == ts(2015, 3, 8)


# --- errors ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "-5m", "now-5m", "-1mo", "-1mi", "-10", "now-h", "now-1h-1h", "now+-1h", "now--1h",
    "random", "nowish", "yesterday+now", "noon+yesterday", ":", "25:00", "12:60", "ab:cd", "9:5x",
    "xam", "13/45/2015", "02/30/2015", "1/2", "1/2/3/4", "jan", "january", "janx", "feb30", "january800",
    "2015-03-08", "1.5", "1e9", "now-1.5h", "now-½h", "٣٣٣",
    "x" * 201, "9" * 30, "now-99999999999999999999y", "now+9999999999d", "now-1000000000000s",
    "tomorrow+8000y",
])
def test_bad_input_raises_time_parse_error_naming_it(text):
    with pytest.raises(TimeParseError) as info:
        parse_time(text, now=NOW)
    assert isinstance(info.value, ValueError)
    shown = str(info.value)
    assert (repr(text.strip().lower()) in shown or text.strip()[:20] in shown or repr(text) in shown
            or "too long" in shown)


def test_error_message_names_the_text():
    with pytest.raises(TimeParseError, match="'now-5m'|'-5m'"):
        parse_time("now-5m", now=NOW)
    with pytest.raises(TimeParseError, match="bogus"):
        parse_time("bogus", now=NOW)
    with pytest.raises(TimeParseError, match="too long"):
        parse_time("now-" + "1" * 300 + "s", now=NOW)


@pytest.mark.parametrize("bad", [None, 1.5, b"now", ["now"]])
def test_non_string_input(bad):
    with pytest.raises(TimeParseError):
        parse_time(bad, now=NOW)


@pytest.mark.parametrize("now", [float("nan"), float("inf"), 1e30])
def test_absurd_now(now):
    with pytest.raises(TimeParseError):
        parse_time("now", now=now)


# --- parse_offset (parseTimeOffset) -------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("", 0), ("+", 0), ("-", 0),
    ("10days", 864000), ("0days", 0), ("-10days", -864000),
    ("5seconds", 5), ("5minutes", 300), ("5hours", 18000), ("5weeks", 5 * 604800),
    ("1month", 30 * 86400), ("2months", 60 * 86400), ("12months", 360 * 86400),
    ("1year", 365 * 86400), ("2years", 730 * 86400),
    ("-1d12h", -(86400 + 12 * 3600)), ("+1h30min", 5400), ("1h30min", 5400),
    ("-5min", -300), ("-5minutes", -300), ("-3h", -10800), ("-3hours", -10800), ("-1d", -86400),
    ("-1days", -86400), ("-1w", -604800), ("-1mon", -30 * 86400), ("-2y", -730 * 86400),
    ("-10s", -10), ("-10sec", -10), (" -1h ", -3600),
])
def test_parse_offset(text, expected):
    assert parse_offset(text) == expected


@pytest.mark.parametrize("unit,seconds", [
    *[(u, 1) for u in ("s", "se", "sec", "second", "seconds")],
    *[(u, 60) for u in ("min", "minute", "minutes")],
    *[(u, 3600) for u in ("h", "ho", "hour", "hours")],
    *[(u, 86400) for u in ("d", "da", "day", "days")],
    *[(u, 604800) for u in ("w", "we", "week", "weeks")],
    *[(u, 30 * 86400) for u in ("mon", "month", "months")],
    *[(u, 365 * 86400) for u in ("y", "ye", "year", "years")],
])
def test_units_by_prefix(unit, seconds):
    assert parse_offset("2" + unit) == 2 * seconds


@pytest.mark.parametrize("text", [
    "1m", "1mi", "1mo", "5M", "1H", "10", "-10", "Something", "month", "h", "-h", "1h2", "1.5h", "5 min",
    "1h-1h", "++1h", "*1h", "1ms", "9" * 250 + "s", "999999999999999d", "1x",
])
def test_parse_offset_errors(text):
    with pytest.raises(TimeParseError):
        parse_offset(text)


def test_parse_offset_m_message():
    with pytest.raises(TimeParseError, match="invalid offset unit 'm'"):
        parse_offset("-5m")


# --- parse_interval -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("5min", 300), ("1h", 3600), ("1d", 86400), ("-1d", -86400), ("+2w", 1209600), ("30s", 30),
    ("1hour", 3600), ("0s", 0), ("1h30min", 5400), ("1y", 365 * 86400),
])
def test_parse_interval(text, expected):
    assert parse_interval(text) == expected


@pytest.mark.parametrize("text", ["", " ", "+", "-", "5m", "5", "min", "abc", "5min!", None, 5])
def test_parse_interval_errors(text):
    with pytest.raises(TimeParseError):
        parse_interval(text)
