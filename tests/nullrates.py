"""The error-rate check every null simulation shares: a first look, and a larger confirming sample when it alarms.

A scenario at its null boundary errs at rate α at most. ``N`` = 200 fake worlds estimate the rate to ±0.015
(one SE at α = 0.05); a rate above α + 3 SE is an alarm. With a hundred and more such checks in the suite a
few alarms fall on sampling noise alone, so an alarm is confirmed on ``N_CONFIRM`` = 2,000 worlds (the same
200 and 1,800 more) against α + 3 SE at that size (0.064): a construction that really errs at 2α (0.10)
fails both looks; one at α passes the second almost surely.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterable

ALPHA = 0.05
N = 2000 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 200
N_CONFIRM = 2000


def limit(n: int, alpha: float = ALPHA) -> float:
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / n)


LIMIT = limit(N)


def error_rates(simulate: Callable[[int], Counter], wrong: Iterable[str]) -> tuple[dict[str, float], int, float]:
    """``({verdict: rate}, worlds, limit)`` for the ``wrong`` verdicts; ``simulate(n)`` draws the first n worlds
    of the scenario's fixed stream. A rate above the first look's limit is re-estimated on N_CONFIRM worlds."""
    wrong = tuple(wrong)
    counts, n = simulate(N), N
    if any(counts[v] / n > limit(n) for v in wrong) and N_CONFIRM > n:
        counts, n = simulate(N_CONFIRM), N_CONFIRM
    return {v: counts[v] / n for v in wrong}, n, limit(n)
