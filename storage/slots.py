"""Raw samples placed on a Graphite step grid: matrix[row, k] holds the sample of slot first + k*step.

A sample belongs to the first grid time at or after it (quantised forward) and, among samples of one slot, the
later write wins. Grid times are multiples of the step, so a chunk's samples map to the same slots in every
request with that step: its "grid form" (values per slot, NaN where it has none) is cached next to the decoded
chunk, and a read copies slices of it instead of placing every sample again.
"""
from __future__ import annotations

import numpy as np


def grid_form(ts: np.ndarray, values: np.ndarray, step_ms: int) -> tuple[int, np.ndarray]:
    """(absolute slot of the first value, values per slot) of one sorted chunk. A chunk with one sample per
    step on the grid is its own grid form (the values array itself, no copy)."""
    first, last = int(ts[0]), int(ts[-1])
    if first % step_ms == 0 and last - first == (len(ts) - 1) * step_ms:
        return first // step_ms, values
    slots = (ts + (step_ms - 1)) // step_ms
    base = int(slots[0])
    out = np.full(int(slots[-1]) - base + 1, np.nan)
    out[slots - base] = values          # ts ascending: the later sample of a slot is assigned last
    return base, out


def place(matrix: np.ndarray, first_ms: int, step_ms: int, grids: list, pieces: list, exact) -> None:
    """Fill `matrix` from chunk grid forms (row, base slot, values) and raw pieces (row, ts, values), the pieces
    written after the chunks. When two sources of a row cover a common slot, their order decides and a grid's
    NaN (no sample) must not hide an older value: such rows take `exact()`, every source as raw pieces in
    write order, through the sample-by-sample `scatter`."""
    n = matrix.shape[1]
    first_slot = first_ms // step_ms
    if not grids and not pieces:
        return
    rows = np.fromiter((g[0] for g in grids), np.int64, len(grids))
    lo = np.fromiter((g[1] for g in grids), np.int64, len(grids))
    hi = lo + np.fromiter((len(g[2]) for g in grids), np.int64, len(grids))
    if pieces:
        rows = np.concatenate([rows, np.fromiter((p[0] for p in pieces), np.int64, len(pieces))])
        p_lo = np.fromiter((p[1][0] for p in pieces), np.int64, len(pieces))
        p_hi = np.fromiter((p[1][-1] for p in pieces), np.int64, len(pieces))
        lo = np.concatenate([lo, (p_lo + (step_ms - 1)) // step_ms])
        hi = np.concatenate([hi, (p_hi + (step_ms - 1)) // step_ms + 1])
    lo, hi = np.maximum(lo - first_slot, 0), np.minimum(hi - first_slot, n)   # clipped to the window
    live = np.flatnonzero(lo < hi)
    order = live[np.lexsort((lo[live], rows[live]))]
    r, a, b = rows[order], lo[order], hi[order]
    clash = (r[1:] == r[:-1]) & (a[1:] < b[:-1])
    messy = set(r[1:][clash].tolist()) if clash.any() else set()
    flat = matrix.reshape(-1)
    for k, (row, base, values) in enumerate(grids):
        start, end = int(lo[k]), int(hi[k])
        if start < end and row not in messy:
            skip = start + first_slot - base
            flat[row * n + start:row * n + end] = values[skip:skip + end - start]
    if messy:
        pieces = [p for p in pieces if p[0] not in messy] + [p for p in exact() if p[0] in messy]
    scatter(matrix, pieces, first_ms, step_ms)


def scatter(matrix: np.ndarray, pieces: list, first_ms: int, step_ms: int) -> None:
    """Place raw (row, ts, values) pieces, each cut to the matrix's window (first_ms - step_ms, last slot].
    Pieces come in write order and a later write into a slot wins.

    Regular pieces (one sample per step, on the grid) are copied as slices; the others are scattered in one
    numpy pass. The two groups may be applied in either order only when no two pieces of a row overlap in
    time (the usual case); otherwise every piece goes through the ordered scatter."""
    if not pieces:
        return
    n = matrix.shape[1]
    flat_matrix = matrix.reshape(-1)
    count = len(pieces)
    rows = np.fromiter((p[0] for p in pieces), np.int64, count)
    lengths = np.fromiter((len(p[1]) for p in pieces), np.int64, count)
    firsts = np.fromiter((p[1][0] for p in pieces), np.int64, count)
    lasts = np.fromiter((p[1][-1] for p in pieces), np.int64, count)
    regular = (firsts % step_ms == 0) & (lasts - firsts == (lengths - 1) * step_ms)
    order = np.lexsort((firsts, rows))
    r, f, la = rows[order], firsts[order], lasts[order]
    overlapping = bool(np.any((r[1:] == r[:-1]) & (f[1:] <= la[:-1])))
    if overlapping:
        regular[:] = False
    else:
        offsets = rows * n + (firsts - first_ms) // step_ms
        for k, start, length in zip(np.flatnonzero(regular).tolist(), offsets[regular].tolist(),
                                    lengths[regular].tolist()):
            flat_matrix[start:start + length] = pieces[k][2]
    rest = np.flatnonzero(~regular).tolist()
    if rest:
        ts = np.concatenate([pieces[k][1] for k in rest])
        vals = np.concatenate([pieces[k][2] for k in rest])
        # flat slot = row * n + ceil((ts - first_ms) / step_ms), folded into one shift per piece
        shift = rows[rest] * (n * step_ms) - first_ms + (step_ms - 1)
        flat_matrix[(np.repeat(shift, lengths[rest]) + ts) // step_ms] = vals
