"""Tests for compress.build.recipes: specs built through a real ArtifactStore on the tiny 'fake' dataset."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import compress.build.kinds as kinds
from analysis._validation import InvalidParameterError
from compress.build.kinds import KINDS, label, make_builders, register_kind
from compress.build.recipes import (channel_prune_spec, distill_spec, eval_spec, prune_spec, quantize_spec,
                                    rewind_distill_spec, train_spec)
from compress.build.sh_recipes import finetune_spec, layer_prune_spec
from compress.build.workspace import model_from_payload, Workspace
from compress.data.datasets import load_dataset
from compress.measure.accounting import count_nonzero, count_parameters, model_bytes
from compress.models.registry import create_model
from compress.prune.structured import effective_parameter_count, physically_remove
from compress.quant.schemes import quantize, storage_bits
from compress.runtime.numerics import cpu_build
from compress.store.artifacts import ArtifactStore, Spec
from compress.training.distill import KDConfig, hinton_kd_loss
from compress.training.loop import TrainConfig, accuracy, predict

DATA_OPTIONS = {"shape": (1, 8, 8), "n_train": 128, "n_test": 64}
ONE_EPOCH = TrainConfig(epochs=1, batch_size=32, lr=0.05)
NO_EPOCHS = dataclasses.replace(ONE_EPOCH, epochs=0)


def _train(init_seed: int = 5, seed: int = 1, config: TrainConfig = ONE_EPOCH):
    return train_spec("lenet5", "fake", init_seed=init_seed, seed=seed, train=config, data_options=DATA_OPTIONS)


def _state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def store(store_root):
    return ArtifactStore(store_root, make_builders(Workspace(device="cpu")))


@pytest.fixture(scope="module")
def data():
    return load_dataset("fake", seed=0, **DATA_OPTIONS)


def test_builders_cover_every_registered_kind():
    assert set(make_builders(Workspace(device="cpu"))) == set(KINDS) == {
        "train", "distill", "prune", "quantize", "eval", "channel_prune", "rewind_distill", "layer_cka",
        "sensitivity", "layer_prune", "finetune", "gradcam", "eval_jitter"}  # the last five: tests/test_sh_recipes.py
    assert all(kind.name == name and callable(kind.spec) for name, kind in KINDS.items())


def test_specs_are_keyed_by_what_changes_the_model():
    assert _train() == _train()
    assert _train(seed=2) != _train() and _train(init_seed=6) != _train()
    assert _train(config=NO_EPOCHS) != _train()
    assert train_spec("lenet5", "fake", init_seed=5, seed=1, train=ONE_EPOCH, data_options={"n_test": 64, "shape": [1, 8, 8], "n_train": 128}) == _train()
    s = distill_spec(_train(), seed=24, train=ONE_EPOCH)
    assert s.param("init_seed") == 5 and s.param("seed") == 24 and s.parents == (_train(),)
    assert s.param("arch") == "lenet5" and s.param("distiller") == "hinton"
    # Parameters stored with the defaults filled in: the spec names the loss completely.
    assert s.param("distiller_params") == (("teacher_weight", 0.5), ("temperature", 3.0))
    assert s == distill_spec(_train(), seed=24, train=ONE_EPOCH, distiller_params={"temperature": 3, "teacher_weight": 0.5})
    assert s != distill_spec(_train(), seed=24, train=ONE_EPOCH, distiller="hinton_code")
    assert prune_spec(_train(), sparsity=0.3).param("sparsity") == 0.3
    assert prune_spec(_train(), sparsity=0.3).param("targets") == "weights"
    assert prune_spec(_train(), sparsity=0.3, targets="all_arrays") != prune_spec(_train(), sparsity=0.3)
    # Fine-tuning adds its parameters; post-hoc specs keep the keys they always had (no finetune, no seed).
    assert {k for k, _ in prune_spec(_train(), sparsity=0.3).params} == {"recipe", "method", "sparsity", "scope", "targets"}
    assert prune_spec(_train(), sparsity=0.3, finetune=ONE_EPOCH, seed=0) != prune_spec(_train(), sparsity=0.3)
    assert quantize_spec(_train(), "int8").param("scheme") == "int8"
    assert quantize_spec(_train(), "int8").param("activations") is True


@pytest.mark.parametrize(("make", "message"), [
    (lambda: distill_spec(_train(), seed=0, train=ONE_EPOCH, distiller="attention"),
     "The 'name' parameter of make_distiller must be one of 'hinton', 'hinton_code', 'simkd', 'fitnets', 'crd'. "
     "Got 'attention' instead."),
    (lambda: distill_spec(_train(), seed=0, train=ONE_EPOCH, distiller_params={"teacher_weight": 2.0}),
     "The 'teacher_weight' parameter of HintonKD must be a number in [0.0, 1.0]. Got 2.0 instead."),
    (lambda: rewind_distill_spec(_train(), _train(), seed=0, train=ONE_EPOCH, distiller_params={"alpha": 0.5}),
     "The 'params' parameter of make_distiller('hinton') must be keywords among temperature, teacher_weight. "
     "Got 'alpha' instead."),
    (lambda: prune_spec(_train(), sparsity=1.0),
     "The 'sparsity' parameter of prune_spec must be a number in [0.0, 1.0). Got 1.0 instead."),
    (lambda: prune_spec(_train(), sparsity=0.5, targets="biases"),
     "The 'targets' parameter of prune_spec must be one of 'weights', 'all_arrays'. Got 'biases' instead."),
    (lambda: quantize_spec(_train(), "int2"),
     "The 'scheme' parameter of quantize_spec must be one of 'fp16', 'bf16', 'int8', 'int4'. Got 'int2' instead."),
    (lambda: channel_prune_spec(_train(), retained_fraction=0.0, finetune=ONE_EPOCH, seed=0),
     "The 'retained_fraction' parameter of channel_prune_spec must be a number in (0.0, 1.0]. Got 0.0 instead."),
    (lambda: distill_spec(Spec.make("train", seed=1), seed=0, train=ONE_EPOCH),
     "The 'spec' parameter of distill_spec must be a spec descending from a model trained on data (train, distill). "
     "Got 'train' instead."),
])
def test_spec_constructors_validate_before_any_work(make, message):
    with pytest.raises(InvalidParameterError) as info:
        make()
    assert str(info.value) == message


def test_train_spec_builds_a_model_payload(store, data):
    payload = store.get(_train())
    assert payload["arch"] == "lenet5" and payload["num_classes"] == 10 and list(payload["in_shape"]) == [1, 8, 8]
    assert len(payload["metrics"]["losses"]) == 1
    model = model_from_payload(payload)
    assert not model.training
    assert payload["metrics"]["test_acc"] == pytest.approx(accuracy(predict(model, data.x_test), data.y_test))
    # Trained, not the initial weights.
    init = store.get(_train(config=NO_EPOCHS))
    assert not _state_equal(init["state_dict"], payload["state_dict"])
    assert init["metrics"]["losses"] == []


def test_init_seed_alone_fixes_initial_weights(store):
    torch.manual_seed(5)
    expected = create_model("lenet5", 10, (1, 8, 8)).state_dict()
    assert _state_equal(store.get(_train(config=NO_EPOCHS))["state_dict"], expected)
    # The data-order seed does not touch the initial weights.
    assert _state_equal(store.get(_train(seed=9, config=NO_EPOCHS))["state_dict"], expected)


def test_eval_spec_gives_test_logits(store, data):
    ev = store.get(eval_spec(_train()))
    assert ev["logits"].shape == (64, 10) and ev["logits"].dtype == torch.float32
    assert torch.equal(ev["labels"], data.y_test)
    assert ev["test_acc"] == pytest.approx(accuracy(ev["logits"], ev["labels"]))
    model = model_from_payload(store.get(_train()))
    assert torch.allclose(predict(model, data.x_test), ev["logits"], atol=1e-6)


def test_distill_student_starts_from_the_teachers_initial_weights(store):
    teacher = _train()  # trained one epoch from init_seed 5
    student0 = distill_spec(teacher, seed=24, train=NO_EPOCHS)
    s0 = store.get(student0)["state_dict"]
    assert _state_equal(s0, store.get(_train(config=NO_EPOCHS))["state_dict"])
    assert not _state_equal(s0, store.get(teacher)["state_dict"])


def test_distill_student_trains_with_kd(store):
    teacher = _train()
    student = store.get(distill_spec(teacher, seed=24, train=ONE_EPOCH, distiller_params={"teacher_weight": 0.9}))
    plain = store.get(_train(seed=24))  # same init and data order, plain CE
    assert len(student["metrics"]["losses"]) == 1
    assert not _state_equal(student["state_dict"], plain["state_dict"])
    assert not _state_equal(student["state_dict"], store.get(teacher)["state_dict"])


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("sparsity", [0.3, 0.7])
def test_prune_spec_hits_the_sparsity(store, sparsity, scope):
    payload = store.get(prune_spec(_train(), sparsity=sparsity, scope=scope))
    model = model_from_payload(payload)
    weights = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    n = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert payload["metrics"]["sparsity"] == pytest.approx(zeros / n)
    tol = 1 / n if scope == "global" else len(weights) / n  # rounding per layer
    assert abs(payload["metrics"]["sparsity"] - sparsity) <= tol
    assert not any(k.endswith(("_orig", "_mask")) for k in payload["state_dict"])


@pytest.mark.parametrize("scheme", ["int8", "fp16"])
def test_quantize_spec_rebuild_reattaches_hooks(store, data, scheme):
    q_spec = quantize_spec(_train(), scheme, calib_n=64)
    payload = store.get(q_spec)
    assert payload["quant"]["scheme"] == scheme
    ev = store.get(eval_spec(q_spec))
    rebuilt = model_from_payload(payload)
    with cpu_build():  # the eval artifact was computed under the pinned build numerics
        assert torch.equal(predict(rebuilt, data.x_test), ev["logits"])
    # Independently: quantize the parent in memory with the same calibration batch.
    parent = model_from_payload(store.get(_train()))
    g = torch.Generator().manual_seed(0)
    calib = data.x_train[torch.randperm(data.n_train, generator=g)[:64]]
    q_mem, ranges = quantize(parent, scheme, calib_x=calib)
    assert ranges == pytest.approx(dict(payload["quant"]["act_ranges"]))
    with cpu_build():
        assert torch.allclose(predict(q_mem, data.x_test), ev["logits"], atol=1e-6)
    assert payload["metrics"]["test_acc"] == pytest.approx(ev["test_acc"])
    # Without the hooks (state_dict alone) the activations are not quantized: other logits.
    bare = create_model("lenet5", 10, (1, 8, 8))
    bare.load_state_dict(payload["state_dict"])
    assert not torch.equal(predict(bare, data.x_test), ev["logits"])


def test_second_get_loads_without_building(store_root, store):
    specs = [eval_spec(_train()), eval_spec(quantize_spec(_train(), "int8", calib_n=64))]
    first = [store.get(s) for s in specs]  # built (or cached) by now
    calls = []
    builders = {k: (lambda spec, parents, ctx, k=k: calls.append(k)) for k in KINDS}
    fresh = ArtifactStore(store_root, builders)
    again = [fresh.get(s) for s in specs]
    assert calls == []
    assert fresh.stats["built"] == 0 and fresh.stats["loaded"] == len(specs)
    for a, b in zip(first, again):
        assert torch.equal(a["logits"], b["logits"])


def test_cpu_builds_do_not_depend_on_the_thread_count(tmp_path):
    """An artifact's content must not depend on how many xdist workers (threads each) built it."""
    from compress.build.kinds import make_builders
    from compress.build.recipes import train_spec
    from compress.build.workspace import Workspace
    from compress.store.artifacts import ArtifactStore
    from compress.training.loop import TrainConfig

    spec = train_spec("resnet18", "fake", init_seed=0, seed=0, train=TrainConfig(epochs=1, lr=0.02),
                      overrides={"width": 0.125}, data_options={"shape": (1, 8, 8), "n_train": 128, "n_test": 32})
    states = []
    for threads, root in ((1, tmp_path / "a"), (2, tmp_path / "b")):
        torch.set_num_threads(threads)
        states.append(ArtifactStore(root, make_builders(Workspace(device="cpu"))).get(spec)["state_dict"])
    torch.set_num_threads(1)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


