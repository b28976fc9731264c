"""Tests for the feature distillers of the SH paper: FitNets hints (FitNetsKD) and CRD (CRDKD), compress.training.distill."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from tinyproblems import blobs, net
from torch import nn

from analysis._validation import InvalidParameterError
from compress.training.callbacks import Distill
from compress.training.distill import (
    CRDKD,
    DISTILLERS,
    REGRESSORS,
    Distiller,
    FitNetsKD,
    HintonKD,
    MWCodeKD,
    SimKD,
    check_hint_pair,
    hint_shapes,
    make_distiller,
)
from compress.models.registry import create_model, list_models
from compress.training.loop import Callback, TrainConfig, train

SHAPES = {"digits": (1, 8, 8), "cifar": (3, 32, 32)}
#: Teacher → student pairs of the SH paper's families; those not (yet) registered are skipped.
PAIRS = [("vgg16", "vgg11"), ("vgg19", "vgg11"), ("vgg16_fc", "vgg11_fc"), ("vgg19_fc", "vgg11_fc"),
         ("tv_vgg16", "tv_vgg11"), ("tv_vgg19", "tv_vgg11"), ("tv_vgg11_bn", "vgg11"), ("tv_vgg11_bn", "tv_vgg11_bn")]
QUICK = TrainConfig(epochs=2, batch_size=16, lr=0.05, amp=False)


def _meta_model(name: str, in_shape, num_classes: int = 10) -> nn.Module:
    overrides = {} if name.startswith("tv_") else {"width": 0.25}
    with torch.device("meta"):
        return create_model(name, num_classes, in_shape, **overrides)


def _widening_conv(model: nn.Module) -> str:
    """Name of the first conv of ``features`` with the most output channels: VGG's conv 256→512 (×width)."""
    convs = [(n, m) for n, m in model.named_modules() if n.startswith("features.") and isinstance(m, nn.Conv2d)]
    widest = max(m.out_channels for _, m in convs)
    name, conv = next((n, m) for n, m in convs if m.out_channels == widest)
    assert conv.out_channels == 2 * conv.in_channels
    return name


def _skip_unregistered(*names: str) -> None:
    missing = [n for n in names if n not in list_models()]
    if missing:
        pytest.skip(f"not registered: {', '.join(missing)}")


# ----------------------------------------------------------------------------- FitNets: shapes before training


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize(("teacher", "student"), PAIRS)
def test_fitnets_regressor_maps_the_students_widening_conv_to_the_teachers(teacher, student, shape):
    _skip_unregistered(teacher, student)
    in_shape = SHAPES[shape]
    t, s = _meta_model(teacher, in_shape), _meta_model(student, in_shape)
    t_layer, s_layer = _widening_conv(t), _widening_conv(s)
    s_shape, t_shape = check_hint_pair(s, t, s_layer, t_layer, in_shape)
    assert (s_shape, t_shape) == hint_shapes(s, t, s_layer, t_layer, in_shape)
    assert s_shape[0] == s.get_submodule(s_layer).out_channels and t_shape[0] == t.get_submodule(t_layer).out_channels
    assert s_shape[1:] == t_shape[1:]
    for kind, k in zip(REGRESSORS, (1, 3)):
        d = FitNetsKD(s_layer, t_layer, regressor=kind)
        d.setup(s, t, torch.zeros(2, *in_shape, device="meta"))  # on the meta device: shapes only
        assert d.regressor.weight.shape == (t_shape[0], s_shape[0], k, k) and d.regressor.bias is not None
        assert d.regressor(torch.zeros(2, *s_shape, device="meta")).shape == (2, *t_shape)
        assert list(d.parameters()) == list(d.regressor.parameters())


def test_sh_paper_layers_17_and_11_are_torchvisions_first_512_convs_at_one_resolution():
    # "Layer 17 of VGG-16 and layer 11 of VGG-11": torchvision's features[17] and features[11], conv 256 → 512.
    _skip_unregistered("tv_vgg16", "tv_vgg11")
    in_shape = (3, 224, 224)
    t, s = _meta_model("tv_vgg16", in_shape, 1000), _meta_model("tv_vgg11", in_shape, 1000)
    assert (_widening_conv(t), _widening_conv(s)) == ("features.17", "features.11")
    assert check_hint_pair(s, t, "features.11", "features.17", in_shape) == ((512, 28, 28), (512, 28, 28))


