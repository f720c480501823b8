"""fetch._scatter_raw: raw pieces into grid slots, the later write winning, regular and irregular pieces."""
import numpy as np

from graphite_api.fetch import _scatter_raw

STEP = 10_000
FIRST = 1_700_000_000_000


def piece(row, ts, vals):
    return row, np.asarray(ts, np.int64), np.asarray(vals, float)


def reference(pieces, rows, n):
    """Slot by slot, in write order: what _scatter_raw must produce."""
    out = np.full((rows, n), np.nan)
    for row, ts, vals in pieces:
        for t, v in zip(ts.tolist(), vals.tolist()):
            out[row, -((FIRST - t) // STEP)] = v
    return out


def check(pieces, rows=3, n=12):
    matrix = np.full((rows, n), np.nan)
    _scatter_raw(matrix, pieces, FIRST, STEP)
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
