"""Tests for compress.measure.cka: properties, an independent reference, batching, hooks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from analysis._validation import InvalidParameterError
from compress.measure.cka import (
    DEFAULT_LAYER_TYPES,
    MinibatchCKA,
    center_gram,
    cka_matrix,
    extract_features,
    gram_linear,
    layerwise_cka,
    linear_cka,
)

FAST = settings(max_examples=25, deadline=None)


# --------------------------------------------------------------------------
# Independent reference (numpy), written from the formulas, not from compress.measure.cka
# --------------------------------------------------------------------------


def ref_hsic_biased(k: np.ndarray, l: np.ndarray) -> float:
    """Kornblith et al. (2019), eq. 3: HSIC = tr(K H L H) / (n - 1)^2."""
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ l @ h)) / (n - 1) ** 2


def ref_hsic_unbiased(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, with K~, L~ the Gram matrices with zeroed diagonals."""
    n = k.shape[0]
    kt = k - np.diag(np.diag(k))
    lt = l - np.diag(np.diag(l))
    one = np.ones(n)
    term1 = np.trace(kt @ lt)
    term2 = (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (one @ kt @ lt @ one)
    return float(term1 + term2 - term3) / (n * (n - 3))


def ref_cka(x: np.ndarray, y: np.ndarray, debiased: bool = False) -> float:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    k, l = x @ x.T, y @ y.T
    hsic = ref_hsic_unbiased if debiased else ref_hsic_biased
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def random_pair(seed: int, n: int, p: int, q: int, *, shared: float = 1.0, offset: bool = True):
    """X and a Y that shares signal with X (so CKA is not near 0), with varied scale and offset."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p)) * 10.0 ** rng.uniform(-2, 2) + offset * rng.uniform(-5, 5)
    y = shared * (x @ rng.standard_normal((p, q))) + rng.standard_normal((n, q))
    return x, y


def random_orthogonal(seed: int, p: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((p, p)))
    return q * np.sign(np.diag(r))


dims = st.tuples(st.integers(2, 40), st.integers(1, 12), st.integers(1, 12))
seeds = st.integers(0, 2**32 - 1)


# --------------------------------------------------------------------------
# properties of linear_cka
# --------------------------------------------------------------------------


@FAST
@given(seed=seeds, dims=dims, debiased=st.booleans())
@example(seed=0, dims=(2, 1, 1), debiased=False)
@example(seed=0, dims=(4, 1, 1), debiased=True)
def test_self_similarity_is_one(seed, dims, debiased):
    n, p, _ = dims
    n = max(n, 4) if debiased else n
    x, _ = random_pair(seed, n, p, 1)
    assert linear_cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-9)


@FAST
@given(seed=seeds, dims=dims, debiased=st.booleans())
def test_symmetric(seed, dims, debiased):
    n, p, q = dims
    n = max(n, 4) if debiased else n
    x, y = random_pair(seed, n, p, q)
    assert linear_cka(x, y, debiased=debiased) == pytest.approx(linear_cka(y, x, debiased=debiased), abs=1e-12)


@FAST
@given(seed=seeds, dims=dims, scale=st.floats(1e-3, 1e3), shift=st.floats(-100, 100), debiased=st.booleans())
def test_invariant_to_orthogonal_transform_isotropic_scaling_and_shift(seed, dims, scale, shift, debiased):
    n, p, q = dims
    n = max(n, 4) if debiased else n
    x, y = random_pair(seed, n, p, q)
    base = linear_cka(x, y, debiased=debiased)
    rotated = x @ random_orthogonal(seed + 1, p)
    assert linear_cka(rotated, y, debiased=debiased) == pytest.approx(base, abs=1e-8)
    assert linear_cka(scale * x, y, debiased=debiased) == pytest.approx(base, abs=1e-8)
    assert linear_cka(x + shift, y, debiased=debiased) == pytest.approx(base, abs=1e-8)


@FAST
@given(seed=seeds, dims=dims, shared=st.floats(0.0, 2.0))
def test_biased_in_unit_interval_debiased_in_symmetric_interval(seed, dims, shared):
    n, p, q = dims
    x, y = random_pair(seed, max(n, 4), p, q, shared=shared)
    biased = linear_cka(x, y)
    debiased = linear_cka(x, y, debiased=True)
    assert -1e-12 <= biased <= 1 + 1e-12
    assert -1 - 1e-12 <= debiased <= 1 + 1e-12


@FAST
@given(seed=seeds, dims=dims, debiased=st.booleans())
@example(seed=1, dims=(4, 3, 2), debiased=True)
@example(seed=2, dims=(2, 3, 2), debiased=False)
def test_matches_independent_reference(seed, dims, debiased):
    n, p, q = dims
    n = max(n, 4) if debiased else n
    # no offset: the uncentered textbook formula loses digits to a large mean (ours centers first)
    x, y = random_pair(seed, n, p, q, offset=False)
    assert linear_cka(x, y, debiased=debiased) == pytest.approx(ref_cka(x, y, debiased), rel=1e-8, abs=1e-10)


def test_reference_on_hand_computed_case():
    # x = [1, -1, 0, 0]ᵀ and y = [1, 1, -1, -1]ᵀ are centered and orthogonal: CKA is exactly 0;
    # y2 = [1, -1, 1, -1] overlaps x: <x, y2>² / (|x|² |y2|²) = 4 / (2 · 4) = 0.5.
    x = np.array([[1.0], [-1.0], [0.0], [0.0]])
    assert linear_cka(x, np.array([[1.0], [1.0], [-1.0], [-1.0]])) == pytest.approx(0.0, abs=1e-15)
    assert linear_cka(x, np.array([[1.0], [-1.0], [1.0], [-1.0]])) == pytest.approx(0.5, abs=1e-15)
    assert ref_cka(x, np.array([[1.0], [-1.0], [1.0], [-1.0]])) == pytest.approx(0.5, abs=1e-15)


def test_debiased_close_to_biased_for_large_n():
    x, y = random_pair(7, 3000, 5, 4, shared=0.5)
    biased, debiased = linear_cka(x, y), linear_cka(x, y, debiased=True)
    assert abs(biased - debiased) < 0.01
    # and with few examples and many features the biased estimate is inflated (the reason for debiasing)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((20, 200)), rng.standard_normal((20, 200))
    assert linear_cka(a, b) > 0.5 > abs(linear_cka(a, b, debiased=True))


def test_center_gram_matches_reference_centering():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 4))
    k = x @ x.T
    h = np.eye(9) - 1 / 9
    np.testing.assert_allclose(center_gram(k).numpy(), h @ k @ h, atol=1e-12)
    y = rng.standard_normal((9, 3))
    l = y @ y.T
    u_k, u_l = center_gram(k, unbiased=True).numpy(), center_gram(l, unbiased=True).numpy()
    assert np.all(np.diag(u_k) == 0)
    assert np.sum(u_k * u_l) / (9 * 6) == pytest.approx(ref_hsic_unbiased(k, l), rel=1e-10)
    np.testing.assert_allclose(gram_linear(torch.from_numpy(x)).numpy(), k, atol=1e-12)


def test_numpy_float32_and_4d_inputs_accepted():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((10, 2, 3, 3)).astype(np.float32)
    y = rng.standard_normal((10, 5))
    expected = ref_cka(x.reshape(10, -1), y)
    assert linear_cka(x, torch.from_numpy(y)) == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------


def test_different_lengths_error_names_both():
    with pytest.raises(InvalidParameterError, match=r"'y'.*\(100\).*99 examples"):
        linear_cka(np.ones((100, 3)), np.ones((99, 3)))
    with pytest.raises(InvalidParameterError, match=r"\(8\).*7 examples in feats_b\[1\]"):
        cka_matrix([np.random.rand(8, 3)], [np.random.rand(8, 3), np.random.rand(7, 3)])


def test_debiased_needs_four_examples():
    x = np.random.default_rng(0).standard_normal((3, 2))
    with pytest.raises(InvalidParameterError, match="at least 4 examples"):
        linear_cka(x, x, debiased=True)
    assert linear_cka(x, x) == pytest.approx(1.0)


def test_constant_features_raise_naming_the_input():
    x = np.random.default_rng(0).standard_normal((6, 3))
    with pytest.raises(InvalidParameterError, match="'y'.*constant"):
        linear_cka(x, np.full((6, 3), 0.1))  # 0.1 is inexact in binary: rounding must not pass as signal
    with pytest.raises(InvalidParameterError, match="'x'.*constant"):
        linear_cka(np.zeros((6, 3)), x, debiased=True)
    with pytest.raises(InvalidParameterError, match=r"'feats_b\[1\]'.*constant"):
        cka_matrix([x], [x, np.full((6, 2), 3.7)])


def test_non_finite_and_wrong_types_raise():
    x = np.random.default_rng(0).standard_normal((6, 3))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InvalidParameterError, match="finite"):
        linear_cka(x, bad)
    with pytest.raises(InvalidParameterError, match="'debiased'"):
        linear_cka(x, x, debiased=1)
    with pytest.raises(InvalidParameterError, match="sequence of per-layer arrays"):
        cka_matrix(torch.from_numpy(x), [x])
    with pytest.raises(InvalidParameterError, match="symmetric"):
        center_gram(np.arange(16.0).reshape(4, 4))


# --------------------------------------------------------------------------
# cka_matrix
# --------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(seed=seeds, n=st.integers(4, 24), debiased=st.booleans())
def test_cka_matrix_entries_equal_pairwise_linear_cka(seed, n, debiased):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 3))
    feats_a = [base @ rng.standard_normal((3, 5)) + rng.standard_normal((n, 5)), rng.standard_normal((n, 2, 2, 2))]
    feats_b = [torch.from_numpy(base), rng.standard_normal((n, 7)), rng.standard_normal((n, 1))]
    matrix = cka_matrix(feats_a, feats_b, debiased=debiased, device="cpu")
    assert matrix.shape == (2, 3)
    for i, a in enumerate(feats_a):
        for j, b in enumerate(feats_b):
            assert float(matrix[i, j]) == pytest.approx(linear_cka(a, b, debiased=debiased), abs=1e-10)


def test_cka_matrix_of_a_sequence_with_itself_has_unit_diagonal_and_is_symmetric():
    rng = np.random.default_rng(5)
    feats = [rng.standard_normal((30, d)) for d in (2, 5, 9)]
    m = cka_matrix(feats, feats, device="cpu")
    np.testing.assert_allclose(torch.diagonal(m).numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(m.numpy(), m.T.numpy(), atol=1e-12)
    # the shortcut for `feats_b is feats_a` gives what a copy gives
    np.testing.assert_allclose(m.numpy(), cka_matrix(feats, list(feats), device="cpu").numpy(), atol=1e-12)


# --------------------------------------------------------------------------
# MinibatchCKA
# --------------------------------------------------------------------------


def _minibatch(feats_a, feats_b, batch):
    n = len(feats_a[0])
    mb = MinibatchCKA(len(feats_a), len(feats_b), device="cpu")
    for s in range(0, n, batch):
        mb.update([f[s : s + batch] for f in feats_a], [f[s : s + batch] for f in feats_b])
    return mb.compute().numpy()


def test_minibatch_equals_ratio_of_mean_per_batch_unbiased_hsic():
    x, y = random_pair(11, 40, 4, 3)
    batches = [slice(s, s + 8) for s in range(0, 40, 8)]
    hsic = lambda a, b: ref_hsic_unbiased(a @ a.T, b @ b.T)  # noqa: E731
    xy = np.mean([hsic(x[s], y[s]) for s in batches])
    xx = np.mean([hsic(x[s], x[s]) for s in batches])
    yy = np.mean([hsic(y[s], y[s]) for s in batches])
    assert _minibatch([x], [y], 8)[0, 0] == pytest.approx(xy / np.sqrt(xx * yy), rel=1e-9)


def test_minibatch_converges_to_full_batch_unbiased_value():
    errors = {m: [] for m in (16, 128, 512, 1024)}
    for seed in range(6):
        x, y = random_pair(seed, 1024, 6, 4)
        full = linear_cka(x, y, debiased=True)
        for m in errors:
            errors[m].append(abs(_minibatch([x], [y], m)[0, 0] - full))
    mean_error = {m: float(np.mean(e)) for m, e in errors.items()}
    assert mean_error[16] > mean_error[128] > mean_error[512] > mean_error[1024]
    assert mean_error[1024] < 1e-12  # one batch of everything is the full-batch estimator


def test_minibatch_matrix_matches_per_pair_minibatch():
    rng = np.random.default_rng(2)
    feats_a = [rng.standard_normal((32, d)) for d in (3, 6)]
    feats_b = [feats_a[0] @ rng.standard_normal((3, 4)), rng.standard_normal((32, 2, 2))]
    matrix = _minibatch(feats_a, feats_b, 8)
    for i, a in enumerate(feats_a):
        for j, b in enumerate(feats_b):
            assert matrix[i, j] == pytest.approx(_minibatch([a], [b], 8)[0, 0], abs=1e-12)


def test_minibatch_smallest_batch_is_finite_and_smaller_raises():
    x, y = random_pair(3, 16, 3, 3)
    result = _minibatch([x, y], [y], 4)
    assert np.all(np.isfinite(result))
    assert result[1, 0] == pytest.approx(1.0, abs=1e-12)
    mb = MinibatchCKA(1, 1, device="cpu")
    with pytest.raises(InvalidParameterError, match="at least 4 examples"):
        mb.update([x[:3]], [y[:3]])
    with pytest.raises(InvalidParameterError, match="sequence of 1 layers"):
        mb.update([x, x], [y])
    with pytest.raises(RuntimeError, match="update"):
        mb.compute()


def test_minibatch_constant_in_one_batch_is_fine_constant_everywhere_raises():
    x, y = random_pair(4, 16, 3, 3)
    x_partly_constant = x.copy()
    x_partly_constant[:8] = 1.0
    result = _minibatch([x_partly_constant], [y], 8)
    assert np.isfinite(result[0, 0])
    with pytest.raises(InvalidParameterError, match=r"feats_a\[0\].*constant"):
        _minibatch([np.ones((16, 2))], [y], 8)


# --------------------------------------------------------------------------
# extract_features / layerwise_cka
# --------------------------------------------------------------------------


class _Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def _small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 5),
    )


def _all_hooks_empty(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def test_extract_features_values_shapes_and_batching():
    net = _small_net()
    x = torch.randn(10, 3, 6, 6)
    feats = extract_features(net, x, ["0", "1", "4"], batch_size=3)
    assert list(feats) == ["0", "1", "4"]
    assert feats["0"].shape == (10, 4 * 36) and feats["4"].shape == (10, 5)
    net.eval()
    with torch.no_grad():
        expected_bn = net[1](net[0](x)).flatten(1)
        expected_out = net(x)
    # bn output recorded before the in-place ReLU that follows it
    torch.testing.assert_close(feats["1"], expected_bn)
    assert (feats["1"] < 0).any()
    torch.testing.assert_close(feats["4"], expected_out)
    assert _all_hooks_empty(net)


def test_extract_features_restores_training_mode_and_accepts_numpy():
    net = _small_net().train()
    feats = extract_features(net, np.random.default_rng(0).standard_normal((4, 3, 6, 6)), ["4"])
    assert net.training and feats["4"].dtype == torch.float32


def test_all_selects_conv_bn_linear_of_resnet18():
    from torchvision.models import resnet18

    model = resnet18(num_classes=10)
    feats = extract_features(model, torch.randn(2, 3, 32, 32), "all", batch_size=2)
    expected = [n for n, m in model.named_modules() if isinstance(m, DEFAULT_LAYER_TYPES)]
    assert list(feats) == expected and len(expected) == 41  # 20 conv, 20 bn, fc
    assert _all_hooks_empty(model)


def test_hooks_removed_after_exception_in_forward():
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), _Boom())
    with pytest.raises(RuntimeError, match="boom"):
        extract_features(net, torch.randn(4, 3), ["0", "1"])
    assert _all_hooks_empty(net)
    assert net.training  # restored


def test_unknown_layer_name_lists_valid_names():
    net = _small_net()
    with pytest.raises(InvalidParameterError, match=r"'layer_names'.*valid: '0', '1', '2', '3', '4'.*'nope'"):
        extract_features(net, torch.randn(2, 3, 6, 6), ["0", "nope"])
    assert _all_hooks_empty(net)


def test_module_called_twice_is_rejected():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.relu(x) - 1)

    model = Twice()
    with pytest.raises(InvalidParameterError, match="called once"):
        extract_features(model, torch.randn(4, 3), ["relu"])
    assert _all_hooks_empty(model)


def test_layerwise_cka_full_and_minibatch():
    net_a = _small_net()
    torch.manual_seed(1)
    net_b = _small_net()
    net_b[4].reset_parameters()
    x = torch.randn(32, 3, 6, 6)
    names = ["0", "1", "4"]
    self_cka = layerwise_cka(net_a, net_a, x, names, device="cpu")
    np.testing.assert_allclose(torch.diagonal(self_cka).numpy(), 1.0, atol=1e-9)

    fa = extract_features(net_a, x, names)
    fb = extract_features(net_b, x, names)
    full = layerwise_cka(net_a, net_b, x, names, debiased=True, device="cpu")
    torch.testing.assert_close(full, cka_matrix(fa, fb, debiased=True, device="cpu"))

    mini = layerwise_cka(net_a, net_b, x, names, debiased=True, batch_size=8, device="cpu")
    np.testing.assert_allclose(mini.numpy(), _minibatch(list(fa.values()), list(fb.values()), 8), atol=1e-10)
    with pytest.raises(InvalidParameterError, match="'debiased'"):
        layerwise_cka(net_a, net_b, x, names, batch_size=8, device="cpu")
    assert _all_hooks_empty(net_a) and _all_hooks_empty(net_b)


def test_normalized_grams_give_the_same_cka_as_cka_matrix():
    from compress.measure.cka import cka_matrix, normalized_grams

    g = torch.Generator().manual_seed(0)
    a = [torch.randn(40, 7, generator=g), torch.randn(40, 3, generator=g)]
    b = [torch.randn(40, 5, generator=g), a[0] @ torch.randn(7, 7, generator=g)]
    ga, gb = normalized_grams(a, device="cpu"), normalized_grams(b, device="cpu")
    assert torch.allclose(ga @ gb.T, cka_matrix(a, b, device="cpu"), atol=1e-12)
    assert torch.allclose(torch.linalg.vector_norm(ga, dim=1), torch.ones(2, dtype=ga.dtype))