def test_hint_shapes_on_real_models_restore_their_modes_and_draw_no_randomness():
    torch.manual_seed(0)
    t, s = create_model("vgg16", 10, (1, 8, 8), width=0.25).train(), create_model("vgg11", 10, (1, 8, 8), width=0.25)
    s.eval()
    s.features[0].train()
    modes = [m.training for m in s.modules()] + [m.training for m in t.modules()]
    state = torch.get_rng_state()
    stats = t.features[1].running_mean.clone()
    assert hint_shapes(s, t, "features.15", "features.24", (1, 8, 8)) == ((128, 1, 1), (128, 1, 1))
    assert [m.training for m in s.modules()] + [m.training for m in t.modules()] == modes
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(t.features[1].running_mean, stats)  # eval mode: BatchNorm statistics untouched


def test_check_hint_pair_names_an_unknown_layer_and_the_valid_ones():
    in_shape = SHAPES["digits"]
    t, s = _meta_model("vgg16", in_shape), _meta_model("vgg11", in_shape)
    with pytest.raises(InvalidParameterError) as info:
        check_hint_pair(s, t, "features.15", "features.99", in_shape)
    msg = str(info.value)
    assert msg.startswith("The 'teacher_layer' parameter of check_hint_pair must be the name of a module of the "
                          "teacher (one of features, features.0, features.1")
    assert msg.endswith("Got 'features.99' instead.")
    with pytest.raises(InvalidParameterError, match="'student_layer' parameter .* Got 'conv9' instead"):
        check_hint_pair(s, t, "conv9", "features.24", in_shape)


def test_check_hint_pair_names_both_shapes_when_spatial_sizes_differ():
    in_shape = SHAPES["cifar"]
    t, s = _meta_model("vgg16", in_shape), _meta_model("vgg11", in_shape)
    # vgg11 features.4: conv 16 → 32 at 16×16; vgg16 features.24: conv 64 → 128 at 4×4.
    with pytest.raises(InvalidParameterError) as info:
        check_hint_pair(s, t, "features.4", "features.24", in_shape)
    msg = str(info.value)
    assert "'features.4'" in msg and "(32, 16, 16)" in msg
    assert msg.endswith("Got ('features.24', (128, 4, 4)) instead.")


def test_check_hint_pair_rejects_an_output_that_is_no_feature_map():
    in_shape = SHAPES["digits"]
    t, s = _meta_model("vgg16", in_shape), _meta_model("vgg11", in_shape)
    with pytest.raises(InvalidParameterError, match=r"feature map \[N, C, H, W\].*Got \('classifier.0', \(10,\)\)"):
        check_hint_pair(s, t, "classifier.0", "features.24", in_shape)
    with pytest.raises(InvalidParameterError, match="'in_shape' parameter of hint_shapes"):
        hint_shapes(s, t, "features.15", "features.24", (8, 8))


# ----------------------------------------------------------------------------- FitNets: training


def _wide_teacher(seed: int = 7) -> nn.Module:
    """Conv(1 → 8) → BatchNorm → ReLU → Linear on blobs: a teacher with more channels than ``net``."""
    torch.manual_seed(seed)
    t = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 3))
    x, y = blobs()
    train(t, x, y, QUICK, seed=seed)
    return t.eval()


class _Snapshot(Callback):
    """Copies the distiller's parameters right after Distill built them (it runs after Distill)."""

    def __init__(self, distiller: Distiller):
        self.distiller, self.before = distiller, None

    def on_train_start(self, model, x, config) -> None:
        self.before = [p.detach().clone() for p in self.distiller.parameters()]


