"""The SH paper's per-layer pruning, its artifact kinds and its profile section (bad input stops before training)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from analysis._validation import InvalidParameterError
from compress.data.datasets import load_dataset
from compress.measure.accounting import count_parameters
from compress.prune.per_layer import (allocate, layer_mask, layer_masks, prunable_layers, remove_zeroed_units,
                                    sensitivity, weight_sparsity)
from compress.build.kinds import make_builders
from compress.build.recipes import distill_spec, quantize_spec, train_spec
from compress.build.workspace import model_from_payload, Workspace
from compress.models.registry import create_model
from compress.build.sh_recipes import (eval_jitter_spec, finetune_spec, gradcam_spec, layer_prune_spec, mean_drops,
                                 sensitivity_spec)
from compress.store.artifacts import ArtifactStore
from compress.training.loop import TrainConfig, accuracy, predict

SMALL = {"width": 0.0625, "fc_width": 32, "batch_norm": True, "min_map": 4}
ONE = TrainConfig(epochs=1, batch_size=128, lr=0.05)


def _model(seed: int = 0, **over) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("vgg11_fc", 10, (3, 8, 8), **{**SMALL, **over}).eval()


# --------------------------------------------------------------------------- masks, sensitivity, allocation


def test_unstructured_mask_zeroes_the_smallest_weights_and_structured_whole_rows():
    m = _model()
    conv = dict(m.named_modules())["features.4"]
    mask = layer_mask(conv, 0.5, "unstructured")
    assert int((mask == 0).sum()) == round(0.5 * conv.weight.numel())
    assert conv.weight.abs()[mask == 0].max() <= conv.weight.abs()[mask == 1].min()
    rows = layer_mask(conv, 0.5, "structured").reshape(conv.out_channels, -1)
    assert set(rows.sum(1).tolist()) == {0.0, float(rows.shape[1])}  # whole filters
    norms = conv.weight.detach().reshape(conv.out_channels, -1).norm(dim=1)
    assert norms[rows[:, 0] == 0].max() <= norms[rows[:, 0] == 1].min()  # by L2 norm


def test_structured_pruning_never_touches_the_output_layer():
    m = _model()
    with pytest.raises(InvalidParameterError, match="output layer"):
        layer_masks(m, {"classifier.6": 0.2}, "structured")


def test_sensitivity_restores_every_weight_and_has_no_structured_output_layer():
    m = _model()
    before = copy.deepcopy(m.state_dict())
    x, y = torch.randn(32, 3, 8, 8), torch.randint(0, 10, (32,))
    out = sensitivity(m, x, y, levels=(0.4, 0.9), method="structured")
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert out["classifier.6"] is None and len(out["features.0"]) == 2
    assert list(out) == [n for n, _ in prunable_layers(m)]


@pytest.mark.parametrize("arch, over, shape", [("vgg11_fc", SMALL, (3, 8, 8)), ("resnet18", {"width": 0.0625}, (1, 8, 8)),
                                               ("lenet5", {}, (1, 28, 28))])
@pytest.mark.parametrize("method", ["unstructured", "structured"])
def test_sensitivity_runs_the_unpruned_prefix_once_and_gives_the_whole_models_logits(arch, over, shape, method,
                                                                                      monkeypatch):
    """Staged evaluation (prefix once per layer and batch) gives the logits of pruning and running the whole model."""
    import compress.prune.per_layer as lp
    from compress.prune.per_layer import _run, _stages
    from compress.prune.masks import apply_masks

    seen = []
    monkeypatch.setattr(lp, "accuracy", lambda logits, y: seen.append(logits) or accuracy(logits, y))

    torch.manual_seed(0)
    m = create_model(arch, 10, shape, **over).eval()
    x, y = torch.randn(20, *shape), torch.randint(0, 10, (20,))
    with torch.no_grad():
        assert torch.equal(_run(_stages(m), x), m(x))
    levels = (0.4, 0.7, 0.9)
    sensitivity(m, x, y, levels=levels, method=method, batch_size=8)
    modules = dict(m.named_modules())
    expected = []
    for name, _ in prunable_layers(m):
        if method == "structured" and name == prunable_layers(m)[-1][0]:
            continue
        for level in levels:
            original = modules[name].weight.detach().clone()
            with torch.no_grad():
                apply_masks(m, {f"{name}.weight": layer_mask(modules[name], level, method)})
                expected.append(predict(m, x, batch_size=8))
                modules[name].weight.copy_(original)
    assert len(seen) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(seen, expected))


def test_allocation_reaches_the_overall_target_and_prunes_tolerant_layers_more():
    m = _model()
    layers = [n for n, _ in prunable_layers(m)]
    drops = {n: (10.0 if n == "classifier.0" else 1.0) for n in layers}
    ratios = allocate(m, drops, target=0.25, method="unstructured")
    assert weight_sparsity(m, layer_masks(m, ratios, "unstructured")) == pytest.approx(0.25, abs=1e-4)
    assert ratios["classifier.0"] < ratios["classifier.3"]
    structured = allocate(m, {n: 1.0 for n in layers[:-1]}, target=0.25, method="structured")
    assert "classifier.6" not in structured
    assert weight_sparsity(m, layer_masks(m, structured, "structured")) == pytest.approx(0.25, abs=0.02)


def test_allocation_refuses_an_unreachable_target_and_missing_layers():
    m = _model()
    convs = {n: 1.0 for n, mod in prunable_layers(m) if isinstance(mod, nn.Conv2d)}
    with pytest.raises(InvalidParameterError, match="target"):
        allocate(m, convs, target=0.95, method="structured", scope="conv", cap=0.5)
    with pytest.raises(InvalidParameterError, match="a drop for every layer"):
        allocate(m, {}, target=0.25, method="unstructured")


def test_removing_zeroed_units_shrinks_the_model_and_keeps_its_interface():
    m = _model()
    masks = layer_masks(m, {"features.4": 0.5, "classifier.0": 0.5}, "structured")
    removed = remove_zeroed_units(m, masks, torch.zeros(2, 3, 8, 8))
    assert count_parameters(removed) < count_parameters(m)
    assert dict(removed.named_modules())["features.4"].out_channels == dict(m.named_modules())["features.4"].out_channels // 2
    assert removed(torch.randn(4, 3, 8, 8)).shape == (4, 10)


def test_a_layer_name_the_model_does_not_have_is_named():
    with pytest.raises(InvalidParameterError, match="features.99"):
        layer_masks(_model(), {"features.99": 0.3}, "unstructured")


# --------------------------------------------------------------------------- spec constructors: bad input


def _base():
    return train_spec("vgg11_fc", "colour_digits", init_seed=0, seed=0, train=ONE, overrides=SMALL)


@pytest.mark.parametrize("make,match", [
    (lambda: layer_prune_spec(_base(), method="unstructured", target=1.0, allocation="uniform"), "target"),
    (lambda: layer_prune_spec(_base(), method="unstructured", target=-0.1, allocation="uniform"), "target"),
    (lambda: layer_prune_spec(_base(), method="random", target=0.2, allocation="uniform"), "method"),
    (lambda: layer_prune_spec(_base(), method="unstructured", target=0.2), "sensitivity"),
    (lambda: layer_prune_spec(_base(), method="unstructured", target=0.2, allocation="uniform", seed=0), "seed"),
    (lambda: sensitivity_spec(_base(), levels=(0.4, 1.2)), "levels"),
    (lambda: finetune_spec(_base(), finetune=ONE, seed=0, qat_bits=1), "qat_bits"),
    (lambda: finetune_spec(_base(), finetune=ONE, seed=0, qat_bits=8, qat_scope="attention"), "qat_scope"),
    (lambda: quantize_spec(_base(), "int3"), "scheme"),
    (lambda: quantize_spec(_base(), "int8", scope="linear"), "activations"),
    (lambda: eval_jitter_spec(_base(), jitter={"gamma": 0.2}), "gamma"),
    (lambda: eval_jitter_spec(_base(), jitter={"hue": 0.7}), "hue"),
    (lambda: distill_spec(_base(), seed=0, train=ONE, distiller="dkd"), "dkd"),
    (lambda: distill_spec(_base(), seed=0, train=ONE, distiller="fitnets", student_arch="vgg11_fc",
                          student_overrides=SMALL, distiller_params={"student_layer": "features.0",
                                                                     "teacher_layer": "features.15"}), "features"),
    (lambda: distill_spec(_base(), seed=0, train=ONE, distiller="fitnets", student_arch="vgg11_fc",
                          student_overrides=SMALL, distiller_params={"student_layer": "features.77",
                                                                     "teacher_layer": "features.15"}), "features.77"),
])
def test_spec_constructors_refuse_bad_input_before_any_work(make, match):
    with pytest.raises(InvalidParameterError, match=match):
        make()


# --------------------------------------------------------------------------- the kinds, through the store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ArtifactStore(tmp_path_factory.mktemp("sh"), make_builders(Workspace(device="cpu")))


@pytest.fixture(scope="module")
def data():
    return load_dataset("colour_digits", seed=0)


@pytest.mark.slow
def test_sh_kinds_build_through_the_store(store, data):
    base = _base()
    sens = sensitivity_spec(base, levels=(0.5, 0.9))
    payload = store.get(sens)
    assert payload["conv"][0] and not payload["conv"][-1]
    assert set(mean_drops(payload, "structured")) == set(payload["layers"][:-1])
    pruned = layer_prune_spec(base, method="structured", target=0.25, sensitivity=sens, finetune=ONE, seed=0)
    p = store.get(pruned)
    assert p["metrics"]["sparsity"] == pytest.approx(0.25, abs=0.02) and "masks" in p
    model = model_from_payload(p)
    base_model = model_from_payload(store.get(base))
    # only the output layer was fine-tuned: every other unmasked weight is the base's
    for name, w in model.state_dict().items():
        if name.startswith("classifier.6") or "running" in name or "num_batches" in name:
            continue
        mask = p["masks"].get(name)
        ref = base_model.state_dict()[name]
        assert torch.equal(w, ref * mask if mask is not None else ref), name
    cams = store.get(gradcam_spec(pruned, n_images=100))
    assert cams["maps"].shape == (100, 8, 8) and float(cams["maps"].max()) <= 1.0
    assert cams["map_size"] == [4, 4] and cams["layer"].startswith("features.")
    jit = store.get(eval_jitter_spec(base, jitter={}, jitter_seed=0))
    assert jit["clean_acc"] == pytest.approx(accuracy(predict(base_model, data.x_test), data.y_test))
    assert 0.0 <= jit["test_acc"] <= 100.0  # the jitter itself: tests/test_colour_data.py
    qat = store.get(finetune_spec(base, finetune=ONE, seed=0, qat_bits=4, qat_scope="linear"))
    w = qat["state_dict"]["classifier.0.weight"]
    scale = w.abs().amax(1, keepdim=True) / 7
    assert torch.allclose(w / scale, torch.round(w / scale), atol=1e-3)  # int4 grid per output channel


# --------------------------------------------------------------------------- the [sh] profile section


def _write(tmp_path, extra: str) -> str:
    base = '''
name = "t"
description = "t"
[train]
epochs = 1
[sh]
dataset = "colour_digits"
student = { arch = "vgg11_fc", overrides = { width = 0.0625, fc_width = 32, batch_norm = true, min_map = 4 } }
teachers = [
  { name = "vgg16", arch = "vgg16_fc", overrides = { width = 0.0625, fc_width = 32, batch_norm = true, min_map = 4 }, hint_layer = "features.24" },
  { name = "vgg19", arch = "vgg19_fc", overrides = { width = 0.0625, fc_width = 32, batch_norm = true, min_map = 4 }, hint_layer = "features.27" },
]
hint_student_layer = "features.15"
seeds = [0, 1]
'''
    path = tmp_path / "p.toml"
    lines = base.splitlines()
    for line in extra.splitlines():
        key = line.split("=")[0].strip()
        lines = [ln for ln in lines if ln.split("=")[0].strip() != key]
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_the_sh_section_loads(tmp_path):
    import fixtures.claims  # noqa: F401  (registers the sections)
    from fixtures.profile import load_profile

    sec = load_profile(_write(tmp_path, "")).section("sh")
    assert sec.target_sparsity == 0.25 and sec.seeds == (0, 1)


@pytest.mark.parametrize("extra,match", [
    ('dataset = "digits"', "3"),
    ('dataset = "imagenet"', "imagenet"),
    ('hint_student_layer = "features.0"', "features"),
    ('hint_student_layer = "features.99"', "features.99"),
    ('target_sparsity = 1.5', "target_sparsity"),
    ('sweep_levels = [0.0, 0.1, 0.25]', "0.5"),
    ('jitter = { gamma = 0.3 }', "gamma"),
    ('qat_scopes = ["attention"]', "qat_scopes"),
    ('student = { arch = "vgg12" }', "vgg12"),
])
def test_bad_sh_settings_stop_at_profile_load(tmp_path, extra, match):
    import fixtures.claims  # noqa: F401
    from fixtures.profile import load_profile
    from fixtures.schema import ProfileError

    with pytest.raises(ProfileError, match=match):
        load_profile(_write(tmp_path, extra))
