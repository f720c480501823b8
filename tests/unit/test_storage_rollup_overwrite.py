"""Rollup buckets stay right when a sample already flushed to SQL is written again (the later write wins, as in
the raw data), while new and late (but distinct) samples keep being added piece by piece."""

import numpy as np
import pytest
from sqlalchemy import func, select

from storage import sql
from storage.engine import SCHEMAS, EngineOptions, Storage
from tests.conftest import empty_postgres_url

T0 = 1_700_000_000_000
MIN = 60_000
START = T0 // 86_400_000 * 86_400_000      # a day boundary: one rollup block for everything below
SCHEMA = "[all]\npattern = .*\nretentions = 10s:1d,60s:30d,300s:1y\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    if request.param == "sqlite":
        return None
    return empty_postgres_url()


def open_storage(path, url=None, schema=SCHEMA):
    st = Storage(str(path), url, EngineOptions(flush_interval=3600))
    st.set_config_text("anonymous", SCHEMAS, schema)
    return st


def put(st, name, offsets_s, values):
    offsets_s = np.atleast_1d(offsets_s)
    st.write("anonymous", [name] * len(offsets_s), START + 1000 * np.asarray(offsets_s, np.int64),
             np.asarray(values, dtype=float) * np.ones(len(offsets_s)))


def bucket(st, name, interval=60, bucket_end_s=60):
    sid = st.resolve("anonymous", [name])
    ts, cols = st.read_rollup(sid, interval, START, START + 86_400_000)[0]
    at = START + 1000 * bucket_end_s
    assert at in ts.tolist(), (ts, at)
    i = ts.tolist().index(at)
    return [c[i].item() for c in cols]      # sum, cnt, min, max, last


def rollup_rows(st):
    with st.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(sql.rollups)).scalar()


def test_overwrite_after_flush_replaces_the_bucket(tmp_path, db_url):
    st = open_storage(tmp_path, db_url)
    put(st, "ow", [10, 20, 30, 40, 50, 60], [1, 2, 3, 4, 5, 6])
    st.flush(everything=True)
    assert bucket(st, "ow") == [21, 6, 1, 6, 6]
    put(st, "ow", 20, 10)                          # the same timestamp again: 2 -> 10
    st.flush(everything=True)
    sid = st.resolve("anonymous", ["ow"])
    assert st.read_raw(sid, START + 20_000, START + 20_000)[0][1].tolist() == [10.0]
    assert bucket(st, "ow") == [29, 6, 1, 10, 6]   # not 39 over 7 samples
    assert bucket(st, "ow", 300, 300) == [29, 6, 1, 10, 6]    # every archive
    assert st.stats["rollup_blocks_rewritten"] == 2
    # the max leaving the bucket: only a recomputation from the raw data gets this right
    put(st, "ow", 20, 0)
    st.flush(everything=True)
    assert bucket(st, "ow") == [19, 6, 0, 6, 6]
    st.compact(now_ms=START + 3 * 86_400_000)      # folding pieces keeps it
    assert bucket(st, "ow") == [19, 6, 0, 6, 6]
    st.close()
    st = open_storage(tmp_path, db_url)             # and so does a restart
    assert bucket(st, "ow") == [19, 6, 0, 6, 6]
    put(st, "ow", 60, 100)                          # an overwrite after a restart (sid_flushed loaded from SQL)
    st.flush(everything=True)
    assert bucket(st, "ow") == [113, 6, 0, 100, 100]
    st.close()


def test_late_distinct_sample_is_still_added(tmp_path, db_url):
    st = open_storage(tmp_path, db_url)
    put(st, "late", [10, 20, 40, 50, 60, 70], 1)
    st.flush(everything=True)
    put(st, "late", 30, 5)                         # late, but a new timestamp
    st.flush(everything=True)
    assert bucket(st, "late") == [10, 6, 1, 5, 5]
    assert bucket(st, "late", 60, 120) == [1, 1, 1, 1, 1]
    assert st.stats["rollup_blocks_rewritten"] == 0
    assert rollup_rows(st) == 4                     # added as pieces (2 flushes x 2 archives), none rewritten
    put(st, "late", 130, 7)                         # and the common case: newer than anything flushed
    st.flush(everything=True)
    assert bucket(st, "late", 60, 180) == [7, 1, 7, 7, 7]
    assert st.stats["rollup_blocks_rewritten"] == 0
    st.close()


def test_overwrite_of_a_bucket_spread_over_flushes_and_compacted(tmp_path):
    st = open_storage(tmp_path)
    for off in (10, 20, 30):                       # one flush per sample: three pieces of the same bucket
        put(st, "sp", off, off)
        st.flush(everything=True)
    st.compact(now_ms=START + 10 * 86_400_000)     # raw chunks and rollup pieces folded
    rows_before = rollup_rows(st)
    put(st, "sp", [40, 50], [40, 50])
    st.flush(everything=True)
    put(st, "sp", [10, 50], [1, 5])                # overwrites of a compacted and of a fresh sample, one flush
    put(st, "other", 10, 3)                        # another series in the same flush: just added
    st.flush(everything=True)
    assert bucket(st, "sp") == [1 + 20 + 30 + 40 + 5, 5, 1, 40, 5]
    assert bucket(st, "other") == [3, 1, 3, 3, 3]
    # the touched rollup blocks of "sp" were folded into one row per archive
    assert rollup_rows(st) == rows_before + 2
    st.compact(now_ms=START + 3 * 86_400_000)
    assert bucket(st, "sp") == [96, 5, 1, 40, 5]
    st.close()