@pytest.mark.parametrize("regressor", REGRESSORS)
def test_fitnets_trains_its_regressor_with_the_student(regressor):
    x, y = blobs()
    teacher = _wide_teacher()
    d = FitNetsKD("0", "0", hint_weight=0.5, regressor=regressor)
    snap = _Snapshot(d)
    torch.manual_seed(11)
    res = train(net(0), x, y, QUICK, seed=0, callbacks=[Distill(d, teacher), snap])
    assert all(math.isfinite(v) for v in res.losses)
    k = 1 if regressor == "conv1x1" else 3
    assert d.regressor.weight.shape == (8, 4, k, k)  # net's conv has 4 channels, the teacher's 8
    assert len(snap.before) == 2
    for before, after in zip(snap.before, d.parameters()):
        assert not torch.equal(before, after)  # the optimizer trained the regressor


def test_fitnets_loss_is_ce_plus_weighted_mse_of_the_regressed_map():
    d = FitNetsKD("a", "b", hint_weight=0.5)
    torch.manual_seed(0)
    d.regressor = nn.Conv2d(4, 6, 1)
    g = torch.Generator().manual_seed(1)
    s, fs, ft = torch.randn(5, 3, generator=g), torch.randn(5, 4, 2, 2, generator=g), torch.randn(5, 6, 2, 2, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1])
    loss = d.loss(s, torch.zeros(5, 3), y, {"a": fs}, {"b": ft}, label_smoothing=0.1)
    expected = F.cross_entropy(s, y, label_smoothing=0.1) + 0.5 * ((d.regressor(fs) - ft) ** 2).mean()
    assert torch.allclose(loss, expected)
    d0 = FitNetsKD("a", "b", hint_weight=0.0)
    d0.regressor = d.regressor
    assert torch.equal(d0.loss(s, s, y, {"a": fs}, {"b": ft}), F.cross_entropy(s, y) + 0.0)


def test_fitnets_regressor_init_follows_the_global_rng():
    x, y = blobs(32)
    teacher, weights = _wide_teacher(), []
    for _ in range(2):
        d = FitNetsKD("0", "0")
        torch.manual_seed(5)
        train(net(0), x, y, TrainConfig(epochs=0), seed=0, callbacks=[Distill(d, teacher)])
        weights.append(d.regressor.weight.detach().clone())
    assert torch.equal(*weights)


def test_fitnets_rejects_a_mismatched_pair_when_training_starts():
    x, y = blobs(32)
    student = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(36, 3))
    with pytest.raises(InvalidParameterError) as info:
        train(student, x, y, QUICK, seed=0, callbacks=[Distill(FitNetsKD("0", "0"), _wide_teacher())])
    msg = str(info.value)
    assert msg.startswith("The 'teacher_layer' parameter of FitNetsKD must be") and "(4, 3, 3)" in msg
    assert msg.endswith("Got ('0', (8, 6, 6)) instead.")
    with pytest.raises(InvalidParameterError, match="'student_layer' parameter of FitNetsKD .* Got 'conv9'"):
        train(net(0), x, y, QUICK, seed=0, callbacks=[Distill(FitNetsKD("conv9", "0"), _wide_teacher())])


def test_fitnets_loss_before_setup_says_so():
    with pytest.raises(InvalidParameterError, match="call setup"):
        FitNetsKD("a", "b").loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]), {}, {})


# ----------------------------------------------------------------------------- CRD


def _mlp(seed: int, hidden: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(36, hidden), nn.ReLU(), nn.Linear(hidden, 3))


def _crd_run(seed: int = 0, epochs: int = 6, n: int = 96, **params) -> tuple[CRDKD, nn.Module, list[float]]:
    """A small MLP student against a fixed random MLP teacher; the loss is the CRD term alone (ce_weight 0)."""
    x, y = blobs(n)
    teacher, student = _mlp(100, 32).eval(), _mlp(1, 16)
    d = CRDKD(negatives=params.pop("negatives", 64), embed_dim=16, ce_weight=0.0, crd_weight=1.0,
              student_layer="2", teacher_layer="2", **params)
    torch.manual_seed(seed)
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=0.01, optimizer="adam", weight_decay=0.0, amp=False)
    res = train(student, x, y, cfg, seed=seed, callbacks=[Distill(d, teacher)])
    return d, student, res.losses


