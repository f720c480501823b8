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
