"""compress.build.estimate: cost classes, the store's build history, and estimates from history or a measured step."""
from __future__ import annotations

import json


from compress.build.estimate import estimate_builds
from compress.build.kinds import make_builders
from compress.build.recipes import distill_spec, eval_spec, prune_spec, train_spec
from compress.build.workspace import Workspace
from compress.store.artifacts import ArtifactStore
from compress.store.history import build_history, cost_class
from compress.training.loop import TrainConfig

OPTIONS = {"shape": [1, 8, 8], "n_train": 128, "n_test": 32}


def _train(seed=0, epochs=1, arch="lenet5"):
    return train_spec(arch, "fake", init_seed=seed, seed=seed, train=TrainConfig(epochs=epochs), data_options=OPTIONS)


def test_the_cost_class_names_what_build_time_depends_on_not_the_seeds():
    assert cost_class(_train(0)) == cost_class(_train(7))
    assert cost_class(_train(0, epochs=2)) != cost_class(_train(0))
    assert cost_class(_train(0, arch="resnet18")) != cost_class(_train(0))
    assert cost_class(eval_spec(_train(0))) == cost_class(eval_spec(_train(3))) != cost_class(_train(0))
    assert cost_class(prune_spec(_train(0), sparsity=0.5)).startswith("prune lenet5/fake")


def test_the_store_log_records_each_builds_class_and_seconds(tmp_path):
    store = ArtifactStore(tmp_path, make_builders(Workspace(device="cpu")))
    store.get(eval_spec(_train(0)))
    history = store.build_history()
    assert set(history) == {cost_class(_train(0)), cost_class(eval_spec(_train(0)))}
    assert all(len(v) == 1 and v[0] >= 0 for v in history.values())
    with (tmp_path / "store.log").open("a") as f:  # damaged and old-format lines are skipped
        f.write("not json\n" + json.dumps({"event": "built", "seconds": 1.0}) + "\n")
    assert build_history(tmp_path / "store.log") == history


def test_history_gives_the_median_of_the_class_and_a_probe_covers_training_kinds():
    history = {cost_class(_train(0)): [1.0, 2.0, 9.0], cost_class(eval_spec(_train(0))): [0.5]}
    est = estimate_builds([_train(1), _train(2), eval_spec(_train(1))], history, probe=False)
    assert est.seconds == {"train": 4.0, "eval": 0.5} and est.counts["train"] == {"history": 2}
    assert est.by_key == {_train(1).key: 2.0, _train(2).key: 2.0, eval_spec(_train(1)).key: 0.5}
    unseen = [_train(1, epochs=3), distill_spec(_train(1), seed=5, train=TrainConfig(epochs=3)),
              prune_spec(_train(1), sparsity=0.5)]
    probed = estimate_builds(unseen, history)
    assert probed.counts == {"train": {"probe": 1}, "distill": {"probe": 1}, "prune": {"probe": 1}}
    # 3 epochs of 2 steps (128 examples, batch 64); the student step plus the teacher's forward costs more;
    # pruning trains nothing: a few forward passes over the test set, far less than a training.
    assert 0 < probed.seconds["prune"] < probed.seconds["train"] < probed.seconds["distill"]
    assert "1 by probe" in probed.describe("prune") and "1 by probe" in probed.describe("train")
    assert estimate_builds(unseen, history, probe=False).counts["train"] == {"none": 1}


def test_a_kind_with_no_known_cost_is_counted_not_guessed():
    from compress.store.spec import Spec

    odd = Spec.make("some_new_kind", parents=(_train(0),))
    est = estimate_builds([odd], {})
    assert est.counts == {"some_new_kind": {"none": 1}} and est.total == 0
    assert "1 not estimated" in est.describe("some_new_kind")



def _cifar(arch, epochs=1, **overrides):
    return train_spec(arch, "cifar10", init_seed=0, seed=0, train=TrainConfig(epochs=epochs),
                      overrides=tuple(overrides.items()))


def test_a_model_too_large_to_time_is_priced_from_its_flops_without_running_it(monkeypatch):
    import compress.build.estimate as E

    timed = []
    real = E._time_step

    def spy(setup, batch_size, repeats=3):
        timed.append(setup[0])
        return real(setup, batch_size, repeats)

    monkeypatch.setattr(E, "_time_step", spy)
    probes: dict = {}
    big = [_cifar("tv_resnet152", epochs=2), _cifar("tv_resnet152", epochs=4)]
    est = estimate_builds(big, {}, probes=probes, gpu=True)
    assert est.counts == {"train": {"flops": 2}}
    assert timed == ["resnet18"]  # only the reference that calibrates this machine's FLOP/s, once
    assert est.by_key[big[1].key] == 2 * est.by_key[big[0].key] > 0  # steps scale the estimate
    forward = probes[("flops", "tv_resnet152", (), (3, 32, 32))][0]
    assert 4e8 < forward < 6e8  # ResNet-152 on 32x32 inputs: 0.47 GFLOP a forward pass
    assert 0 < est.gpu_total < est.total
    estimate_builds(big, {}, probes=probes, gpu=True)
    assert timed == ["resnet18"]  # the cache prices each model once


def test_the_cuda_estimate_is_launch_bound_for_small_models_and_scales_with_the_assumed_rate():
    from compress.build.estimate import GPU_LAYER_SECONDS, model_cost

    probes: dict = {}
    small = model_cost(("lenet5", "cifar10", (), ()), 64, probes, cpu=False)
    assert small.gpu_step == 5 * GPU_LAYER_SECONDS  # 5 layers with parameters; its FLOPs would take far less
    assert small.cpu_step != small.cpu_step  # cpu=False: nothing timed (nan)
    slow = model_cost(("tv_vgg16", "cifar10", (), ()), 64, probes, cpu=False, gpu_tflops=1.0)
    fast = model_cost(("tv_vgg16", "cifar10", (), ()), 64, probes, cpu=False, gpu_tflops=10.0)
    assert abs(slow.gpu_step / fast.gpu_step - 10) < 1e-9  # FLOP-bound: time in proportion to 1 / rate
    assert abs(slow.gpu_step - 3 * probes[("flops", "tv_vgg16", (), (3, 32, 32))][0] * 64 / 1e12) < 1e-9


def test_the_gpu_estimate_is_off_unless_asked_and_history_skips_the_cpu_timing(monkeypatch):
    import compress.build.estimate as E

    monkeypatch.setattr(E, "_time_step", lambda *a, **k: (_ for _ in ()).throw(AssertionError("timed")))
    spec = _train(0)
    history = {cost_class(spec): [3.0]}
    est = estimate_builds([spec], history, gpu=True)
    assert est.counts == {"train": {"history": 1}} and est.total == 3.0 and est.gpu_total > 0
    assert estimate_builds([spec], history).gpu_total == 0
