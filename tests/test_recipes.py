"""Tests for compress.recipes: specs built through a real ArtifactStore on the tiny 'fake' dataset."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from compress.numerics import cpu_build

from compress.data import load_dataset
from compress.models import create_model
from compress.quantize import quantize
from compress.recipes import (
    BUILDER_KINDS,
    Workspace,
    distill_spec,
    eval_spec,
    make_builders,
    model_from_payload,
    prune_spec,
    quantize_spec,
    train_spec,
)
from compress.store import ArtifactStore
from compress.training import TrainConfig, accuracy, predict

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


def test_builders_cover_every_kind():
    assert set(make_builders(Workspace(device="cpu"))) == set(BUILDER_KINDS)


def test_specs_are_keyed_by_what_changes_the_model():
    assert _train() == _train()
    assert _train(seed=2) != _train() and _train(init_seed=6) != _train()
    assert _train(config=NO_EPOCHS) != _train()
    assert train_spec("lenet5", "fake", init_seed=5, seed=1, train=ONE_EPOCH, data_options={"n_test": 64, "shape": [1, 8, 8], "n_train": 128}) == _train()
    s = distill_spec(_train(), seed=24, train=ONE_EPOCH, distiller_params={"temperature": 3.0, "teacher_weight": 0.5})
    assert s.param("init_seed") == 5 and s.param("seed") == 24 and s.parents == (_train(),)
    assert s.param("distiller") == "hinton" and dict(s.param("distiller_params"))["teacher_weight"] == 0.5
    code = distill_spec(_train(), seed=24, train=ONE_EPOCH, distiller="hinton_code",
                        distiller_params={"temperature": 3.0, "teacher_weight": 0.5})
    assert code != s  # the strategy is part of what changes the model
    cross = distill_spec(_train(), seed=24, train=ONE_EPOCH, student_arch="resnet18", student_overrides={"width": 0.125},
                         init_seed=9)
    assert (cross.param("arch"), cross.param("init_seed"), dict(cross.param("overrides"))) == ("resnet18", 9, {"width": 0.125})
    with pytest.raises(ValueError, match="'distiller' parameter of distill_spec must be one of 'hinton', 'hinton_code'"):
        distill_spec(_train(), seed=24, train=ONE_EPOCH, distiller="fitnets")
    assert prune_spec(_train(), sparsity=0.3).param("sparsity") == 0.3
    assert prune_spec(_train(), sparsity=0.3, targets="all_arrays") != prune_spec(_train(), sparsity=0.3)
    assert quantize_spec(_train(), "int8").param("scheme") == "int8"


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
    student0 = distill_spec(teacher, seed=24, train=NO_EPOCHS, distiller_params={"temperature": 3.0, "teacher_weight": 0.5})
    s0 = store.get(student0)["state_dict"]
    assert _state_equal(s0, store.get(_train(config=NO_EPOCHS))["state_dict"])
    assert not _state_equal(s0, store.get(teacher)["state_dict"])


def test_distill_student_trains_with_kd(store):
    teacher = _train()
    student = store.get(distill_spec(teacher, seed=24, train=ONE_EPOCH,
                                     distiller_params={"temperature": 3.0, "teacher_weight": 0.9}))
    plain = store.get(_train(seed=24))  # same init and data order, plain CE
    assert len(student["metrics"]["losses"]) == 1
    assert not _state_equal(student["state_dict"], plain["state_dict"])
    assert not _state_equal(student["state_dict"], store.get(teacher)["state_dict"])


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("ratio", [0.3, 0.7])
def test_prune_spec_hits_the_ratio(store, ratio, scope):
    payload = store.get(prune_spec(_train(), sparsity=ratio, scope=scope))
    model = model_from_payload(payload)
    weights = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    n = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert payload["metrics"]["sparsity"] == pytest.approx(zeros / n)
    tol = 1 / n if scope == "global" else len(weights) / n  # rounding per layer
    assert abs(payload["metrics"]["sparsity"] - ratio) <= tol
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
    builders = {k: (lambda spec, parents, ctx, k=k: calls.append(k)) for k in BUILDER_KINDS}
    fresh = ArtifactStore(store_root, builders)
    again = [fresh.get(s) for s in specs]
    assert calls == []
    assert fresh.stats["built"] == 0 and fresh.stats["loaded"] == len(specs)
    for a, b in zip(first, again):
        assert torch.equal(a["logits"], b["logits"])


def test_cpu_builds_do_not_depend_on_the_thread_count(tmp_path):
    """An artifact's content must not depend on how many xdist workers (threads each) built it."""
    from compress.recipes import Workspace, make_builders, train_spec
    from compress.store import ArtifactStore
    from compress.training import TrainConfig

    spec = train_spec("resnet18", "fake", init_seed=0, seed=0, train=TrainConfig(epochs=1, lr=0.02),
                      overrides={"width": 0.125}, data_options={"shape": (1, 8, 8), "n_train": 128, "n_test": 32})
    states = []
    for threads, root in ((1, tmp_path / "a"), (2, tmp_path / "b")):
        torch.set_num_threads(threads)
        states.append(ArtifactStore(root, make_builders(Workspace(device="cpu"))).get(spec)["state_dict"])
    torch.set_num_threads(1)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
