"""Compound claims: several tests that must all hold (intersection–union)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from ._validation import invalid
from .stats import DesignCheck, TestResult

__all__ = ["all_of"]


def all_of(results: Mapping[str, TestResult], *, refute_on: Sequence[str] | None = None) -> TestResult:
    """Combine component tests of a claim that holds only if every component holds.

    Support: intersection–union test (Berger, 1982): ``p = max(p_i)`` is a
    valid level-α test of the conjunction with no multiplicity adjustment.
    Refutation: the claim is refuted if any component named in ``refute_on``
    (default: all) is refuted; that is a union of tests, so its p-value is
    Bonferroni-adjusted, ``min(1, m · min(p_refute_i))``.

    The effect, CI and n reported are the first component's; every component's
    numbers are kept in ``details['components']``.
    """
    if not results:
        raise invalid("results", "all_of", "a non-empty mapping of name → TestResult", results)
    names = list(results)
    refute_on = names if refute_on is None else list(refute_on)
    unknown = [n for n in refute_on if n not in results]
    if unknown:
        raise invalid("refute_on", "all_of", f"names among {names}", unknown)
    first = results[names[0]]
    p_support = max(r.p_support for r in results.values())
    p_refute = min(1.0, len(refute_on) * min(results[n].p_refute for n in refute_on))
    designs = [r.design for r in results.values()]
    powers = [d.power for d in designs if d.power is not None]
    design = DesignCheck(
        can_reach_alpha=all(d.can_reach_alpha for d in designs),
        min_p=max((d.min_p for d in designs if d.min_p is not None), default=None),
        power=min(powers) if powers else None,
        message=" ".join(dict.fromkeys(d.message for d in designs if d.message)),
    )
    components = {
        n: {"test": r.test, "p_support": r.p_support, "p_refute": r.p_refute, "effect": r.effect,
            "effect_name": r.effect_name, "ci": list(r.ci), "n": dict(r.n)}
        for n, r in results.items()
    }
    return dataclasses.replace(
        first,
        test="all of: " + "; ".join(f"{n} ({r.test})" for n, r in results.items()),
        statistic=first.statistic,
        p_support=p_support,
        p_refute=p_refute,
        design=design,
        details={**first.details, "components": components},
    )