# ----------------------------------------------------------------------------- distillation strategies in specs


def test_distill_spec_with_hinton_equals_training_with_the_hinton_loss_by_hand(store, data):
    """The refactored path (spec → Distill callback → HintonKD) gives bit-identical weights to a hand loop."""
    teacher_spec = _train()
    cfg = TrainConfig(epochs=1, batch_size=64, lr=0.05, schedule="constant")  # two steps over 128 examples
    built = store.get(distill_spec(teacher_spec, seed=24, train=cfg,
                                   distiller_params={"temperature": 3.0, "teacher_weight": 0.7}))
    with cpu_build():  # the store's builders run under the pinned build numerics
        teacher = model_from_payload(store.get(teacher_spec))
        torch.manual_seed(5)  # the teacher's init seed: self-distillation from its initial weights
        student = create_model("lenet5", 10, (1, 8, 8))
        opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
        teacher_logits = predict(teacher, data.x_train)
        perm = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(24))
        student.train()
        for start in (0, 64):
            idx = perm[start : start + 64]
            loss = hinton_kd_loss(student(data.x_train[idx]), teacher_logits[idx], data.y_train[idx], KDConfig(3.0, 0.7))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert _state_equal(built["state_dict"], student.state_dict())


def test_code_variant_spec_trains_another_student(store):
    text = store.get(distill_spec(_train(), seed=24, train=ONE_EPOCH, distiller_params={"teacher_weight": 0.9}))
    code = store.get(distill_spec(_train(), seed=24, train=ONE_EPOCH, distiller="hinton_code",
                                  distiller_params={"teacher_weight": 0.9}))
    assert not _state_equal(text["state_dict"], code["state_dict"])


