"""Per-unit values of one claim instance, with the models each unit was computed from.

A *unit* is one replicate of the experiment: an independently trained model,
or a base with everything derived from it (CLAIMS.md, Units). A claim's
measurement reduces each unit to a few numbers (a log distance ratio, an
accuracy difference, a Kendall τ over levels) and adds them here together
with the models it used::

    table = UnitTable("base model B_i with its own independent I_i")
    for i, base in enumerate(bases):
        table.add(f"B{i}", models=[base, partner[i], quantized[i]], closer=log_ratio[i])

The table refuses a model that appears in two units (CLAIMS.md rule 2: no
model in two replicates of one test) — the construction errors that made
earlier verdicts wrong at 2–6 × their nominal rate ("nearest independent"
shared among bases, leave-one-out means, one teacher treated as a constant)
all put one model into several units. A model every unit shares on purpose
is declared with ``conditional_on`` and reported beside the verdict.

Units may carry a ``group`` (e.g. the architecture) for tests that compare
groups of different units; within a group every unit has the same columns.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from analysis._validation import InvalidParameterError, invalid

__all__ = ["UnitTable", "SharedModelError", "Data", "column_key"]

#: Column arrays a decision rule reads, keyed by :func:`column_key`; last axis = units.
Data = Mapping[str, np.ndarray]


class SharedModelError(InvalidParameterError):
    """One model was used by two units of one test (they would not be independent replicates)."""


def column_key(column: str, group: str | None = None) -> str:
    """The key of a column in :data:`Data`: ``"column"`` or ``"column|group"`` for one group's units."""
    return column if group is None else f"{column}|{group}"


@dataclass(frozen=True)
class _Row:
    unit_id: str
    group: str | None
    values: dict[str, float]


class UnitTable:
    """One instance's per-unit values.

    Parameters
    ----------
    unit : str
        What one unit is, in words (shown in the report).
    conditional_on : str, optional
        A model that every unit shares by design (the instance is then
        conditional on it); it is exempt from the one-model-one-unit check.
    leave_out_nonfinite : bool
        A unit with a value that is not finite (a relative deviation from a
        base of accuracy 0, the log of a zero distance) is left out and
        recorded in :attr:`left_out` (the report names it) instead of raising.
        For measurements where a degenerate model makes a quantity undefined.
    """

    def __init__(self, unit: str, *, conditional_on: Hashable | None = None, leave_out_nonfinite: bool = False):
        if not isinstance(unit, str) or not unit:
            raise invalid("unit", "UnitTable", "a non-empty description of one unit", unit)
        self.unit = unit
        self.conditional_on = conditional_on
        self.leave_out_nonfinite = leave_out_nonfinite
        self.left_out: dict[str, list[str]] = {}  # unit id -> the columns whose values were not finite
        self._rows: list[_Row] = []
        self._owner: dict[Hashable, str] = {}
        self._columns: dict[str | None, list[str]] = {}  # per group, as first given (also when left out)

    def add(self, unit_id: str, *, models: Iterable[Hashable] = (), group: str | None = None, **values: float) -> None:
        """Add one unit's values, computed from ``models`` (hashable ids, e.g. specs).

        Raises
        ------
        SharedModelError
            If one of ``models`` already belongs to another unit.
        InvalidParameterError
            For a repeated unit id, a non-finite value, or columns that differ
            from the other units of the same group.
        """
        owner = "UnitTable.add"
        if any(r.unit_id == unit_id for r in self._rows):
            raise invalid("unit_id", owner, "an id not used by another unit", unit_id)
        clean, nonfinite = {}, []
        for name, v in values.items():
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise invalid(name, owner, "a number", v) from None
            if not math.isfinite(v):
                if not self.leave_out_nonfinite:
                    raise invalid(name, owner, f"a finite number (unit {unit_id!r})", v)
                nonfinite.append(name)
            clean[name] = v
        self._columns.setdefault(group, list(clean))
        if nonfinite:
            self.left_out[str(unit_id)] = nonfinite
            return
        if not clean:
            raise invalid("values", owner, "at least one named value", values)
        same_group = [r for r in self._rows if r.group == group]
        if same_group and set(same_group[0].values) != set(clean):
            raise invalid("values", owner, f"the columns of the other units of group {group!r}: "
                          f"{sorted(same_group[0].values)}", sorted(clean))
        mine = []
        for m in models:
            if m == self.conditional_on:
                continue
            other = self._owner.get(m)
            if other is not None and other != unit_id:
                raise SharedModelError(
                    f"Model {m!r} is used by units {other!r} and {unit_id!r} of one test: replicates must not "
                    "share a model (CLAIMS.md, Units rule 2). Give each unit its own models, or declare the "
                    "shared model with conditional_on."
                )
            mine.append(m)
        for m in mine:
            self._owner[m] = unit_id
        self._rows.append(_Row(str(unit_id), group, clean))

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self._rows)

    @property
    def ids(self) -> list[str]:
        return [r.unit_id for r in self._rows]

    @property
    def groups(self) -> list[str | None]:
        """Distinct groups in order of first appearance (``[None]`` for an ungrouped table), including a group
        whose every unit was left out (its columns are then empty)."""
        return list(self._columns)

    def group_of(self) -> list[str | None]:
        return [r.group for r in self._rows]

    def columns(self, group: str | None = None) -> list[str]:
        return list(self._columns.get(group, []))

    def matrix(self, group: str | None = None) -> tuple[list[str], np.ndarray]:
        """``(columns, values)`` of one group: values has shape (units in group, columns)."""
        rows = [r for r in self._rows if r.group == group]
        cols = self.columns(group)
        return cols, np.array([[r.values[c] for c in cols] for r in rows], dtype=float).reshape(len(rows), len(cols))

    def data(self) -> dict[str, np.ndarray]:
        """Every column as a 1-D array, under :func:`column_key` (grouped columns per group)."""
        out: dict[str, np.ndarray] = {}
        for g in self.groups:
            cols, mat = self.matrix(g)
            for j, c in enumerate(cols):
                out[column_key(c, g)] = mat[:, j]
        return out

    def split(self, first: Iterable[str]) -> tuple["UnitTable", "UnitTable"]:
        """``(the units in first, the others)`` as two tables with this one's description and columns: the two
        stages of a two-stage design (:mod:`analysis.stats.two_stage`). Left-out units stay with their stage."""
        keep = set(first)
        parts = []
        for inside in (True, False):
            t = UnitTable(self.unit, conditional_on=self.conditional_on, leave_out_nonfinite=self.leave_out_nonfinite)
            t._columns = {g: list(c) for g, c in self._columns.items()}
            t._rows = [r for r in self._rows if (r.unit_id in keep) == inside]
            t.left_out = {u: list(c) for u, c in self.left_out.items() if (u in keep) == inside}
            ids = {r.unit_id for r in t._rows}
            t._owner = {m: u for m, u in self._owner.items() if u in ids}
            parts.append(t)
        return parts[0], parts[1]

    def records(self) -> dict:
        """JSON-able per-unit values: ``{"units": ids, "groups": [...], "values": {column: [...]}}``."""
        cols = list(dict.fromkeys(c for r in self._rows for c in r.values))
        return {
            "units": self.ids,
            "groups": self.group_of(),
            "values": {c: [r.values.get(c) for r in self._rows] for c in cols},
        }
