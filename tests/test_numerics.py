"""Pinned CPU numerics: the caller's kernel-dispatch settings do not change an artifact's bytes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import compress.runtime.numerics as numerics

ROOT = Path(__file__).resolve().parent.parent

BUILD = """
import hashlib, json, sys
import compress  # pins the dispatch before torch loads
import torch
from compress.build.kinds import make_builders
from compress.build.recipes import eval_spec, prune_spec, train_spec
from compress.build.workspace import Workspace
from compress.store.artifacts import STORE_FORMAT_VERSION, ArtifactStore
from compress.store.files import read_artifact_header
from compress.training.loop import TrainConfig
store = ArtifactStore(sys.argv[1], make_builders(Workspace(device="cpu")))
out = {}
for arch, ov in (("lenet5", {}), ("resnet18", {"width": 0.125})):
    base = train_spec(arch, "fake", init_seed=0, seed=0, train=TrainConfig(epochs=1, lr=0.02),
                      overrides=ov, data_options={"shape": (1, 8, 8), "n_train": 128, "n_test": 32})
    # The whole payload (weights, metrics, logits), not just the weights: nothing machine- or time-dependent.
    specs = [base, eval_spec(base), prune_spec(base, sparsity=0.5)]
    store.build_all(specs)
    out[arch] = [read_artifact_header(store.path_for(s), STORE_FORMAT_VERSION)["payload_sha256"] for s in specs]
out["capability"] = torch.backends.cpu.get_cpu_capability()
print(json.dumps(out))
"""


def _build(tmp_path, name, **env):
    env = {**os.environ, numerics.MODE_VARIABLE: "portable", **env}
    res = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path / name)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_callers_cpu_capability_does_not_change_the_bytes(tmp_path):
    runs = [_build(tmp_path, cap, ATEN_CPU_CAPABILITY=cap, MKL_ENABLE_INSTRUCTIONS="AVX512")
            for cap in ("avx512", "avx2", "default")]
    assert {r["capability"] for r in runs} == {"DEFAULT"}  # pinned, whatever the caller asked for
    assert len({json.dumps([r["lenet5"], r["resnet18"]]) for r in runs}) == 1


def test_native_is_the_default_and_portable_mode_pins(monkeypatch):
    monkeypatch.delenv(numerics.MODE_VARIABLE, raising=False)
    assert numerics.mode() == "native" == numerics.DEFAULT_MODE and numerics.pin_cpu_dispatch() is False
    monkeypatch.setenv(numerics.MODE_VARIABLE, "")
    assert numerics.mode() == "native"
    monkeypatch.setenv(numerics.MODE_VARIABLE, " Portable ")
    assert numerics.mode() == "portable"
    monkeypatch.setenv(numerics.MODE_VARIABLE, "fast")
    with pytest.raises(ValueError, match="'native', 'portable'. Got 'fast' instead"):
        numerics.mode()


PORTABLE_CONV = """
import json
import compress, torch
from torch.profiler import profile
from compress.runtime import numerics
conv, x = torch.nn.Conv2d(64, 64, 3, padding=1), torch.randn(32, 64, 8, 8)
with numerics.cpu_build(), torch.no_grad(), profile() as prof:
    conv(x)
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "mode": numerics.mode(),
                  "kernels": sorted({e.key for e in prof.key_averages()})}))
"""


def test_portable_mode_in_a_fresh_process_pins_dispatch_and_convolves_without_nnpack():
    """The opt-in mode, as a user sets it: before torch loads (pytest's own process runs the default)."""
    env = {**os.environ, numerics.MODE_VARIABLE: "portable", "ATEN_CPU_CAPABILITY": "avx2"}
    res = subprocess.run([sys.executable, "-c", PORTABLE_CONV], capture_output=True, text=True, cwd=ROOT,
                         timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["mode"] == "portable" and out["capability"] == "DEFAULT"
    assert not any("nnpack" in k for k in out["kernels"]), out["kernels"]
    assert any(k in out["kernels"] for k in ("aten::_slow_conv2d_forward", "aten::thnn_conv2d")), out["kernels"]


def test_environment_records_what_decides_the_bytes_and_differences_name_them():
    env = numerics.environment("cpu")
    assert {"torch", "numerics", "cpu_capability", "mkl_cbwr", "threads", "device"} <= set(env)
    cap = "DEFAULT" if env["cpu_capability"] != "DEFAULT" else "AVX512"  # another capability than this one's
    other = {**env, "cpu_capability": cap, "device": "cuda:1"}
    assert numerics.differences(env, other) == [f"cpu_capability: {env['cpu_capability']} → {cap}", "device: cpu → cuda"]
    assert numerics.differences({**env, "device": "cuda:0"}, {**env, "device": "cuda:1"}) == []
    assert numerics.differences(None, env) == []


def test_a_cpu_build_is_single_threaded_without_onednn_or_nnpack_and_restores_the_settings():
    import torch

    before, nnpack_before = torch.get_num_threads(), torch._C._get_nnpack_enabled()
    with numerics.cpu_build():
        assert torch.get_num_threads() == 1
        assert torch.backends.mkldnn.enabled is (numerics.mode() != "portable")
        # NNPACK's forward convolutions block their sums by the L1 cache size: never in a portable build.
        assert torch._C._get_nnpack_enabled() is (numerics.mode() != "portable")
    assert torch.get_num_threads() == before and torch._C._get_nnpack_enabled() is nnpack_before


def test_resolve_device_names_what_it_cannot_use():
    import torch

    from compress.runtime.devices import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda:0', which torch does not see"):
            resolve_device("cuda:0")