def test_overwrite_with_nan_uncounts_the_sample(tmp_path):
    st = open_storage(tmp_path)
    put(st, "nan", [10, 20], [1, 2])
    st.flush(everything=True)
    put(st, "nan", 20, np.nan)                     # e.g. a stale marker replacing a value
    st.flush(everything=True)
    assert bucket(st, "nan") == [1, 1, 1, 1, 1]
    st.close()


def test_overwrite_of_expired_raw_data_falls_back_to_adding(tmp_path):
    st = open_storage(tmp_path, schema="[all]\npattern = .*\nretentions = 10s:1h,60s:30d\n")
    put(st, "exp", [10, 20], [1, 2])
    st.flush(everything=True)
    st.apply_retention(now_ms=START + 3 * 3_600_000)   # the raw chunk is gone, the rollup stays
    sid = st.resolve("anonymous", ["exp"])
    assert len(st.read_raw(sid, START, START + 60_000)[0][0]) == 0
    put(st, "exp", 20, 5)
    st.flush(everything=True)
    assert bucket(st, "exp") == [8, 3, 1, 5, 5]        # nothing left to recompute from: added as before
    st.close()


def test_partly_expired_bucket_is_not_recomputed(tmp_path):
    # raw data of the bucket partly gone (the stored count says more samples than the raw chunks hold)
    st = open_storage(tmp_path, schema="[all]\npattern = .*\nretentions = 10s:1h,1h:30d\n")
    put(st, "part", 10, 1)
    st.flush(everything=True)
    put(st, "part", 3590, 2)
    st.flush(everything=True)
    with st.db.begin() as conn:                         # drop the older raw chunk only
        conn.execute(sql.chunks.delete().where(sql.chunks.c.max_ts == START + 10_000))
    st._changed(st.resolve("anonymous", ["part"]))
    put(st, "part", 3590, 4)
    st.flush(everything=True)
    assert bucket(st, "part", 3600, 3600) == [7, 3, 1, 4, 4]
    st.close()


def test_flush_of_nan_samples_only(tmp_path):
    st = open_storage(tmp_path)
    put(st, "stale", 10, np.nan)                   # a series with archives, nothing but a stale marker
    assert st.flush(everything=True) == 1          # (used to fail: no bucket to write)
    sid = st.resolve("anonymous", ["stale"])
    assert np.isnan(st.read_raw(sid, START, START + 60_000)[0][1]).all()
    st.close()


def test_reads_before_the_flush_already_count_an_overwrite_once(tmp_path, db_url):
    """Between the rewrite and the flush that stores it, a rollup read recomputes the touched buckets."""
    st = open_storage(tmp_path, db_url)
    put(st, "rd", [10, 20, 30, 40, 50, 60], [1, 2, 3, 4, 5, 6])
    put(st, "rd.other", [10, 20], [1, 2])
    st.flush(everything=True)
    put(st, "rd", 20, 10)                           # overwrite, still in the head
    put(st, "rd", 30, 0)                            # and one taking the min away
    put(st, "rd", 70, 7)                            # a new sample in the next bucket
    assert bucket(st, "rd") == [26, 6, 0, 10, 6]
    assert bucket(st, "rd", 300, 300) == [33, 7, 0, 10, 7]
    assert bucket(st, "rd", 60, 120) == [7, 1, 7, 7, 7]
    assert bucket(st, "rd.other") == [3, 2, 1, 2, 2]
    before = [bucket(st, "rd"), bucket(st, "rd", 300, 300)]
    st.flush(everything=True)
    assert [bucket(st, "rd"), bucket(st, "rd", 300, 300)] == before
    put(st, "rd", 40, np.nan)                       # a NaN overwrite uncounts the sample before the flush too
    assert bucket(st, "rd") == [22, 5, 0, 10, 6]
    st.close()


def test_reads_before_the_flush_keep_late_and_expired_samples_added(tmp_path):
    st = open_storage(tmp_path, schema="[all]\npattern = .*\nretentions = 10s:1h,60s:30d\n")
    put(st, "lt", [10, 20, 40], 1)
    put(st, "ex", [10, 20], [1, 2])
    st.flush(everything=True)
    put(st, "lt", 30, 5)                            # late but new: added
    assert bucket(st, "lt") == [8, 4, 1, 5, 5]
    st.apply_retention(now_ms=START + 3 * 3_600_000)
    put(st, "ex", 20, 5)                            # raw data expired: nothing to recompute from, added
    assert bucket(st, "ex") == [8, 3, 1, 5, 5]
    st.close()


def test_sample_in_flush_and_rewritten_in_the_head_counts_once(tmp_path):
    st = open_storage(tmp_path)
    put(st, "fh", [10, 20], [1, 2])
    sid = st.resolve("anonymous", ["fh"])
    st.flushing.append(*st.head.take_before(None))  # as during a flush: samples on their way to SQL
    put(st, "fh", 20, 9)                            # the same timestamp written again meanwhile
    assert bucket(st, "fh") == [10, 2, 1, 9, 9]
    assert st.read_raw(sid, START, START + 60_000)[0][1].tolist() == [1.0, 9.0]
    st.close()
