"""The series model that render functions and output formats work on.

A Graphite series is a regular grid: `values[i]` belongs to timestamp `start + i*step` (unix seconds);
NaN stands for null. `end` is one step past the last point, as in graphite-web's TimeSeries.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Series:
    name: str
    start: int
    step: int
    values: np.ndarray                      # float64, NaN = null
    tags: dict = field(default_factory=dict)
    path_expression: str = ""
    consolidation: str = "average"          # consolidateBy / rollup default used by maxDataPoints
    xfiles_factor: float = 0.0
    values_per_point: int = 1

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=np.float64)
        if not self.path_expression:
            self.path_expression = self.name
        if "name" not in self.tags:
            self.tags = {**self.tags, "name": self.name}

    @property
    def end(self) -> int:
        return self.start + len(self.values) * self.step

    @property
    def timestamps(self) -> np.ndarray:
        return self.start + self.step * np.arange(len(self.values), dtype=np.int64)

    def copy(self, **changes) -> "Series":
        values = changes.pop("values") if "values" in changes else self.values.copy()
        base = dict(name=self.name, start=self.start, step=self.step, values=values,
                    tags=dict(self.tags), path_expression=self.path_expression,
                    consolidation=self.consolidation, xfiles_factor=self.xfiles_factor,
                    values_per_point=self.values_per_point)
        base.update(changes)
        return Series(**base)


def stacked_view(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The arrays as one 2-D array without a copy when they are consecutive rows of one matrix, else None.

    fetch returns the series of one archive as rows of one matrix in name order, so a glob's series usually
    are; stacking them again would copy every value of the request.
    """
    if not arrays:
        return None
    first = arrays[0]
    base = first.base
    if (base is None or base.ndim != 2 or not base.flags.c_contiguous or first.ndim != 1
            or len(first) != base.shape[1] or first.dtype != base.dtype):
        return None
    row_bytes = base.strides[0]
    origin = base.__array_interface__["data"][0]
    at = first.__array_interface__["data"][0]
    row, rem = divmod(at - origin, row_bytes) if row_bytes else (0, 1)
    if rem or row + len(arrays) > base.shape[0]:
        return None
    for k, a in enumerate(arrays):
        if a.base is not base or a.__array_interface__["data"][0] != at + k * row_bytes or a.shape != first.shape:
            return None
    return base[row:row + len(arrays)]