def test_cross_architecture_distillation_builds_and_trains(store, data):
    teacher = train_spec("resnet18", "fake", init_seed=0, seed=0, train=ONE_EPOCH, overrides={"width": 0.125},
                         data_options=DATA_OPTIONS)
    spec = distill_spec(teacher, seed=3, train=ONE_EPOCH, student_arch="lenet5")
    # The teacher's data and init seed; not its width override, which belongs to its architecture.
    assert spec.param("arch") == "lenet5" and spec.param("overrides") == () and spec.param("init_seed") == 0
    assert spec.param("dataset") == "fake" and spec.param("data_options") == teacher.param("data_options")
    payload = store.get(spec)
    student = model_from_payload(payload)
    assert payload["arch"] == "lenet5" and type(student).__name__ == "LeNet5"
    assert payload["metrics"]["test_acc"] == pytest.approx(accuracy(predict(student, data.x_test), data.y_test))
    plain = store.get(train_spec("lenet5", "fake", init_seed=0, seed=3, train=ONE_EPOCH, data_options=DATA_OPTIONS))
    untrained = store.get(train_spec("lenet5", "fake", init_seed=0, seed=3, train=NO_EPOCHS, data_options=DATA_OPTIONS))
    assert not _state_equal(payload["state_dict"], plain["state_dict"])  # the teacher's signal changed the student
    assert not _state_equal(payload["state_dict"], untrained["state_dict"])
    assert label(spec) == ("distill lenet5/fake init 0 seed 3 from resnet18 hinton teacher_weight=0.5 "
                           "temperature=3.0")
    wide = distill_spec(teacher, seed=3, train=ONE_EPOCH, student_arch="lenet5", student_overrides={"width": 0.5},
                        init_seed=9)
    assert wide.param("overrides") == (("width", 0.5),) and wide.param("init_seed") == 9


