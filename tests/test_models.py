"""Tests for the model registry (compress.models.registry).

Every registered model is tested by being registered: the parametrized tests
run over ``list_models()``.
"""
from __future__ import annotations

import math

import pytest
import torch
import torchvision
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from analysis._validation import InvalidParameterError
import compress.models.registry as models
from compress.models.registry import create_model, list_models, model_info, register_model

NUM_CLASSES = 7
ALL = list_models()
CIFAR_STYLE = [n for n in ALL if not n.startswith("tv_")]
TORCHVISION = [n for n in ALL if n.startswith("tv_")]
# Over ~2 s per build + step on one core; kept in the default run.
SLOW = {"tv_vgg11_bn", "tv_resnet101", "tv_resnet152"}
# Full-width step on batch 2 instead of 4 (CPU time).
HEAVY = {"resnet50", "vgg19", "tv_resnet50", "tv_vgg11_bn", "tv_resnet101", "tv_resnet152",
         "tv_densenet161", "tv_densenet201", "tv_efficientnet_b4", "tv_efficientnet_b5"}
REQUIRED = {
    "lenet5", "resnet18", "resnet34", "resnet50", "vgg11", "vgg16", "vgg19",
    "mobilenet_v1", "mobilenet_v2", "tv_resnet18", "tv_resnet50", "tv_mobilenet_v2",
    "tv_vgg11_bn", "tv_resnet34", "tv_resnet101", "tv_resnet152", "tv_densenet161",
    "tv_densenet169", "tv_densenet201", *(f"tv_efficientnet_b{i}" for i in range(6)),
}
# (in_shape, width override?) per data set; digits uses the narrow ci-profile width.
CASES = {"digits": ((1, 8, 8), 0.25), "mnist": ((1, 28, 28), None), "cifar": ((3, 32, 32), None)}


def _params(names, slow=SLOW):
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


