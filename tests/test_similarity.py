"""Tests for analysis.measure.similarity: functional distances between softmax outputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from analysis._validation import InvalidParameterError
from analysis.measure.similarity import (
    DISTANCES,
    disagreement,
    functional_distance,
    js_divergence,
    kl_divergence,
    softmax,
)

FAST = settings(max_examples=40, deadline=None)
LN2 = math.log(2.0)


def _reference_js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2, natural log, 0·log 0 = 0."""
    m = (p + q) / 2

    def kl(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log(a / b), 0.0)
        return terms.sum(1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def _probs(n: int, c: int, seed: int, sharp: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return softmax(rng.normal(size=(n, c)) * sharp)


_prob_rows = st.integers(1, 6).flatmap(
    lambda n: st.integers(2, 6).flatmap(
        lambda c: st.tuples(
            *[
                st.lists(st.floats(0, 1, allow_nan=False), min_size=n * c, max_size=n * c)
                .filter(lambda v: all(sum(v[i * c : (i + 1) * c]) > 1e-3 for i in range(n)))
                .map(lambda v: np.asarray(v).reshape(n, c) / np.asarray(v).reshape(n, c).sum(1, keepdims=True))
                for _ in range(2)
            ]
        )
    )
)


# ----------------------------------------------------------------------------- hand-computed


def test_softmax_rows_sum_to_one_and_shift_invariant():
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]])
    p = softmax(z)
    assert np.allclose(p.sum(1), 1.0)
    assert np.allclose(p[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    assert np.allclose(p[1], [0.5, 0.5, 0.0])
    assert np.allclose(softmax(z + 7.0), p)


def test_disjoint_one_hots_hand_computed():
    p = np.array([[1.0, 0.0], [0.0, 1.0]])
    q = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert js_divergence(p, q) == pytest.approx(LN2 / 2)  # row 1: ln 2, row 2: 0
    assert np.allclose(js_divergence(p, q, reduce=False), [LN2, 0.0])
    assert disagreement(p, q) == pytest.approx(0.5)
    assert np.array_equal(disagreement(p, q, reduce=False), [1.0, 0.0])


def test_kl_hand_computed():
    p = np.array([[0.5, 0.5]])
    q = np.array([[0.25, 0.75]])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence(p, q) == pytest.approx(expected, rel=1e-9)
    expected_rev = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kl_divergence(q, p) == pytest.approx(expected_rev, rel=1e-9)


def test_js_hand_computed_tiny_case():
    p = np.array([[0.5, 0.5]])
    q = np.array([[1.0, 0.0]])
    # m = (0.75, 0.25); KL(p‖m) = .5 ln(.5/.75) + .5 ln(.5/.25); KL(q‖m) = ln(1/.75)
    expected = 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2.0)) + 0.5 * math.log(1 / 0.75)
    assert js_divergence(p, q) == pytest.approx(expected, rel=1e-9)


def test_kl_with_zero_in_q_is_finite_and_large():
    p = np.array([[0.5, 0.5]])
    q = np.array([[1.0, 0.0]])
    d = kl_divergence(p, q)
    assert math.isfinite(d) and d > 10  # ~ ½ ln(½ / 1e-12)


def test_accepts_torch_tensors_like_numpy():
    p, q = _probs(5, 4, 0), _probs(5, 4, 1)
    for f in (js_divergence, kl_divergence, disagreement):
        assert f(torch.tensor(p), torch.tensor(q)) == pytest.approx(f(p, q))
    assert js_divergence(torch.tensor(p, dtype=torch.float32), q) == pytest.approx(js_divergence(p, q), rel=1e-5)


def test_js_matches_reference_formula():
    p, q = _probs(50, 10, 2, sharp=3.0), _probs(50, 10, 3, sharp=3.0)
    assert np.allclose(js_divergence(p, q, reduce=False), _reference_js(p, q), rtol=1e-9, atol=1e-12)
    assert js_divergence(p, q) == pytest.approx(_reference_js(p, q).mean(), rel=1e-9)


def test_js_matches_scipy_jensenshannon_squared():
    # Independent reference: scipy's JS *distance* (base e) squared, on well-behaved rows.
    p, q = _probs(50, 10, 8, sharp=2.0), _probs(50, 10, 9, sharp=2.0)
    assert np.allclose(js_divergence(p, q, reduce=False), jensenshannon(p, q, axis=1) ** 2, rtol=1e-8, atol=1e-14)


def test_js_normalises_rows_like_scipy():
    p = np.array([[2.0, 2.0]])
    q = np.array([[3.0, 1.0]])
    assert js_divergence(p, q) == pytest.approx(js_divergence(p / 4, q / 4), rel=1e-12)