# ----------------------------------------------------------------------------- every model payload: accounting

_FINETUNE = TrainConfig(epochs=1, batch_size=32, lr=0.01)
_CHANNEL = channel_prune_spec(_train(), retained_fraction=0.6, finetune=_FINETUNE, seed=0)
MODEL_SPECS = {
    "train": _train(),
    "distill": distill_spec(_train(), seed=24, train=ONE_EPOCH),
    "prune": prune_spec(_train(), sparsity=0.5),
    "prune all_arrays": prune_spec(_train(), sparsity=0.5, targets="all_arrays"),
    "prune fine-tuned": prune_spec(_train(), sparsity=0.5, finetune=_FINETUNE, seed=0),
    "quantize": quantize_spec(_train(), "int8", calib_n=64),
    "quantize weights only": quantize_spec(_train(), "int4", activations=False),
    "channel_prune": _CHANNEL,
    "rewind_distill": rewind_distill_spec(_CHANNEL, _train(), seed=0, train=ONE_EPOCH),
    "layer_prune": layer_prune_spec(_train(), method="unstructured", target=0.5, allocation="uniform",
                                    finetune=_FINETUNE, seed=0),
    "layer_prune structured post-hoc": layer_prune_spec(_train(), method="structured", target=0.3,
                                                        allocation="uniform"),
    "finetune QAT": finetune_spec(_train(), finetune=_FINETUNE, seed=0, qat_bits=4, qat_scope="linear"),
}