def test_crd_loss_falls_on_a_toy_problem():
    _, _, losses = _crd_run(epochs=6)  # 36 steps
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def test_crd_memory_banks_cover_the_training_set_and_stay_unit_norm():
    d, _, _ = _crd_run(epochs=1, n=96)
    for bank in (d.memory_s, d.memory_t):
        assert bank.shape == (96, 16)
        # One epoch visits every example, so every row has been updated (and renormalised).
        assert torch.allclose(bank.norm(dim=1), torch.ones(96), atol=1e-5)
    assert d.z.shape == (2,) and bool((d.z > 0).all())
    assert d.embed_s.in_features == 16 and d.embed_t.in_features == 32  # the hidden widths of student, teacher


def test_crd_banks_start_uniform_as_the_reference():
    d = CRDKD(embed_dim=12, student_layer="2", teacher_layer="2")
    s, t = _mlp(1, 16), _mlp(2, 32)
    d.bind(s, t)
    d.setup(s, t, torch.zeros(500, 1, 6, 6))
    stdv = 1 / math.sqrt(12 / 3)
    for bank in (d.memory_s, d.memory_t):
        assert bank.shape == (500, 12) and float(bank.abs().max()) <= stdv
        assert float(bank.min()) < -0.9 * stdv and float(bank.max()) > 0.9 * stdv


def test_crd_negatives_are_scaled_to_a_small_dataset():
    d, _, _ = _crd_run(epochs=1, n=48, negatives=4096)
    assert d.negatives == 4096 and d.negatives_used == 47 and d.n_data == 48
    assert d.scaling == "N scaled to the dataset: 4096 negatives per anchor → 47 (n − 1, n = 48 training examples)"
    assert d.settings()["negatives"] == 4096  # the setting is what was asked for
    d, _, _ = _crd_run(epochs=1, n=48, negatives=20)
    assert d.negatives_used == 20 and d.scaling is None


def test_crd_is_deterministic_under_a_fixed_seed():
    first, second = _crd_run(seed=3, epochs=2), _crd_run(seed=3, epochs=2)
    assert first[2] == second[2]
    assert torch.equal(first[0].memory_s, second[0].memory_s)
    assert all(torch.equal(a, b) for a, b in zip(first[1].state_dict().values(), second[1].state_dict().values()))
    assert _crd_run(seed=4, epochs=2)[2] != first[2]


def _reference_crd(v_s, v_t, memory_v1, memory_v2, y, idx, T, momentum, n_data):
    """RepDistiller's ContrastMemory.forward + ContrastLoss (crd/memory.py, crd/criterion.py), transcribed."""
    b, k1, d = idx.shape[0], idx.shape[1], v_s.shape[1]
    weight_v1 = torch.index_select(memory_v1, 0, idx.view(-1)).view(b, k1, d)
    out_v2 = torch.exp(torch.div(torch.bmm(weight_v1, v_t.view(b, d, 1)), T))
    weight_v2 = torch.index_select(memory_v2, 0, idx.view(-1)).view(b, k1, d)
    out_v1 = torch.exp(torch.div(torch.bmm(weight_v2, v_s.view(b, d, 1)), T))
    z_v1, z_v2 = (out_v1.mean() * n_data).item(), (out_v2.mean() * n_data).item()
    out_v1, out_v2 = torch.div(out_v1, z_v1).squeeze(2), torch.div(out_v2, z_v2).squeeze(2)

    def contrast_loss(x):
        m, pn, eps = x.size(1) - 1, 1 / float(n_data), 1e-7
        p_pos = x.select(1, 0)
        log_d1 = torch.div(p_pos, p_pos.add(m * pn + eps)).log_()
        p_neg = x.narrow(1, 1, m)
        log_d0 = torch.div(p_neg.clone().fill_(m * pn), p_neg.add(m * pn + eps)).log_()
        return -(log_d1.sum(0) + log_d0.view(-1, 1).sum(0)) / b

    loss = contrast_loss(out_v1) + contrast_loss(out_v2)
    with torch.no_grad():
        new = []
        for memory, v in ((memory_v1, v_s), (memory_v2, v_t)):
            pos = torch.index_select(memory, 0, y.view(-1)).mul(momentum).add(torch.mul(v, 1 - momentum))
            new.append(memory.clone().index_copy_(0, y, pos.div(pos.pow(2).sum(1, keepdim=True).pow(0.5))))
    return loss, new


