"""The spec DAG on Ray (``pip install -e ".[ray]"``): same artifacts as a plain build, failures by spec.

Skipped with the reason when Ray is not installed. A local cluster of 2 CPUs,
no dashboard, a bounded object store; tasks build into a temporary store.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')

from compress.build.designs import ModelSetup, mw_units  # noqa: E402
from compress.build.kinds import make_builders  # noqa: E402
from compress.build.ray_build import build_with_ray, check_store_filesystem  # noqa: E402
from compress.build.recipes import eval_spec  # noqa: E402
from compress.build.workspace import Workspace  # noqa: E402
from compress.store.artifacts import ArtifactStore  # noqa: E402
from compress.training.loop import TrainConfig  # noqa: E402

pytestmark = pytest.mark.slow
SETUP = ModelSetup("lenet5", "fake", data_options={"shape": [1, 8, 8], "n_train": 64, "n_test": 32})


def _specs():
    units = mw_units(SETUP, base_seeds=[0, 1], independent_seeds=[10, 11], student_seeds=[20, 21],
                     train=TrainConfig(epochs=1), code_train=TrainConfig(epochs=1), kd_teacher_weights=(0.5,),
                     prune_ratios=(0.5,))
    return [eval_spec(m) for u in units for m in u.models()], units


@pytest.fixture(scope="module", autouse=True)
def cluster():
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the fault-injecting builders below
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024**2, log_to_driver=False)
    yield
    ray.shutdown()


def _payloads(root: Path) -> dict[str, str]:
    """Artifact key -> SHA-256 of its payload (the file minus its header, which holds the creation time)."""
    from compress.store.files import read_artifact_header
    from compress.store.artifacts import STORE_FORMAT_VERSION

    out = {}
    for path in (root / "objects").rglob("*.pt"):
        header = read_artifact_header(path, STORE_FORMAT_VERSION)
        out[path.stem] = header["payload_sha256"]
    return out


def _smoke_specs():
    from fixtures.claims import WORLDS
    from fixtures.profile import load_profile

    profile = load_profile("smoke")
    return [s for world in WORLDS.values() for s in world.specs(profile, None)]


def test_ray_builds_exactly_the_artifacts_of_a_plain_build_byte_for_byte(tmp_path):
    """The smoke profile's whole DAG (300 artifacts: every kind, MW, GC, MH and SH)."""
    specs = _smoke_specs()
    result = build_with_ray(specs, tmp_path / "ray")
    assert result.ok and len(result.built) == len({a.key for s in specs for a in s.ancestors()})
    ArtifactStore(tmp_path / "plain", make_builders(Workspace(device="cpu"))).build_all(specs)
    assert _payloads(tmp_path / "ray") == _payloads(tmp_path / "plain") and len(result.built) == 300
    again = build_with_ray(specs, tmp_path / "ray")  # a warm store: nothing to do, no task started
    assert again.ok and again.built == []


def _dying_builders(target: str, workspace):
    """The normal kinds, except that building ``target`` kills the worker process mid-build."""
    builders = make_builders(workspace)

    def build(kind_builder, spec, parents, ctx):
        if spec.key == target:
            os._exit(1)
        return kind_builder(spec, parents, ctx)

    return {kind: functools.partial(build, b) for kind, b in builders.items()}


def test_a_killed_task_is_reported_by_spec_leaves_nothing_and_a_rerun_completes(tmp_path):
    specs, units = _specs()
    student = next(iter(units[0].students.values()))
    result = build_with_ray(specs, tmp_path, builders=functools.partial(_dying_builders, student.key), max_retries=0)
    assert list(result.failed) == [student.key], result.failed
    assert result.skipped == {eval_spec(student).key: student.key}  # below the failure: not attempted
    assert not (tmp_path / "objects" / student.key[:2] / f"{student.key}.pt").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp") or ".tmp-" in p.name]
    assert eval_spec(units[1].base).key in result.built  # the rest of the DAG went on
    rerun = build_with_ray(specs, tmp_path)
    assert rerun.ok and sorted(rerun.built) == sorted([student.key, eval_spec(student).key])


def test_pytest_claims_with_the_ray_executor_builds_then_a_plain_run_trains_nothing(tmp_path):
    from claimruns import output, run_claims

    res = run_claims(tmp_path, "--profile", "smoke", "--executor", "ray", "--update-findings")
    assert res.returncode == 0, output(res)
    assert "ray: building 300 artifacts" in output(res) and "ray: 300/300 done" in output(res)
    warm = run_claims(tmp_path, "--profile", "smoke")
    assert warm.returncode == 0, output(warm)
    assert "0 changed" in output(warm) and "train lenet5" not in output(warm)


def test_a_bad_device_is_named_before_any_task(tmp_path):
    from analysis._validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'cpu', 'auto', 'cuda' or 'cuda:N'.*'tpu'"):
        build_with_ray(_specs()[0], tmp_path, device="tpu")


def test_a_shared_store_directory_can_be_checked(tmp_path):
    assert check_store_filesystem(tmp_path) == []
    assert list(tmp_path.iterdir()) == []  # the check leaves nothing behind