def test_model_specs_cover_every_model_kind():
    assert {s.kind for s in MODEL_SPECS.values()} == set(KINDS) - {"eval", "layer_cka", "sensitivity", "gradcam",
                                                                    "eval_jitter"}


def test_the_layer_cka_kind_equals_cka_of_the_models_features(store, data):
    """A paper-specific kind registered from the library: built through the store like any other."""
    from compress.measure.cka import cka_matrix, extract_features
    from compress.build.layer_cka import layer_cka_spec

    models = [MODEL_SPECS["train"], MODEL_SPECS["distill"], MODEL_SPECS["prune"], MODEL_SPECS["prune all_arrays"]]
    spec = layer_cka_spec(*models, n_inputs=32, data_seed=3, debiased=False)
    assert KINDS["layer_cka"].spec is layer_cka_spec and "layer CKA of 4 models" in label(spec)
    out = store.get(spec)
    order = torch.randperm(data.n_test, generator=torch.Generator().manual_seed(3))[:32]
    feats = [extract_features(model_from_payload(store.get(m)), data.x_test[order], "all") for m in models]
    full = cka_matrix(list(feats[0].values()), list(feats[1].values()), device="cpu")
    assert out["layers"] == list(feats[0])
    torch.testing.assert_close(out["full"], full)
    torch.testing.assert_close(out["pd"], torch.diagonal(full))
    between = cka_matrix(list(feats[2].values()), list(feats[3].values()), device="cpu")
    torch.testing.assert_close(out["mm"][0], torch.diagonal(between))
    assert out["mp"].shape == out["md"].shape == (2, len(out["layers"]))


@pytest.mark.parametrize("name", list(MODEL_SPECS))
def test_every_model_payload_carries_its_accounting(store, data, name):
    spec = MODEL_SPECS[name]
    payload = store.get(spec)
    model = model_from_payload(payload)
    acc = payload["accounting"]
    assert acc["parameters"] == count_parameters(model) == count_parameters(create_model("lenet5", 10, (1, 8, 8)))
    assert acc["nonzero"] == count_nonzero(model) <= acc["parameters"]
    bits = storage_bits(model, spec.param("scheme")) if spec.kind == "quantize" else None
    assert acc["bytes"] == model_bytes(model, bits=bits)
    if spec.kind == "quantize":
        assert acc["bytes"] < store.get(_train())["accounting"]["bytes"] / 3  # int8/int4 weights, fp32 rest
    if spec.kind == "prune":
        assert acc["nonzero"] < acc["parameters"]
    if spec.kind in ("channel_prune", "rewind_distill"):
        masks = payload["masks"]
        assert acc["effective_parameters"] == effective_parameter_count(model, masks) < acc["parameters"]
        assert count_parameters(physically_remove(model, masks, data.x_train[:2])) == acc["effective_parameters"]
    elif name == "prune fine-tuned" or spec.kind == "layer_prune":  # weight masks: unmasked entries remain
        masks = payload["masks"]
        removed = sum(int(m.eq(0).sum()) for m in masks.values())
        assert acc["effective_parameters"] == effective_parameter_count(model, masks) == acc["parameters"] - removed
        assert acc["nonzero"] <= acc["effective_parameters"]
    else:
        assert "effective_parameters" not in acc


