"""Functional similarity of two models from their softmax outputs on the same inputs.

All functions take probability arrays shaped ``(n_examples, n_classes)``
(numpy or torch) and return the mean over examples (per-example values with
``reduce=False`` for within-model confidence intervals only — the trained
model, not the example, is the unit of analysis for claims).
"""
from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

from analysis._validation import check_choice, invalid

__all__ = ["DISTANCES", "disagreement", "js_divergence", "kl_divergence", "functional_distance", "softmax"]

DISTANCES = ("js", "kl", "disagreement")


def _probs(p, name: str) -> np.ndarray:
    arr = p.detach().cpu().numpy() if hasattr(p, "detach") else np.asarray(p)
    arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise invalid(name, "functional_distance", "an array shaped (n_examples, n_classes)", arr.shape)
    return arr


def _pair(p, q) -> tuple[np.ndarray, np.ndarray]:
    p, q = _probs(p, "p"), _probs(q, "q")
    if p.shape != q.shape:
        raise invalid("q", "functional_distance", f"the same shape as p {p.shape}", q.shape)
    return p, q


def softmax(logits) -> np.ndarray:
    """Row-wise softmax in float64 (numerically stable)."""
    z = _probs(logits, "logits")
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def disagreement(p, q, *, reduce: bool = True):
    """Fraction of examples whose top-1 predictions differ."""
    p, q = _pair(p, q)
    d = (p.argmax(1) != q.argmax(1)).astype(np.float64)
    return float(d.mean()) if reduce else d


def js_divergence(p, q, *, reduce: bool = True):
    """Jensen–Shannon divergence (natural log, in [0, ln 2]); rows are normalised to sum 1.

    Written as ``½ Σ p log(2p/(p+q)) + ½ Σ q log(2q/(p+q))`` instead of
    squaring scipy's ``jensenshannon``: scipy forms ``m = (p+q)/2``, which
    underflows to 0 for a subnormal entry (p=[1, 0], q=[1, 5e-324] gives inf),
    and some versions return nan for identical one-hot rows. Here ``p+q ≥ p``
    never underflows, identical rows give exactly 0, and each term is at most
    ``p·ln 2``. tests/test_similarity.py checks it against scipy.
    """
    p, q = _pair(p, q)
    p = p / p.sum(1, keepdims=True)
    q = q / q.sum(1, keepdims=True)
    s = p + q
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(2 * p / s), 0.0) + np.where(q > 0, q * np.log(2 * q / s), 0.0)
    d = np.clip(0.5 * terms.sum(1), 0.0, np.log(2.0))  # clip: rounding only
    return float(d.mean()) if reduce else d


def kl_divergence(p, q, *, reduce: bool = True, eps: float = 1e-12):
    """KL(p ‖ q) per example (natural log); q clipped at ``eps`` so a zero never gives inf."""
    p, q = _pair(p, q)
    q = np.clip(q, eps, None)
    q = q / q.sum(1, keepdims=True)
    d = rel_entr(p, q).sum(1)
    return float(d.mean()) if reduce else d


_FUNCS = {"js": js_divergence, "kl": kl_divergence, "disagreement": disagreement}


def functional_distance(p, q, metric: str = "js") -> float:
    """Mean functional distance between two models' softmax outputs (``metric`` in :data:`DISTANCES`)."""
    check_choice("metric", "functional_distance", metric, DISTANCES)
    return _FUNCS[metric](p, q)