def _build(name, in_shape, seed=0, **overrides):
    """Build under ``seed`` without disturbing the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(name, NUM_CLASSES, in_shape, **overrides)


def _overrides(name, width):
    return {} if width is None or name.startswith("tv_") else {"width": width}


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- registry


def test_registry_lists_required_models_sorted():
    assert REQUIRED <= set(ALL)
    assert ALL == sorted(ALL)


@pytest.mark.parametrize("name", ALL)
def test_model_info_is_one_nonempty_line(name):
    info = model_info(name)
    assert info.strip() and "\n" not in info


def test_unknown_model_names_known_ones():
    with pytest.raises(InvalidParameterError, match="resnet1800") as err:
        create_model("resnet1800", 10, (3, 32, 32))
    assert "'resnet18'" in str(err.value) and "'tv_vgg11_bn'" in str(err.value)
    with pytest.raises(InvalidParameterError, match="'nope'") as err:
        model_info("nope")
    assert "'lenet5'" in str(err.value)


@pytest.mark.parametrize("name", CIFAR_STYLE)
def test_unknown_override_names_allowed_keys(name):
    with pytest.raises(InvalidParameterError) as err:
        create_model(name, 10, (3, 32, 32), depth=3)
    assert "'depth'" in str(err.value) and "'width'" in str(err.value)


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_take_only_a_width(name):
    with pytest.raises(InvalidParameterError) as err:
        create_model(name, 10, (3, 32, 32), depth=3)
    assert "'depth'" in str(err.value) and "'width'" in str(err.value)


@pytest.mark.parametrize("name", TORCHVISION)
def test_a_thin_torchvision_model_keeps_every_module_of_the_full_one(name):
    """width < 1: the same classes and module names (the code paths of the full model), fewer parameters."""
    with torch.device("meta"):
        full = create_model(name, 10, (3, 32, 32))
        thin = create_model(name, 10, (3, 32, 32), width=0.125)
    assert isinstance(thin, type(full))  # the same class (a subclass where torchvision fixes the widths)
    assert [(n, type(m).__name__) for n, m in thin.named_modules() if n] == \
           [(n, type(m).__name__) for n, m in full.named_modules() if n]
    assert list(thin.state_dict()) == list(full.state_dict())
    n_full, n_thin = (sum(p.numel() for p in m.parameters()) for m in (full, thin))
    assert n_thin < n_full / 10  # MobileNet-V2 keeps its 1,280-wide last layer and widths in multiples of 8


@pytest.mark.parametrize("name", TORCHVISION)
@pytest.mark.parametrize("in_shape", [(3, 32, 32), (1, 8, 8)])
def test_a_thin_torchvision_model_gives_logits_and_takes_a_step(name, in_shape):
    torch.manual_seed(0)
    model = create_model(name, 7, in_shape, width=0.0625)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    out = model(torch.randn(2, *in_shape))
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    opt.step()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10", None])
def test_bad_num_classes(bad):
    with pytest.raises(InvalidParameterError, match="'num_classes'"):
        create_model("lenet5", bad, (1, 8, 8))


@pytest.mark.parametrize(
    "bad", [(3, 32), (3, 32, 32, 1), (0, 8, 8), (1, 8, -1), (1.0, 8, 8), (True, 8, 8), "abc", 8]
)
def test_bad_in_shape(bad):
    with pytest.raises(InvalidParameterError, match="'in_shape'"):
        create_model("lenet5", 10, bad)


@pytest.mark.parametrize("bad", [0, -0.5, math.nan, math.inf, "1", True])
def test_bad_width(bad):
    with pytest.raises(InvalidParameterError, match="'width'"):
        create_model("resnet18", 10, (1, 8, 8), width=bad)


def test_in_shape_list_accepted_like_tuple():
    # TOML profiles give lists.
    a = _build("lenet5", [1, 8, 8])
    b = _build("lenet5", (1, 8, 8))
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_register_model_adds_a_testable_entry(monkeypatch):
    monkeypatch.setattr(models, "MODELS", dict(models.MODELS))

    @register_model
    def toy(*, num_classes, in_shape, hidden: int = 3):
        """A toy linear model."""
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), hidden),
                             nn.Linear(hidden, num_classes))

    assert "toy" in list_models() and model_info("toy") == "A toy linear model."
    assert create_model("toy", 4, (1, 2, 2), hidden=5)[1].out_features == 5
    with pytest.raises(InvalidParameterError, match="'hidden'"):
        create_model("toy", 4, (1, 2, 2), width=1.0)
    with pytest.raises(InvalidParameterError, match="already registered"):
        register_model(toy)

    def positional(num_classes, in_shape):
        """Takes positional arguments."""

    with pytest.raises(InvalidParameterError, match="keyword-only"):
        register_model(positional)
    assert "positional" not in list_models()


# --------------------------------------------------------------------------- every model


def _cases(names):
    """(name, case) for every model and data shape, except torchvision's paper-size models on ``mnist``: they are
    built for CIFAR (the paper profile's data) and checked on 8x8 digits (the smallest input); 28x28 adds nothing
    for them but seconds per model."""
    return [pytest.param(n, c, marks=[pytest.mark.slow] if n in SLOW else [], id=f"{n}-{c}") for n in names
            for c in CASES if not (n.startswith("tv_") and c == "mnist")]


@pytest.mark.parametrize(("name", "case"), _cases(ALL))
def test_forward_shape_and_one_sgd_step(name, case):
    in_shape, width = CASES[case]
    model = _build(name, in_shape, **_overrides(name, width))
    # Out-of-place activations: forward hooks keeping outputs must not see them overwritten.
    assert not any(getattr(m, "inplace", False) for m in model.modules())

    gen = torch.Generator().manual_seed(1)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, *in_shape, generator=gen))
    assert out.shape == (2, NUM_CLASSES) and torch.isfinite(out).all()

    model.train()
    batch = 2 if name in HEAVY and width is None else 4
    x = torch.randn(batch, *in_shape, generator=gen)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=gen)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    # Every parameter takes part in the forward pass (no dead modules).
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters())]
    assert sum(changed) >= 0.5 * len(changed)


@pytest.mark.parametrize("name", _params(ALL))
def test_init_is_determined_by_torch_seed(name):
    in_shape, width = CASES["digits"]
    kw = _overrides(name, width)
    a = _build(name, in_shape, seed=3, **kw).state_dict()
    b = _build(name, in_shape, seed=3, **kw).state_dict()
    c = _build(name, in_shape, seed=4, **kw).state_dict()
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("name", CIFAR_STYLE)
def test_width_scales_parameter_count(name):
    counts = [_n_params(_build(name, (3, 32, 32), width=w)) for w in (0.25, 0.5, 1.0)]
    assert counts[0] < counts[1] < counts[2]


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(CIFAR_STYLE),
    height=st.integers(1, 40),
    width_px=st.integers(1, 40),
    channels=st.sampled_from([1, 3]),
)
@example(name="vgg19", height=1, width_px=1, channels=1)
@example(name="lenet5", height=1, width_px=40, channels=3)
@example(name="mobilenet_v1", height=2, width_px=2, channels=1)
def test_any_input_size_gives_logits(name, height, width_px, channels):
    # The downsampling rule must never shrink a map to 0 pixels, whatever the input size.
    model = _build(name, (channels, height, width_px), width=0.125).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, channels, height, width_px))
    assert out.shape == (2, NUM_CLASSES)


# --------------------------------------------------------------------------- hand-computed cases


@pytest.mark.parametrize(
    ("name", "in_shape", "expected"),
    [
        # Classic LeNet-5 on padded MNIST: 156 + 2416 + 48120 + 10164 + 850.
        ("lenet5", (1, 28, 28), 61_706),
        ("lenet5", (3, 32, 32), 62_006),
        # CIFAR-10 counts of the widely used kuangliu/pytorch-cifar definitions.
        ("resnet18", (3, 32, 32), 11_173_962),
        ("resnet34", (3, 32, 32), 21_282_122),
        ("resnet50", (3, 32, 32), 23_520_842),
        ("vgg11", (3, 32, 32), 9_231_114),
        ("vgg16", (3, 32, 32), 14_728_266),
        ("vgg19", (3, 32, 32), 20_040_522),
    ],
)
def test_parameter_count_matches_reference(name, in_shape, expected):
    with torch.device("meta"):
        model = create_model(name, 10, in_shape)
    assert _n_params(model) == expected


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_names_match_torchvision(name):
    with torch.device("meta"):
        ours = create_model(name, 10, (3, 32, 32)).state_dict()
        theirs = getattr(torchvision.models, name)(num_classes=10).state_dict()
    assert ours.keys() == theirs.keys()
    assert {"layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.weight", "fc.weight"} <= ours.keys()
    differ = {k for k in ours if ours[k].shape != theirs[k].shape}
    assert differ == {"conv1.weight"}  # only the 3×3 stem differs from the 7×7 one


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_differ_from_reference_only_in_first_conv(name):
    builder = getattr(torchvision.models, name.removeprefix("tv_"))
    with torch.device("meta"):
        gray = create_model(name, 10, (1, 28, 28)).state_dict()
        rgb = create_model(name, 10, (3, 32, 32)).state_dict()
        reference = builder(weights=None, num_classes=10).state_dict()
    assert {k: v.shape for k, v in rgb.items()} == {k: v.shape for k, v in reference.items()}
    first = next(k for k, v in reference.items() if v.dim() == 4)
    differ = {k for k in gray if gray[k].shape != reference[k].shape}
    assert differ == {first} and gray[first].shape[1] == 1


def _stage_sizes(model, in_shape, stages):
    sizes = {}
    hooks = [model.get_submodule(s).register_forward_hook(
        lambda _m, _i, out, s=s: sizes.__setitem__(s, tuple(out.shape[-2:]))) for s in stages]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *in_shape))
    for h in hooks:
        h.remove()
    return [sizes[s] for s in stages]


@pytest.mark.parametrize(
    ("in_shape", "expected"),
    [
        ((3, 32, 32), [(32, 32), (16, 16), (8, 8), (4, 4)]),
        ((1, 28, 28), [(28, 28), (14, 14), (7, 7), (4, 4)]),
        ((1, 8, 8), [(8, 8), (4, 4), (2, 2), (1, 1)]),
        ((1, 2, 3), [(2, 3), (1, 2), (1, 2), (1, 2)]),  # stops once a dim is 1
    ],
)
def test_resnet_downsampling_rule(in_shape, expected):
    model = _build("resnet18", in_shape, width=0.125)
    assert _stage_sizes(model, in_shape, ["layer1", "layer2", "layer3", "layer4"]) == expected


@pytest.mark.parametrize(
    ("in_shape", "pools"), [((3, 32, 32), 5), ((1, 28, 28), 4), ((1, 8, 8), 3)]
)
def test_vgg_skips_pools_on_one_pixel_maps_keeping_indices(in_shape, pools):
    model = _build("vgg11", in_shape, width=0.125)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.features) == pools
    assert sum(isinstance(m, nn.Identity) for m in model.features) == 5 - pools
    reference = _build("vgg11", (in_shape[0], 32, 32), width=0.125)
    assert model.state_dict().keys() == reference.state_dict().keys()


@pytest.mark.parametrize(
    ("in_shape", "pools"), [((3, 32, 32), 3), ((1, 28, 28), 2), ((1, 8, 8), 1), ((1, 3, 40), 0)]
)
def test_densenet_skips_transition_pools_on_one_pixel_maps(in_shape, pools):
    # Stem quarters the input (ceil), each transition pool halves it (floor): 8 px → 2 → 1.
    with torch.device("meta"):
        model = create_model("tv_densenet169", 10, in_shape)
        reference = torchvision.models.densenet169(num_classes=10)
    kept = [isinstance(getattr(model.features, f"transition{i}").pool, nn.AvgPool2d) for i in (1, 2, 3)]
    assert kept == [True] * pools + [False] * (3 - pools)
    assert model.state_dict().keys() == reference.state_dict().keys()


def test_densenet_computes_torchvisions_forward_without_overwriting_its_features():
    in_shape = (3, 32, 32)
    model = _build("tv_densenet169", in_shape).eval()
    reference = torchvision.models.densenet169(num_classes=NUM_CLASSES).eval()
    reference.load_state_dict(model.state_dict())
    kept = {}
    model.features.register_forward_hook(lambda _m, _i, out: kept.setdefault("features", out.clone()))
    model.features.register_forward_hook(lambda _m, _i, out: kept.setdefault("seen", out))
    x = torch.randn(2, *in_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    # torchvision's forward applies an in-place ReLU to this output; ours leaves it as it was.
    assert torch.equal(kept["seen"], kept["features"]) and (kept["features"] < 0).any()


@pytest.mark.parametrize(
    ("in_shape", "paddings", "pooled"),
    [((3, 32, 32), (0, 0), (5, 5)), ((1, 28, 28), (2, 0), (5, 5)), ((1, 8, 8), (2, 2), (2, 2))],
)
def test_lenet_padding_follows_input_size(in_shape, paddings, pooled):
    model = _build("lenet5", in_shape)
    assert (model.conv1.padding[0], model.conv2.padding[0]) == paddings
    assert _stage_sizes(model, in_shape, ["pool2"]) == [pooled]