def test_all_arrays_prune_spec_zeroes_biases_too(store):
    weights = model_from_payload(store.get(MODEL_SPECS["prune"]))
    arrays = model_from_payload(store.get(MODEL_SPECS["prune all_arrays"]))
    biases = lambda m: torch.cat([p.flatten() for n, p in m.named_parameters() if n.endswith("bias")])
    assert int((biases(weights) == 0).sum()) == 0 and int((biases(arrays) == 0).sum()) > 0


def test_every_kind_has_a_label():
    of_base = " of train lenet5/fake init 5 seed 1"
    labels = {name: label(spec) for name, spec in {**MODEL_SPECS, "eval": eval_spec(_train())}.items()}
    assert labels == {
        "train": "train lenet5/fake init 5 seed 1",
        "distill": "distill lenet5/fake init 5 seed 24 hinton teacher_weight=0.5 temperature=3.0",
        "prune": "prune 50% (global weights)" + of_base,
        "prune all_arrays": "prune 50% (global all_arrays)" + of_base,
        "prune fine-tuned": "prune 50% (global weights, fine-tuned seed 0)" + of_base,
        "layer_prune": "prune unstructured 50% (uniform)" + of_base,
        "layer_prune structured post-hoc": "prune structured 30% (uniform)" + of_base,
        "finetune QAT": "fine-tune QAT int4 linear seed 0" + of_base,
        "quantize": "quantize int8" + of_base,
        "quantize weights only": "quantize int4 weights only" + of_base,
        "channel_prune": "prune 60% (l1)" + of_base,
        "rewind_distill": "rewind-distill 60%" + of_base,
        "eval": "eval" + of_base,
    }
    nested = channel_prune_spec(_CHANNEL, retained_fraction=0.3, finetune=_FINETUNE, seed=0)
    assert label(nested) == "prune 60%→30% (l1)" + of_base
    conv = channel_prune_spec(_train(), retained_fraction=0.6, finetune=_FINETUNE, seed=0, layers="conv")
    assert label(conv) == "prune 60% (l1 conv)" + of_base
    # A kind this module does not know: its parameters are listed.
    assert label(Spec.make("probe", parents=(_train(),), layer="fc1")) == "probe layer=fc1" + of_base


# ----------------------------------------------------------------------------- the registry of kinds


def test_a_kind_registered_from_elsewhere_builds_through_the_store(tmp_path, monkeypatch):
    monkeypatch.setattr(kinds, "KINDS", dict(kinds.KINDS))

    def scaled_spec(parent: Spec, *, factor: float) -> Spec:
        return Spec.make("scaled_logits", parents=(parent,), factor=factor)

    def build(ws, spec, parents, ctx):
        data = ws.dataset(spec)  # found through the parent
        logits = predict(model_from_payload(parents[0], data.device), data.x_test)
        return {"logits": logits * spec.param("factor"), "threads": torch.get_num_threads()}

    kind = register_kind("scaled_logits", spec=scaled_spec, build=build,
                         label=lambda s, describe: f"scaled ×{s.param('factor')} of {describe(s.parents[0])}")
    assert kinds.KINDS["scaled_logits"] is kind and "scaled_logits" not in KINDS
    store = ArtifactStore(tmp_path, make_builders(Workspace(device="cpu")))
    spec = kind.spec(_train(), factor=2.0)
    out = store.get(spec)
    assert torch.equal(out["logits"], 2.0 * store.get(eval_spec(_train()))["logits"])
    assert out["threads"] == 1  # wrapped in single_threaded_on_cpu like every builder
    assert label(spec) == "scaled ×2.0 of train lenet5/fake init 5 seed 1"


@pytest.mark.parametrize(("kwargs", "param", "got"), [
    ({"name": "train"}, "name", "'train'"),
    ({"name": ""}, "name", "''"),
    ({"name": "new", "build": "not callable"}, "build", "'not callable'"),
])
def test_register_kind_rejects_duplicates_and_non_callables(kwargs, param, got):
    parts = {"spec": train_spec, "build": lambda ws, spec, parents, ctx: {}, "label": str} | kwargs
    name = parts.pop("name")
    with pytest.raises(InvalidParameterError) as info:
        register_kind(name, **parts)
    msg = str(info.value)
    assert msg.startswith(f"The '{param}' parameter of register_kind must be ") and msg.endswith(f"Got {got} instead.")
    assert "new" not in KINDS
