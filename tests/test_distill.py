"""Tests for compress.training.distill: the Hinton KD loss, the distiller strategies and their lookup table."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from analysis._validation import InvalidParameterError
from compress.training.distill import (CRDKD, DISTILLERS, Distiller, FitNetsKD, HintonKD, KDConfig, MWCodeKD, SimKD,
                                       hinton_kd_loss, make_distiller, soft_kl)

FAST = settings(max_examples=30, deadline=None)


def _logits(seed: int, n: int = 6, c: int = 5, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed)) * scale


def _reference_soft_term(s: torch.Tensor, t: torch.Tensor, temperature: float) -> float:
    """T² · mean_i Σ_c p_t log(p_t / p_s), written out in float64."""
    p_s = torch.softmax(s.double() / temperature, dim=1)
    p_t = torch.softmax(t.double() / temperature, dim=1)
    kl = (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    return float(kl) * temperature**2


# ----------------------------------------------------------------------------- KDConfig


def test_kdconfig_defaults_are_valid():
    cfg = KDConfig()
    assert cfg.temperature > 0 and 0 <= cfg.alpha <= 1


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_kdconfig_accepts_closed_alpha_ends(alpha):
    assert KDConfig(alpha=alpha).alpha == alpha


@pytest.mark.parametrize(
    ("kwargs", "param", "got"),
    [
        ({"temperature": 0.0}, "temperature", "0.0"),
        ({"temperature": -1.0}, "temperature", "-1.0"),
        ({"alpha": 1.5}, "alpha", "1.5"),
        ({"alpha": -0.1}, "alpha", "-0.1"),
        ({"alpha": True}, "alpha", "True"),
        ({"temperature": "3"}, "temperature", "'3'"),
    ],
)
def test_kdconfig_rejects_bad_values_with_one_message_format(kwargs, param, got):
    with pytest.raises(InvalidParameterError) as info:
        KDConfig(**kwargs)
    msg = str(info.value)
    assert msg.startswith(f"The '{param}' parameter of KDConfig must be ")
    assert msg.endswith(f"Got {got} instead.")


def test_kdconfig_error_is_a_value_error():
    with pytest.raises(ValueError):
        KDConfig(alpha=2.0)


# ----------------------------------------------------------------------------- loss


@pytest.mark.parametrize("temperature", [1.0, 3.0, 10.0])
def test_alpha_zero_is_cross_entropy(temperature):
    s, t = _logits(0), _logits(1)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    loss = hinton_kd_loss(s, t, y, KDConfig(temperature=temperature, alpha=0.0))
    assert torch.equal(loss, F.cross_entropy(s, y))


def test_alpha_zero_passes_label_smoothing_to_cross_entropy():
    s, t = _logits(0), _logits(1)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    loss = hinton_kd_loss(s, t, y, KDConfig(alpha=0.0), label_smoothing=0.1)
    assert torch.allclose(loss, F.cross_entropy(s, y, label_smoothing=0.1))
    assert not torch.allclose(loss, F.cross_entropy(s, y))


def test_alpha_one_is_the_soft_term_alone():
    s, t = _logits(2), _logits(3)
    y = torch.tensor([4, 3, 2, 1, 0, 0])
    loss = hinton_kd_loss(s, t, y, KDConfig(temperature=2.0, alpha=1.0))
    assert math.isclose(float(loss), float(soft_kl(s, t, 2.0)), rel_tol=1e-6)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_loss_is_convex_combination_of_ce_and_soft_term(alpha):
    s, t = _logits(4), _logits(5)
    y = torch.tensor([1, 1, 2, 3, 0, 4])
    cfg = KDConfig(temperature=3.0, alpha=alpha)
    expected = (1 - alpha) * float(F.cross_entropy(s, y)) + alpha * _reference_soft_term(s, t, 3.0)
    assert math.isclose(float(hinton_kd_loss(s, t, y, cfg)), expected, rel_tol=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0, 8.0])
def test_soft_kl_matches_formula_with_t_squared_factor(temperature):
    s, t = _logits(6), _logits(7)
    assert math.isclose(float(soft_kl(s, t, temperature)), _reference_soft_term(s, t, temperature), rel_tol=1e-5)


def test_t_squared_scaling_of_soft_term():
    # The same tempered distributions at T=1 and T=4 (logits scaled by 4): the
    # KL is identical, so the soft term differs exactly by the factor T² = 16.
    s, t = _logits(8), _logits(9)
    at_1 = float(soft_kl(s, t, 1.0))
    at_4 = float(soft_kl(4 * s, 4 * t, 4.0))
    assert at_1 > 0
    assert math.isclose(at_4, 16.0 * at_1, rel_tol=1e-5)


def test_soft_kl_is_not_symmetric_teacher_is_the_target():
    s, t = _logits(10), _logits(11)
    forward = float(soft_kl(s, t, 2.0))
    assert math.isclose(forward, _reference_soft_term(s, t, 2.0), rel_tol=1e-5)
    assert not math.isclose(forward, float(soft_kl(t, s, 2.0)), rel_tol=1e-3)


def test_soft_term_gradient_matches_tempered_softmax_difference():
    # d/ds [T² KL(p_t ‖ p_s)] = T (p_s − p_t) / batch: the T² factor keeps it O(1) in T.
    s = _logits(12).requires_grad_(True)
    t = _logits(13)
    temperature = 4.0
    soft_kl(s, t, temperature).backward()
    expected = temperature * (torch.softmax(s.detach() / temperature, 1) - torch.softmax(t / temperature, 1)) / s.shape[0]
    assert torch.allclose(s.grad, expected, atol=1e-6)


_logit_arrays = st.integers(1, 6).flatmap(
    lambda n: st.integers(2, 7).flatmap(
        lambda c: st.lists(
            st.floats(-30, 30, allow_nan=False, width=32), min_size=n * c, max_size=n * c
        ).map(lambda v: torch.tensor(v, dtype=torch.float32).reshape(n, c))
    )
)


@FAST
@given(logits=_logit_arrays, temperature=st.floats(0.1, 20.0), alpha=st.floats(0.0, 1.0))
@example(logits=torch.zeros(1, 2), temperature=1.0, alpha=1.0)
@example(logits=torch.tensor([[30.0, -30.0, 0.0]]), temperature=0.1, alpha=0.5)
def test_soft_term_is_zero_when_student_equals_teacher(logits, temperature, alpha):
    assert abs(float(soft_kl(logits, logits.clone(), temperature))) <= 1e-6
    y = torch.zeros(logits.shape[0], dtype=torch.long)
    loss = hinton_kd_loss(logits, logits.clone(), y, KDConfig(temperature=temperature, alpha=alpha))
    ce = F.cross_entropy(logits, y)
    assert math.isclose(float(loss), (1 - alpha) * float(ce), rel_tol=1e-5, abs_tol=1e-5)


@FAST
@given(
    seed=st.integers(0, 2**16),
    temperature=st.floats(0.2, 10.0),
    shift=st.floats(-50, 50, allow_nan=False),
)
def test_soft_term_nonnegative_and_shift_invariant(seed, temperature, shift):
    s, t = _logits(seed), _logits(seed + 1)
    base = float(soft_kl(s, t, temperature))
    assert base >= -1e-6
    # Softmax ignores a constant added to all logits of a row.
    shifted = float(soft_kl(s + shift, t - shift, temperature))
    assert math.isclose(base, shifted, rel_tol=1e-3, abs_tol=1e-4)


# ----------------------------------------------------------------------------- strategies and their table


HINTON = ("hinton", "hinton_code")


def test_distillers_table_names_both_hinton_variants_simkd_fitnets_and_crd():
    # SimKD: tests/test_simkd.py; FitNets and CRD: tests/test_distill_features.py
    assert DISTILLERS == {"hinton": HintonKD, "hinton_code": MWCodeKD, "simkd": SimKD, "fitnets": FitNetsKD,
                          "crd": CRDKD}
    for name in HINTON:
        d = make_distiller(name, temperature=2.0, teacher_weight=0.25)
        assert type(d) is DISTILLERS[name] and isinstance(d, Distiller)
        assert d.settings() == {"temperature": 2.0, "teacher_weight": 0.25}
        assert type(d)(**d.settings()).settings() == d.settings()
        assert not d.needs_features and list(d.parameters()) == []


@pytest.mark.parametrize("name", HINTON)
def test_hinton_variants_keep_the_student_as_it_is(name):
    d, student, teacher = make_distiller(name), torch.nn.Linear(2, 3), torch.nn.Linear(2, 3)
    assert d.wrap_student(student, teacher, (1, 1, 2)) is student
    d.bind(student, teacher)
    assert d.student_features == () and d.teacher_features == ()


def test_make_distiller_fills_defaults_and_normalizes_numbers():
    assert make_distiller("hinton").settings() == {"temperature": 3.0, "teacher_weight": 0.5}
    assert make_distiller("hinton_code", temperature=3, teacher_weight=1).settings() == {"temperature": 3.0,
                                                                                         "teacher_weight": 1.0}


def test_unknown_distiller_lists_the_known_ones():
    with pytest.raises(InvalidParameterError) as info:
        make_distiller("attention")
    msg = str(info.value)
    assert msg == ("The 'name' parameter of make_distiller must be one of 'hinton', 'hinton_code', 'simkd', "
                   "'fitnets', 'crd'. Got 'attention' instead.")


def test_unknown_distiller_parameter_lists_the_known_ones():
    with pytest.raises(InvalidParameterError) as info:
        make_distiller("hinton", alpha=0.5)
    assert str(info.value) == ("The 'params' parameter of make_distiller('hinton') must be keywords among temperature, "
                               "teacher_weight. Got 'alpha' instead.")


@pytest.mark.parametrize("name", HINTON)
@pytest.mark.parametrize(("kwargs", "param", "got"), [
    ({"temperature": 0.0}, "temperature", "0.0"),
    ({"teacher_weight": 1.5}, "teacher_weight", "1.5"),
    ({"teacher_weight": "0.5"}, "teacher_weight", "'0.5'"),
])
def test_distiller_settings_are_validated_with_one_message_format(name, kwargs, param, got):
    with pytest.raises(InvalidParameterError) as info:
        make_distiller(name, **kwargs)
    msg = str(info.value)
    assert msg.startswith(f"The '{param}' parameter of {DISTILLERS[name].__name__} must be ")
    assert msg.endswith(f"Got {got} instead.")


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize(("temperature", "weight"), [(3.0, 0.0), (3.0, 0.5), (1.0, 0.9), (4.0, 1.0)])
def test_hinton_distiller_is_exactly_hinton_kd_loss(temperature, weight, label_smoothing):
    s, t = _logits(20), _logits(21)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    d = make_distiller("hinton", temperature=temperature, teacher_weight=weight)
    expected = hinton_kd_loss(s, t, y, KDConfig(temperature, weight), label_smoothing=label_smoothing)
    assert torch.equal(d.loss(s, t, y, {}, {}, label_smoothing=label_smoothing), expected)


def test_hinton_code_loss_hand_computed():
    # Two classes, one example, label 0. Student logits (0, 0): p_s = (1/2, 1/2), CE = ln 2.
    # Teacher logits (ln 3, 0): p_t = (3/4, 1/4). T = 1: the soft targets are softmax(p):
    # q_t = softmax(3/4, 1/4) = (σ(1/2), σ(−1/2)), q_s = softmax(1/2, 1/2) = (1/2, 1/2).
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])
    y = torch.tensor([0])
    sig = 1 / (1 + math.exp(-0.5))
    kl = sig * math.log(sig / 0.5) + (1 - sig) * math.log((1 - sig) / 0.5)
    for w in (0.1, 0.5, 0.9):
        expected = (1 - w) * math.log(2.0) + w * kl
        loss = make_distiller("hinton_code", temperature=1.0, teacher_weight=w).loss(s, t, y, {}, {})
        assert math.isclose(float(loss), expected, rel_tol=1e-6)
    # T = 2: q_t = softmax(3/8, 1/8) = (σ(1/4), σ(−1/4)); the soft term carries the factor T² = 4.
    sig2 = 1 / (1 + math.exp(-0.25))
    kl2 = sig2 * math.log(sig2 / 0.5) + (1 - sig2) * math.log((1 - sig2) / 0.5)
    loss = make_distiller("hinton_code", temperature=2.0, teacher_weight=0.9).loss(s, t, y, {}, {})
    assert math.isclose(float(loss), 0.1 * math.log(2.0) + 0.9 * 4.0 * kl2, rel_tol=1e-6)


@pytest.mark.parametrize("weight", [0.1, 0.5, 0.9])
def test_hinton_code_matches_the_papers_formula_with_mirrored_alpha(weight):
    # The paper's code: alpha·CE + (1 − alpha)·T²·KL(softmax(p_t/T) ‖ softmax(p_s/T)), p = softmax(logits).
    s, t = _logits(30), _logits(31)
    y = torch.tensor([1, 0, 4, 2, 3, 3])
    alpha, temperature = 1 - weight, 3.0
    p_s, p_t = torch.softmax(s.double(), 1), torch.softmax(t.double(), 1)
    q_s, q_t = torch.softmax(p_s / temperature, 1), torch.softmax(p_t / temperature, 1)
    kl = float((q_t * (q_t.log() - q_s.log())).sum(1).mean())
    ce = float(F.cross_entropy(s.double(), y))
    expected = alpha * ce + (1 - alpha) * temperature**2 * kl
    loss = make_distiller("hinton_code", temperature=temperature, teacher_weight=weight).loss(s, t, y, {}, {})
    assert math.isclose(float(loss), expected, rel_tol=1e-5)


@FAST
@given(logits=_logit_arrays, temperature=st.floats(0.5, 10.0))
def test_hinton_code_soft_targets_are_near_uniform(logits, temperature):
    # Probabilities lie in [0, 1], so any two soft targets differ by a factor ≤ e^(1/T).
    q = torch.softmax(torch.softmax(logits.double(), 1) / temperature, 1)
    ratio = float((q.max(1).values / q.min(1).values).max())
    assert ratio <= math.exp(1.0 / temperature) * (1 + 1e-9)


def test_text_and_code_variants_differ():
    s, t = _logits(40), _logits(41)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    text = make_distiller("hinton", teacher_weight=0.9).loss(s, t, y, {}, {})
    code = make_distiller("hinton_code", teacher_weight=0.9).loss(s, t, y, {}, {})
    assert not math.isclose(float(text), float(code), rel_tol=1e-3)


@FAST
@given(logits=_logit_arrays, temperature=st.floats(0.1, 20.0), weight=st.floats(0.0, 1.0))
def test_code_variant_soft_term_is_zero_when_student_equals_teacher(logits, temperature, weight):
    y = torch.zeros(logits.shape[0], dtype=torch.long)
    loss = make_distiller("hinton_code", temperature=temperature, teacher_weight=weight).loss(
        logits, logits.clone(), y, {}, {})
    assert math.isclose(float(loss), (1 - weight) * float(F.cross_entropy(logits, y)), rel_tol=1e-5, abs_tol=1e-5)
