"""Tests for the MH paper's artifacts in compress.build.recipes: SimKD students built by the store, fine-tuned weight
pruning and conv-only channel pruning of them, on the embedded 8×8 digits with tiny ResNets."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from tinyproblems import blobs
from torch import nn

from analysis._validation import InvalidParameterError
import compress.models.registry as models
from compress.build.kinds import label, make_builders
from compress.build.recipes import channel_prune_spec, distill_spec, eval_spec, prune_spec, quantize_spec, train_spec
from compress.build.workspace import model_from_payload, Workspace
from compress.measure.accounting import count_parameters
from compress.models.registry import create_model
from compress.prune.hold import HoldMasks
from compress.prune.structured import channel_granularity, physically_remove
from compress.prune.unstructured import l1_unstructured, prunable_weights
from compress.runtime.numerics import cpu_build
from compress.store.artifacts import ArtifactStore
from compress.store.files import read_artifact_header
from compress.store.spec import STORE_FORMAT_VERSION
from compress.training.loop import TrainConfig, accuracy, predict, train
from compress.training.simkd import SimKDStudent, simkd_student

DATA_OPTIONS = {"test_fraction": 0.7}
WIDTH = {"width": 0.125}
ONE_EPOCH = TrainConfig(epochs=1, batch_size=32, lr=0.01)
NO_EPOCHS = dataclasses.replace(ONE_EPOCH, epochs=0)
#: Two epochs reach ~75 % test accuracy: a teacher whose features mean something.
TEACHER = train_spec("resnet34", "digits", init_seed=0, seed=0, train=TrainConfig(epochs=2, batch_size=32, lr=0.02),
                     overrides=WIDTH, data_options=DATA_OPTIONS)
LEVELS = [i / 10 for i in range(10)]  # the MH paper's 0 %, 10 %, …, 90 %


def _simkd(train: TrainConfig = ONE_EPOCH):
    return distill_spec(TEACHER, seed=1, train=train, distiller="simkd", distiller_params={"bottleneck": 2},
                        student_arch="resnet18", student_overrides=WIDTH, init_seed=3)


SIMKD = _simkd()
CHANNEL = channel_prune_spec(SIMKD, retained_fraction=0.5, finetune=ONE_EPOCH, seed=2, layers="conv")


def _state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ArtifactStore(tmp_path_factory.mktemp("store"), make_builders(Workspace(device="cpu")))


@pytest.fixture(scope="module")
def data():
    return Workspace(device="cpu").dataset(TEACHER)


# ----------------------------------------------------------------------------- SimKD through the store


def test_simkd_student_starts_from_its_init_seed_then_the_projector_then_the_teachers_head(store):
    """Declared: student weights as ``_init_model(init_seed)``; projector drawn next in the same seeded stream."""
    untrained = store.get(_simkd(NO_EPOCHS))["state_dict"]
    teacher = model_from_payload(store.get(TEACHER))
    torch.manual_seed(3)
    expected = simkd_student(create_model("resnet18", 10, (1, 8, 8), **WIDTH), teacher, (1, 8, 8), bottleneck=2)
    assert _state_equal(untrained, expected.state_dict())
    # The encoder is exactly the initial model of a train spec with that init seed (its own head dropped).
    plain = store.get(train_spec("resnet18", "digits", init_seed=3, seed=0, train=NO_EPOCHS, overrides=WIDTH,
                                 data_options=DATA_OPTIONS))["state_dict"]
    encoder = {k.removeprefix("encoder."): v for k, v in untrained.items() if k.startswith("encoder.")}
    assert encoder and _state_equal(encoder, {k: v for k, v in plain.items() if not k.startswith("fc.")})


def test_simkd_training_leaves_the_teachers_head_frozen_and_bit_identical(store):
    payload, teacher = store.get(SIMKD), store.get(TEACHER)
    assert payload["simkd"] == {"teacher_arch": "resnet34", "teacher_overrides": WIDTH, "bottleneck": 2}
    assert payload["arch"] == "resnet18" and payload["overrides"] == WIDTH
    head = {k.removeprefix("head."): v for k, v in payload["state_dict"].items() if k.startswith("head.")}
    assert set(head) == {"fc.weight", "fc.bias"}
    assert all(torch.equal(v, teacher["state_dict"][k]) for k, v in head.items())
    # The head has no gradient (the optimizer never sees it); encoder and projector were trained.
    model = model_from_payload(payload)
    assert not any(p.requires_grad for p in model.head.parameters())
    untrained = store.get(_simkd(NO_EPOCHS))["state_dict"]
    for part in ("encoder.", "projector."):
        assert any(not torch.equal(v, untrained[k]) for k, v in payload["state_dict"].items()
                   if k.startswith(part) and v.is_floating_point())


def test_simkd_payload_rebuilds_the_composite_with_the_stores_logits(store, data):
    payload = store.get(SIMKD)
    ev = store.get(eval_spec(SIMKD))
    model = model_from_payload(payload)
    assert isinstance(model, SimKDStudent)
    with cpu_build():  # the eval artifact was computed under the pinned build numerics
        assert torch.equal(predict(model, data.x_test), ev["logits"])
    assert payload["metrics"]["test_acc"] == pytest.approx(ev["test_acc"])
    # Deployed size: student encoder + projector + teacher head.
    parts = sum(count_parameters(m) for m in (model.encoder, model.projector, model.head))
    assert payload["accounting"]["parameters"] == count_parameters(model) == parts


@pytest.mark.parametrize("derive", [
    lambda s: prune_spec(s, sparsity=0.5),
    lambda s: prune_spec(s, sparsity=0.5, finetune=ONE_EPOCH, seed=2),
    lambda s: channel_prune_spec(s, retained_fraction=0.5, finetune=ONE_EPOCH, seed=2, layers="conv"),
    lambda s: quantize_spec(s, "int8", calib_n=64),
], ids=["prune", "prune fine-tuned", "channel_prune conv", "quantize"])
def test_models_derived_from_a_simkd_student_rebuild_as_one(store, data, derive):
    spec = derive(SIMKD)
    payload = store.get(spec)
    assert payload["simkd"] == store.get(SIMKD)["simkd"]
    model = model_from_payload(payload)
    assert isinstance(model, SimKDStudent)
    with cpu_build():
        assert torch.equal(predict(model, data.x_test), store.get(eval_spec(spec))["logits"])


def test_simkd_label_names_the_teacher_and_the_bottleneck():
    assert label(SIMKD) == "distill resnet18/digits init 3 seed 1 from resnet34 simkd bottleneck=2"


# ----------------------------------------------------------------------------- fine-tuned weight pruning


@pytest.mark.parametrize("level", LEVELS)
def test_weight_pruning_removes_exactly_its_level_and_fine_tuning_keeps_it(store, level):
    spec = prune_spec(SIMKD, sparsity=level, finetune=ONE_EPOCH, seed=2)
    payload = store.get(spec)
    model, masks = model_from_payload(payload), payload["masks"]
    layers = prunable_weights(model)
    assert set(masks) == {f"{n}.weight" for n, _ in layers}  # encoder, projector and the teacher's head
    n = sum(m.weight.numel() for _, m in layers)
    removed = sum(int(m.eq(0).sum()) for m in masks.values())
    assert removed == round(level * n)
    params = dict(model.named_parameters())
    assert all(bool(params[k][m == 0].eq(0).all()) for k, m in masks.items())
    assert payload["metrics"]["sparsity"] == pytest.approx(removed / n)
    acc = payload["accounting"]
    assert acc["effective_parameters"] == acc["parameters"] - removed
    # The frozen head is pruned, not trained; the rest was fine-tuned.
    parent = store.get(SIMKD)["state_dict"]
    assert torch.equal(payload["state_dict"]["head.fc.weight"], parent["head.fc.weight"] * masks["head.fc.weight"])
    posthoc = store.get(prune_spec(SIMKD, sparsity=level))["state_dict"]
    assert not torch.equal(payload["state_dict"]["projector.layers.0.weight"], posthoc["projector.layers.0.weight"])


def test_only_fine_tuned_prune_specs_carry_the_new_parameters():
    assert [k for k, _ in prune_spec(SIMKD, sparsity=0.5).params] == ["method", "recipe", "scope", "sparsity",
                                                                      "targets"]
    tuned = prune_spec(SIMKD, sparsity=0.5, finetune=ONE_EPOCH, seed=2)
    assert tuned.param("seed") == 2 and dict(tuned.param("finetune"))["epochs"] == 1
    assert tuned != prune_spec(SIMKD, sparsity=0.5, finetune=ONE_EPOCH, seed=3)
    assert label(tuned) == f"prune 50% (global weights, fine-tuned seed 2) of {label(SIMKD)}"


def test_held_masks_leave_a_frozen_layer_pruned_and_untrained():
    x, y = blobs(48, shape=(4,), classes=3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    model[2].requires_grad_(False)
    masks = l1_unstructured(model, 0.5)
    frozen, first = model[2].weight.clone(), model[0].weight.clone()
    train(model, x, y, TrainConfig(epochs=2, batch_size=16, lr=0.1), seed=0, callbacks=[HoldMasks(masks)])
    assert torch.equal(model[2].weight, frozen)
    assert bool(model[0].weight[masks["0.weight"] == 0].eq(0).all())
    assert not torch.equal(model[0].weight, first)


# ----------------------------------------------------------------------------- channel pruning of convolutions


def test_conv_channel_pruning_of_a_simkd_student_keeps_every_linear_output(store, data):
    payload = store.get(CHANNEL)
    model, masks = model_from_payload(payload), payload["masks"]
    linear = _linear_names(model)
    assert linear == ["head.fc"]
    for name in linear:
        assert bool(masks[f"{name}.weight"].ne(0).any(dim=1).all())  # no output row removed
        assert bool(masks.get(f"{name}.bias", torch.ones(1)).ne(0).all())
    # The projector's convolutions were pruned too (their channels feed the head's input columns).
    assert any(bool(m.eq(0).any()) for k, m in masks.items() if k.startswith("projector."))
    step = channel_granularity(model, example_inputs=data.x_train[:2], ignore=linear)
    assert abs(payload["metrics"]["retained_fraction"] - 0.5) <= step / 2
    assert label(CHANNEL) == f"prune 50% (l1 conv) of {label(SIMKD)}"


def test_conv_only_leaves_hidden_linear_layers_whole_where_all_layers_prune_them(store):
    lenet = train_spec("lenet5", "digits", init_seed=0, seed=0, train=ONE_EPOCH, data_options=DATA_OPTIONS)
    rows_removed = {}
    for layers in ("all", "conv"):
        masks = store.get(channel_prune_spec(lenet, retained_fraction=0.3, finetune=NO_EPOCHS, seed=0,
                                             layers=layers))["masks"]
        # A layer whose channels are all left dense has no mask.
        rows_removed[layers] = sum(int(masks[f"{n}.weight"].eq(0).all(dim=1).sum()) for n in ("fc1", "fc2", "fc3")
                                   if f"{n}.weight" in masks)
    assert rows_removed["all"] > 0 and rows_removed["conv"] == 0


def test_physical_removal_of_a_channel_pruned_simkd_student_matches_the_masked_model(store, data):
    payload = store.get(CHANNEL)
    model = model_from_payload(payload)
    removed = physically_remove(model, payload["masks"], data.x_train[:2]).eval()
    torch.testing.assert_close(removed(data.x_test), model(data.x_test), atol=1e-5, rtol=0)
    assert count_parameters(removed) == payload["accounting"]["effective_parameters"] < count_parameters(model)
    assert accuracy(removed(data.x_test), data.y_test) == pytest.approx(payload["metrics"]["test_acc"])


def test_the_default_layers_adds_no_parameter_to_the_spec():
    default = channel_prune_spec(SIMKD, retained_fraction=0.5, finetune=ONE_EPOCH, seed=2)
    assert "layers" not in dict(default.params)
    assert default == channel_prune_spec(SIMKD, retained_fraction=0.5, finetune=ONE_EPOCH, seed=2, layers="all")
    assert default != CHANNEL and CHANNEL.param("layers") == "conv"


# ----------------------------------------------------------------------------- reproducibility and bad input


def test_the_same_specs_built_in_another_store_give_identical_bytes(store, tmp_path):
    specs = [SIMKD, prune_spec(SIMKD, sparsity=0.5, finetune=ONE_EPOCH, seed=2), CHANNEL]
    other = ArtifactStore(tmp_path, make_builders(Workspace(device="cpu")))
    for spec in specs:
        store.get(spec)
        other.get(spec)
    assert other.stats["built"] == len(specs) + 1  # and the teacher
    digests = [[read_artifact_header(s.path_for(spec), STORE_FORMAT_VERSION)["payload_sha256"] for spec in specs]
               for s in (store, other)]
    assert digests[0] == digests[1]


def _mlp(*, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    """A model split_model does not know."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], num_classes))


