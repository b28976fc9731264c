"""The power plan of ``--plan``: predicted power from the baseline's curve, units needed, their cost."""
from __future__ import annotations

from compress.store.spec import Spec
from fixtures.plan import power_plan_lines, power_rows


def _units(n: int, tag: str = "a") -> list[list[Spec]]:
    return [[Spec.make("train", seed=i, tag=tag)] for i in range(n)]


def _entry(curve, needed, *, asserted=True, power=0.5, test="t-test"):
    return {"asserted": asserted, "summary": {"power": power, "units_needed": needed, "power_curve": curve,
                                              "test": test}}


CURVE = [[2, 0.1], [5, 0.4], [10, 0.7], [20, 0.95], [40, 1.0]]


def test_power_is_read_off_the_curve_at_the_profiles_units_and_the_missing_units_are_priced():
    findings = {"A[x]": _entry(CURVE, 13), "B[y]": _entry(CURVE, 13)}
    rows, left_out = power_rows([("A[x]", {None: _units(10)}), ("B[y]", {None: _units(20, "b")})], findings,
                                cost=lambda models: 4.0)
    a, b = rows
    assert a.units == 10 and a.predicted == 0.7 and a.needed == 13 and a.missing == 3 and a.seconds_per_unit == 4.0
    assert b.predicted == 0.95 and b.missing == 0 and not left_out
    text = "\n".join(power_plan_lines(rows, left_out, source="base.json"))
    assert "+3 units, ~0:12" in text and "met" in text
    assert "predicted power >= 0.8 for 1 of 2 instances (50%)" in text


def test_grouped_units_are_priced_by_group():
    findings = {"A[x]": _entry(CURVE, 30)}
    cost = {"a": 1.0, "b": 3.0}
    rows, _ = power_rows([("A[x]", {"a": _units(10, "a"), "b": _units(10, "b")})], findings,
                         cost=lambda models: cost[models[0].param("tag")])
    assert rows[0].units == 20 and rows[0].seconds_per_unit == 2.0 and rows[0].predicted == 0.95


def test_unknown_instances_say_why_and_untested_ones_are_left_out():
    findings = {"B[y]": _entry(CURVE, 13, asserted=False), "C[z]": _entry(None, None, power=None, test="number"),
                "D[w]": _entry(None, 13), "E[v]": _entry(CURVE, None)}
    instances = [(i, {None: _units(n)}) for i, n in (("A[x]", 5), ("B[y]", 5), ("C[z]", 5), ("D[w]", 5), ("E[v]", 80))]
    rows, left_out = power_rows(instances, findings, cost=lambda models: 1.0)
    by = {r.instance_id: r for r in rows}
    assert set(by) == {"A[x]", "D[w]", "E[v]"} and len(left_out) == 2
    assert by["A[x]"].why_unknown == "no baseline entry" and by["A[x]"].predicted is None
    assert "no power curve" in by["D[w]"].why_unknown
    assert by["E[v]"].predicted is None and "outside the baseline's curve" in by["E[v]"].why_unknown
    text = "\n".join(power_plan_lines(rows, left_out, source="base.json"))
    assert "no baseline entry" in text and "not in the power plan: 2 instances" in text


def test_instances_sharing_units_are_priced_once_per_pool():
    shared = _units(10)
    findings = {"A[x]": _entry(CURVE, 13), "B[y]": _entry(CURVE, 18), "C[z]": _entry(CURVE, None)}
    rows, _ = power_rows([(i, {None: shared}) for i in findings], findings, cost=lambda models: 2.0)
    text = "\n".join(power_plan_lines(rows, [], source="base.json", workers=2))
    assert "(wall time on 2 workers)" in text
    assert "A[x] and 2 more (10 units, ~0:02 a unit): 0 reach 0.8 now; 13 units +1 (~0:03); 18 units +1 (~0:08); " \
           "1 unknown or beyond the search" in text
