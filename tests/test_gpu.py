"""GPU paths: AMP (bf16 autocast), channels_last, CUDA-resident data, per-worker GPU pinning.

Skipped cleanly on machines without CUDA (CI never has one).
"""
from __future__ import annotations

import pytest
import torch

from compress.data.datasets import load_dataset
from compress.models.registry import create_model
from compress.runtime.devices import resolve_device
from compress.training.loop import TrainConfig, accuracy, predict, train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_amp_channels_last_training_on_cuda_resident_data_learns():
    data = load_dataset("fake", shape=(3, 32, 32), n_train=512, n_test=256).to("cuda")
    torch.manual_seed(0)
    model = create_model("resnet18", data.num_classes, data.in_shape, width=0.25).cuda()
    # 6 epochs: after 3, BatchNorm's running statistics still lag (13 % test accuracy on CPU too, 96 % after 6).
    res = train(model, data.x_train, data.y_train, TrainConfig(epochs=6, lr=0.05, amp=True, channels_last=True), seed=0)
    assert res.losses[-1] < res.losses[0]
    assert accuracy(predict(model, data.x_test), data.y_test) > 100.0 / data.num_classes * 5


def test_worker_k_uses_gpu_k_mod_n(monkeypatch):
    n = torch.cuda.device_count()
    monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{n + 1}")
    assert resolve_device("cuda") == torch.device("cuda", (n + 1) % n)


def test_a_resolved_cuda_device_string_is_accepted(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