def test_simkd_specs_refuse_models_split_model_does_not_know(monkeypatch):
    monkeypatch.setitem(models.MODELS, "mlp", _mlp)
    with pytest.raises(InvalidParameterError) as info:
        distill_spec(TEACHER, seed=1, train=ONE_EPOCH, distiller="simkd", student_arch="mlp")
    msg = str(info.value)
    assert msg.startswith("The 'student_arch' parameter of distill_spec must be an architecture split_model knows")
    assert msg.endswith("Got 'mlp' instead.")
    mlp_teacher = train_spec("mlp", "digits", init_seed=0, seed=0, train=ONE_EPOCH)
    with pytest.raises(InvalidParameterError, match=r"^The 'teacher' parameter of distill_spec .* Got 'mlp' instead"):
        distill_spec(mlp_teacher, seed=1, train=ONE_EPOCH, distiller="simkd", student_arch="resnet18")
    with pytest.raises(InvalidParameterError, match="Got 'resnet99' instead"):
        distill_spec(TEACHER, seed=1, train=ONE_EPOCH, distiller="simkd", student_arch="resnet99")
    with pytest.raises(InvalidParameterError) as info:
        distill_spec(SIMKD, seed=1, train=ONE_EPOCH, distiller="simkd")
    assert str(info.value) == ("The 'teacher' parameter of distill_spec must be a model split_model knows (not a SimKD "
                               f"student). Got {SIMKD.describe()!r} instead.")
    # A SimKD student may still teach with logits.
    assert distill_spec(SIMKD, seed=1, train=ONE_EPOCH, student_arch="lenet5").parents == (SIMKD,)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: prune_spec(SIMKD, sparsity=0.5, finetune=ONE_EPOCH),
     ("The 'seed' parameter of prune_spec must be an int (the fine-tuning's data order) when finetune is given. "
      "Got None instead.")),
    (lambda: prune_spec(SIMKD, sparsity=0.5, seed=2),
     "The 'seed' parameter of prune_spec must be None without finetune (no training, no data order). Got 2 instead."),
    (lambda: prune_spec(SIMKD, sparsity=0.5, targets="all_arrays", finetune=ONE_EPOCH, seed=2),
     "The 'targets' parameter of prune_spec must be 'weights' when finetune is given. Got 'all_arrays' instead."),
    (lambda: channel_prune_spec(SIMKD, retained_fraction=0.5, finetune=ONE_EPOCH, seed=2, layers="linear"),
     "The 'layers' parameter of channel_prune_spec must be one of 'all', 'conv'. Got 'linear' instead."),
    (lambda: channel_prune_spec(prune_spec(SIMKD, sparsity=0.5, finetune=ONE_EPOCH, seed=2), retained_fraction=0.5,
                                finetune=ONE_EPOCH, seed=2),
     ("The 'parent' parameter of channel_prune_spec must be a model without unstructured weight masks (channel masks "
      f"nest only in channel masks). Got {prune_spec(SIMKD, sparsity=0.5, finetune=ONE_EPOCH, seed=2).describe()!r} instead.")),
])
def test_bad_pruning_input_is_named_before_any_work(make, message):
    with pytest.raises(InvalidParameterError) as info:
        make()
    assert str(info.value) == message