def test_crd_matches_repdistillers_crd_loss_and_memory_update():
    g = torch.Generator().manual_seed(0)
    n, b = 40, 8
    s, t = _mlp(1, 16), _mlp(2, 32)
    d = CRDKD(negatives=10, embed_dim=6, temperature=0.1, momentum=0.5, crd_weight=0.8, ce_weight=1.0,
              student_layer="2", teacher_layer="2")
    d.bind(s, t)
    torch.manual_seed(9)
    d.setup(s, t, torch.randn(n, 1, 6, 6, generator=g))
    banks = d.memory_s.clone(), d.memory_t.clone()
    replay = torch.Generator().set_state(d._generator.get_state())
    index = torch.randperm(n, generator=g)[:b]
    f_s, f_t = torch.randn(b, 16, generator=g), torch.randn(b, 32, generator=g)
    logits, y = torch.randn(b, 3, generator=g), torch.randint(0, 3, (b,), generator=g)
    loss = d.loss(logits, logits, y, {"2": f_s}, {"2": f_t}, index=index)
    v_s, v_t = F.normalize(d.embed_s(f_s), dim=1), F.normalize(d.embed_t(f_t), dim=1)
    idx = torch.randint(0, n, (b, 11), generator=replay)
    idx[:, 0] = index
    crd, (m_s, m_t) = _reference_crd(v_s, v_t, *banks, index, idx, 0.1, 0.5, n)
    assert torch.allclose(loss, F.cross_entropy(logits, y) + 0.8 * crd, rtol=1e-5)
    assert torch.allclose(d.memory_s, m_s, atol=1e-6) and torch.allclose(d.memory_t, m_t, atol=1e-6)
    untouched = torch.ones(n, dtype=torch.bool)
    untouched[index] = False
    assert torch.equal(d.memory_s[untouched], banks[0][untouched])


def test_crd_uses_the_split_feature_module_by_default():
    in_shape = (1, 8, 8)
    torch.manual_seed(0)
    t, s = create_model("vgg16", 10, in_shape, width=0.25).eval(), create_model("vgg11", 10, in_shape, width=0.25)
    d = CRDKD(negatives=8, embed_dim=8)
    d.bind(s, t)
    assert d.student_features == ("features",) and d.teacher_features == ("features",)
    d.setup(s, t, torch.randn(20, *in_shape))
    assert d.embed_s.in_features == 128 and d.embed_t.in_features == 128  # pooled 512·0.25 channels


def test_crd_loss_needs_setup_and_index():
    d = CRDKD()
    with pytest.raises(InvalidParameterError, match="'index' parameter of CRDKD.loss"):
        d.loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]), {}, {})
    s, t = _mlp(1, 4), _mlp(2, 4)
    d = CRDKD(student_layer="2", teacher_layer="2")
    d.bind(s, t)
    with pytest.raises(InvalidParameterError, match="at least 2 training examples"):
        d.setup(s, t, torch.zeros(1, 1, 6, 6))


# ----------------------------------------------------------------------------- table, settings, the other strategies


