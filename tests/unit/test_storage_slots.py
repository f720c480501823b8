"""storage.slots: raw pieces into grid slots, the later write winning, regular and irregular pieces."""
import numpy as np

from storage.slots import scatter

STEP = 10_000
FIRST = 1_700_000_000_000


def piece(row, ts, vals):
    return row, np.asarray(ts, np.int64), np.asarray(vals, float)


def reference(pieces, rows, n):
    """Slot by slot, in write order: what scatter must produce."""
    out = np.full((rows, n), np.nan)
    for row, ts, vals in pieces:
        for t, v in zip(ts.tolist(), vals.tolist()):
            out[row, -((FIRST - t) // STEP)] = v
    return out


def check(pieces, rows=3, n=12):
    matrix = np.full((rows, n), np.nan)
    scatter(matrix, pieces, FIRST, STEP)
    np.testing.assert_array_equal(matrix, reference(pieces, rows, n))
    return matrix


def test_regular_pieces_are_placed_at_their_slots():
    m = check([piece(0, FIRST + STEP * np.arange(4), [1, 2, 3, 4]),
               piece(2, FIRST + STEP * np.arange(5, 12), np.arange(7))])
    assert m[0, :4].tolist() == [1, 2, 3, 4] and np.isnan(m[1]).all()


def test_gaps_and_off_grid_samples_quantise_forward():
    m = check([piece(1, [FIRST, FIRST + 2 * STEP, FIRST + 5 * STEP - 3], [1, 2, 3]),
               piece(0, FIRST + STEP * np.arange(3), [7, 8, 9])])
    assert m[1, 5] == 3 and np.isnan(m[1, 1])


def test_later_write_wins_when_pieces_overlap():
    older = piece(0, FIRST + STEP * np.arange(6), np.arange(6))            # regular
    newer = piece(0, [FIRST + 2 * STEP, FIRST + 4 * STEP], [20, 40])       # irregular, written later
    m = check([older, newer])
    assert m[0, :6].tolist() == [0, 1, 20, 3, 40, 5]
    # and the other way round: a regular piece written after an irregular one
    m = check([newer, older])
    assert m[0, :6].tolist() == [0, 1, 2, 3, 4, 5]


def test_two_samples_in_one_slot_keep_the_later():
    m = check([piece(0, [FIRST + STEP - 5000, FIRST + STEP], [1, 2])])
    assert m[0, 1] == 2


def test_random_pieces_match_the_slot_by_slot_reference():
    rng = np.random.default_rng(3)
    for _ in range(50):
        pieces = []
        for _ in range(rng.integers(1, 8)):
            row = int(rng.integers(0, 3))
            if rng.random() < 0.5:
                a = int(rng.integers(0, 10))
                ts = FIRST + STEP * np.arange(a, int(rng.integers(a + 1, 13)))
            else:
                ts = np.unique(rng.integers(FIRST - STEP + 1, FIRST + 11 * STEP + 1, int(rng.integers(1, 10))))
            pieces.append(piece(row, ts, rng.random(len(ts))))
        check(pieces)


def test_storage_slots_match_the_exact_placement(tmp_path):
    """Storage.read_raw_slots (cached chunk grid forms, slices) gives what placing every raw piece in write
    order gives, with flushed chunks, compacted chunks, the head, off-grid samples, gaps and overwrites."""
    from storage.engine import EngineOptions, Storage
    rng = np.random.default_rng(11)
    st = Storage(str(tmp_path), None, EngineOptions(flush_interval=3600))
    names = [f"s{i}" for i in range(6)]
    t0 = 1_700_000_000_000 // 7_200_000 * 7_200_000
    for rnd in range(5):
        for i, name in enumerate(names):
            k = int(rng.integers(20, 80))
            if i % 3 == 0:     # on the grid, with gaps
                ts = t0 + STEP * np.sort(rng.choice(2000, k, replace=False))
            else:              # anywhere, including overwrites of earlier rounds
                ts = np.unique(t0 + rng.integers(0, 2000 * STEP, k))
            st.write("anonymous", [name] * len(ts), ts, rng.random(len(ts)))
        if rnd < 4:
            st.flush(everything=True)
        if rnd == 2:
            st.compact(now_ms=t0 + 10 * 86_400_000)
    sids = st.resolve("anonymous", names)
    for first, n in ((t0, 2000), (t0 + 37 * STEP, 500), (t0 - 5 * STEP, 40)):
        for step in (STEP, 3 * STEP):
            got = np.full((len(sids), n), np.nan)
            st.read_raw_slots(sids, first, step, got)
            want = np.full((len(sids), n), np.nan)
            scatter(want, st.read_raw_pieces(sids, first - step + 1, first + (n - 1) * step), first, step)
            np.testing.assert_array_equal(got, want)
            st.read_raw_slots(sids, first, step, got)        # again, from the cached grid forms
            np.testing.assert_array_equal(got, want)
    st.close()


def test_place_copies_grid_forms_and_takes_the_exact_path_only_for_clashing_rows():
    from storage.slots import grid_form, place
    first_slot = FIRST // STEP
    g0 = grid_form(FIRST + STEP * np.array([0, 1, 3]), np.array([1.0, 2.0, 4.0]), STEP)
    g1 = grid_form(FIRST + STEP * np.array([4, 5]), np.array([5.0, 6.0]), STEP)
    head = piece(0, FIRST + STEP * np.array([6, 8]), [7.0, 9.0])
    clash_old = grid_form(FIRST + STEP * np.array([0, 1, 2]), np.array([1.0, 2.0, 3.0]), STEP)
    clash_new = piece(1, [FIRST + STEP], [20.0])                  # overwrites slot 1 of row 1
    asked = []

    def exact():
        asked.append(True)
        return [piece(1, FIRST + STEP * np.arange(3), [1, 2, 3]), clash_new]

    m = np.full((2, 12), np.nan)
    place(m, FIRST, STEP, [(0, *g0), (0, *g1), (1, *clash_old)], [head, clash_new], exact)
    assert g0[0] == first_slot
    np.testing.assert_array_equal(m[0, :9], [1, 2, np.nan, 4, 5, 6, 7, np.nan, 9])
    np.testing.assert_array_equal(m[1, :3], [1, 20, 3])
    assert asked == [True]