def test_js_subnormal_entry_is_not_infinite():
    # scipy's m = (p + q)/2 underflows here and gives inf; the true value is ~0.
    p = np.array([[1.0, 0.0]])
    q = np.array([[1.0, 5e-324]])
    assert js_divergence(p, q) == pytest.approx(0.0, abs=1e-300)


def test_functional_distance_dispatches_by_name():
    p, q = _probs(8, 3, 4), _probs(8, 3, 5)
    assert functional_distance(p, q) == js_divergence(p, q)
    assert functional_distance(p, q, "kl") == kl_divergence(p, q)
    assert functional_distance(p, q, "disagreement") == disagreement(p, q)
    assert set(DISTANCES) == {"js", "kl", "disagreement"}


# ----------------------------------------------------------------------------- errors


def test_unknown_metric_lists_valid_ones():
    p = _probs(2, 2, 0)
    with pytest.raises(InvalidParameterError) as info:
        functional_distance(p, p, "cosine")
    assert str(info.value) == (
        "The 'metric' parameter of functional_distance must be one of 'js', 'kl', 'disagreement'. "
        "Got 'cosine' instead."
    )


@pytest.mark.parametrize("f", [js_divergence, kl_divergence, disagreement, functional_distance])
def test_shape_mismatch_raises(f):
    with pytest.raises(InvalidParameterError, match=r"'q' parameter .* same shape as p \(3, 4\)\. Got \(3, 5\)"):
        f(_probs(3, 4, 0), _probs(3, 5, 1))


def test_wrong_ndim_raises():
    with pytest.raises(InvalidParameterError, match=r"'p' parameter .* \(n_examples, n_classes\)\. Got \(4,\) instead"):
        js_divergence(np.full(4, 0.25), np.full((1, 4), 0.25))


# ----------------------------------------------------------------------------- properties


@FAST
@given(pq=_prob_rows)
@example(pq=(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]])))
@example(pq=(np.eye(3), np.eye(3)))
def test_identical_outputs_have_zero_distance(pq):
    p, _ = pq
    assert js_divergence(p, p.copy()) == pytest.approx(0.0, abs=1e-12)
    assert kl_divergence(p, p.copy()) == pytest.approx(0.0, abs=1e-9)
    assert disagreement(p, p.copy()) == 0.0


@FAST
@given(pq=_prob_rows)
@example(pq=(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])))
@example(pq=(np.array([[1.0, 0.0]]), np.array([[1.0, 5e-324]])))
def test_js_symmetric_bounded_and_matches_reference(pq):
    p, q = pq
    d = js_divergence(p, q, reduce=False)
    assert np.allclose(d, js_divergence(q, p, reduce=False), atol=1e-12)
    assert np.all(d >= -1e-12) and np.all(d <= LN2 + 1e-12)
    ref = _reference_js(p, q)
    finite = np.isfinite(ref)  # the textbook m = (p+q)/2 underflows on subnormal entries
    assert np.allclose(d[finite], ref[finite], atol=1e-9)


@FAST
@given(pq=_prob_rows)
def test_kl_nonnegative_and_bounds_js(pq):
    p, q = pq
    kl = kl_divergence(p, q, reduce=False)
    assert np.all(kl >= -1e-12)
    # JS(p, q) ≤ ¼ (KL(p‖q) + KL(q‖p)) (Lin 1991), with clipping only raising KL.
    js = js_divergence(p, q, reduce=False)
    assert np.all(js <= 0.25 * (kl + kl_divergence(q, p, reduce=False)) + 1e-9)


@FAST
@given(pq=_prob_rows, perm_seed=st.integers(0, 1000))
def test_distances_invariant_to_class_and_example_order(pq, perm_seed):
    p, q = pq
    rng = np.random.default_rng(perm_seed)
    ci = rng.permutation(p.shape[1])
    ei = rng.permutation(p.shape[0])
    for f in (js_divergence, kl_divergence):
        assert f(p[ei][:, ci], q[ei][:, ci]) == pytest.approx(f(p, q), abs=1e-12)


def test_disagreement_in_unit_interval_and_zero_iff_same_argmax():
    p, q = _probs(200, 5, 6, sharp=2.0), _probs(200, 5, 7, sharp=2.0)
    d = disagreement(p, q)
    assert 0.0 < d < 1.0
    assert d == pytest.approx(float(np.mean(p.argmax(1) != q.argmax(1))))
    # Same argmax everywhere (q is a sharpened p): disagreement 0 while JS > 0.
    sharp = softmax(np.log(p) * 3.0)
    assert disagreement(p, sharp) == 0.0 and js_divergence(p, sharp) > 0