def test_both_are_registered_and_their_settings_round_trip():
    assert DISTILLERS["fitnets"] is FitNetsKD and DISTILLERS["crd"] is CRDKD
    f = make_distiller("fitnets", student_layer="features.11", teacher_layer="features.17")
    assert f.settings() == {"student_layer": "features.11", "teacher_layer": "features.17", "hint_weight": 0.5,
                            "regressor": "conv1x1"}
    c = make_distiller("crd")
    assert c.settings() == {"negatives": 4096, "temperature": 0.07, "embed_dim": 128, "momentum": 0.5,
                            "crd_weight": 0.8, "ce_weight": 1.0, "student_layer": None, "teacher_layer": None}
    for d in (f, c, make_distiller("fitnets", student_layer="a", teacher_layer="b", hint_weight=2, regressor="conv3x3"),
              make_distiller("crd", negatives=16, temperature=0.5, embed_dim=8, momentum=0.0, crd_weight=1,
                             ce_weight=0, student_layer="x", teacher_layer="y")):
        rebuilt = type(d)(**d.settings())
        assert rebuilt.settings() == d.settings()
        assert all(type(v) is type(w) for v, w in zip(rebuilt.settings().values(), d.settings().values()))
    assert f.needs_features and not f.needs_index and c.needs_index


def test_make_distiller_rejects_unknown_parameters():
    with pytest.raises(InvalidParameterError) as info:
        make_distiller("crd", alpha=0.5)
    assert str(info.value) == ("The 'params' parameter of make_distiller('crd') must be keywords among negatives, "
                               "temperature, embed_dim, momentum, crd_weight, ce_weight, student_layer, teacher_layer. "
                               "Got 'alpha' instead.")
    with pytest.raises(InvalidParameterError, match="keywords among student_layer, teacher_layer, hint_weight, "
                                                    "regressor. Got 'weight' instead"):
        make_distiller("fitnets", student_layer="a", teacher_layer="b", weight=0.5)
    with pytest.raises(InvalidParameterError) as info:
        make_distiller("fitnets", hint_weight=0.5)
    assert str(info.value) == ("The 'params' parameter of make_distiller('fitnets') must be keywords including "
                               "student_layer, teacher_layer (no defaults). Got ('hint_weight',) instead.")


@pytest.mark.parametrize(("name", "kwargs", "param", "got"), [
    ("fitnets", {"student_layer": "", "teacher_layer": "b"}, "student_layer", "''"),
    ("fitnets", {"student_layer": "a", "teacher_layer": 3}, "teacher_layer", "3"),
    ("fitnets", {"student_layer": "a", "teacher_layer": "b", "hint_weight": -0.1}, "hint_weight", "-0.1"),
    ("fitnets", {"student_layer": "a", "teacher_layer": "b", "regressor": "linear"}, "regressor", "'linear'"),
    ("crd", {"negatives": 0}, "negatives", "0"),
    ("crd", {"negatives": 4.0}, "negatives", "4.0"),
    ("crd", {"temperature": 0.0}, "temperature", "0.0"),
    ("crd", {"embed_dim": True}, "embed_dim", "True"),
    ("crd", {"momentum": 1.0}, "momentum", "1.0"),
    ("crd", {"crd_weight": -1}, "crd_weight", "-1"),
    ("crd", {"ce_weight": "1"}, "ce_weight", "'1'"),
    ("crd", {"student_layer": ""}, "student_layer", "''"),
])
def test_bad_settings_are_rejected_with_one_message_format(name, kwargs, param, got):
    with pytest.raises(InvalidParameterError) as info:
        make_distiller(name, **kwargs)
    msg = str(info.value)
    assert msg.startswith(f"The '{param}' parameter of {DISTILLERS[name].__name__} must be ")
    assert msg.endswith(f"Got {got} instead.")


@pytest.mark.parametrize("distiller", [HintonKD(), MWCodeKD(), SimKD()])
def test_the_other_strategies_setup_does_nothing_and_draws_no_randomness(distiller):
    state = torch.get_rng_state()
    before = dict(distiller.state_dict())
    distiller.setup(net(0), net(1), torch.zeros(4, 1, 6, 6))
    state_after_nets = torch.get_rng_state()
    torch.set_rng_state(state)
    net(0), net(1)
    assert torch.equal(torch.get_rng_state(), state_after_nets)  # only the two nets drew
    assert dict(distiller.state_dict()) == before and list(distiller.parameters()) == []
    assert not distiller.needs_index
