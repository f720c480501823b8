import os
import threading
import time

import numpy as np

from storage import wal as wal_module

from storage.head import Head
from storage.wal import WAL

STALE = np.frombuffer(np.uint64(0x7FF0000000000002).tobytes(), dtype=np.float64)[0]


def batch(sids, ts, vals):
    return np.array(sids, np.int64), np.array(ts, np.int64), np.array(vals, np.float64)


def test_wal_replay_preserves_nan_bits(tmp_path):
    wal = WAL(str(tmp_path))
    wal.append(*batch([1, 2], [1000, 2000], [1.5, STALE]))
    wal.append(*batch([3], [3000], [-0.0]))
    wal.close()
    got = list(WAL(str(tmp_path)).replay())
    assert [b[0].tolist() for b in got] == [[1, 2], [3]]
    assert got[0][2][1].tobytes() == np.float64(STALE).tobytes()
    assert np.signbit(got[1][2][0])


def test_wal_torn_tail_is_cut_and_appends_continue(tmp_path):
    wal = WAL(str(tmp_path))
    wal.append(*batch([1], [1000], [1.0]))
    wal.close()
    seg = [f for f in os.listdir(tmp_path) if f.endswith(".wal")][0]
    with open(tmp_path / seg, "ab") as f:
        f.write(b"\x10\x00\x00\x00garbage")   # a record header whose body never made it to disk
    wal = WAL(str(tmp_path))
    assert [b[0].tolist() for b in wal.replay()] == [[1]]
    wal.append(*batch([2], [2000], [2.0]))
    wal.close()
    assert [b[0].tolist() for b in WAL(str(tmp_path)).replay()] == [[1], [2]]


def test_wal_corrupt_record_stops_replay_of_that_segment(tmp_path):
    wal = WAL(str(tmp_path))
    wal.append(*batch([1], [1000], [1.0]))
    wal.append(*batch([2], [2000], [2.0]))
    wal.close()
    seg = tmp_path / [f for f in os.listdir(tmp_path) if f.endswith(".wal")][0]
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF
    seg.write_bytes(bytes(data))
    assert [b[0].tolist() for b in WAL(str(tmp_path)).replay()] == [[1]]


def test_wal_checkpoint_drops_old_segments(tmp_path):
    wal = WAL(str(tmp_path))
    wal.append(*batch([1], [1000], [1.0]))
    seq = wal.rotate()
    wal.append(*batch([2], [2000], [2.0]))
    wal.checkpoint([batch([9], [9000], [9.0])], before_seq=seq)
    wal.close()
    assert [b[0].tolist() for b in WAL(str(tmp_path)).replay()] == [[9], [2]]


def test_head_last_write_wins_and_sorted_reads():
    head = Head()
    head.append(*batch([2, 1, 1], [2000, 3000, 1000], [20, 30, 10]))
    head.append(*batch([1], [3000], [31]))
    (ts1, v1), (ts2, v2), (ts3, v3) = head.read(np.array([1, 2, 3]), 0, 10_000)
    assert ts1.tolist() == [1000, 3000] and v1.tolist() == [10, 31]
    assert ts2.tolist() == [2000] and v2.tolist() == [20]
    assert len(ts3) == 0
    assert head.read(np.array([1]), 1001, 3000)[0][0].tolist() == [3000]


def test_head_take_before_and_restore():
    head = Head()
    head.append(*batch([1, 1, 2], [1000, 5000, 2000], [1, 5, 2]))
    sids, ts, vals = head.take_before(3000)
    assert sids.tolist() == [1, 2] and ts.tolist() == [1000, 2000]
    assert len(head) == 1
    head.append(*batch([1], [1000], [100]))     # a newer write of a taken sample
    head.restore(sids, ts, vals)
    (ts1, v1), = head.read(np.array([1]), 0, 10_000)
    assert ts1.tolist() == [1000, 5000] and v1.tolist() == [100, 5]


def test_wal_group_commit_shares_fsyncs_between_concurrent_writers(tmp_path, monkeypatch):
    synced_bytes = []
    real_fsync = os.fsync

    def slow_fsync(fd):                       # a slow disk: writers pile up behind one fsync
        time.sleep(0.01)
        synced_bytes.append(os.fstat(fd).st_size)
        real_fsync(fd)
    monkeypatch.setattr(wal_module.os, "fsync", slow_fsync)
    wal = WAL(str(tmp_path))
    done = []
    all_wrote = threading.Barrier(8)

    def writer(k):
        for i in range(10):
            ticket = wal.write(*batch([k], [i], [float(i)]))
            all_wrote.wait()                  # every writer of this round has written before anyone syncs
            wal.sync(ticket)
            # acknowledged: its record is inside what the last fsync covered
            assert wal._synced >= ticket
            done.append((k, i))
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wal.close()
    assert len(done) == 80
    assert len(synced_bytes) <= 10           # 80 writes: one fsync per round covers all eight
    got = [(int(s[0]), int(t[0])) for s, t, _ in WAL(str(tmp_path)).replay()]
    assert sorted(got) == sorted(done)


def test_wal_rotation_syncs_records_written_before_it(tmp_path, monkeypatch):
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(wal_module.os, "fsync", lambda fd: calls.append(fd) or real_fsync(fd))
    wal = WAL(str(tmp_path))
    ticket = wal.write(*batch([1], [1000], [1.0]))
    wal.rotate()                              # a flush rotates before the writer's sync runs
    assert len(calls) == 1
    wal.sync(ticket)                          # already durable: no second fsync, no stale descriptor
    assert len(calls) == 1
    wal.close()
    assert [b[0].tolist() for b in WAL(str(tmp_path)).replay()] == [[1]]


def test_wal_without_fsync_never_syncs(tmp_path, monkeypatch):
    monkeypatch.setattr(wal_module.os, "fsync", lambda fd: (_ for _ in ()).throw(AssertionError("fsync")))
    wal = WAL(str(tmp_path), fsync=False)
    wal.append(*batch([1], [1000], [1.0]))
    wal.rotate()
    wal.close()
