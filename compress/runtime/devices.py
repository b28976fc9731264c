"""Where training runs: device choice, per-worker GPU pinning, thread caps."""
from __future__ import annotations

import os

import torch

from analysis._validation import check_choice

__all__ = ["DEVICES", "resolve_device", "worker_index", "cap_threads"]

DEVICES = ("auto", "cpu", "cuda")


def worker_index() -> int:
    """Index of this xdist worker (``gw3`` → 3); 0 outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = name.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def n_workers() -> int:
    return max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def resolve_device(device: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda`` into a concrete device.

    With several visible GPUs, xdist worker *k* gets GPU ``k mod n``.
    ``torch.cuda.device_count`` already honours ``CUDA_VISIBLE_DEVICES`` (the
    index is into the visible set), so nothing else needs remapping.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit():
        # An already-resolved device (a worker's "cuda:1") names itself; it is kept as it is.
        if not torch.cuda.is_available() or int(device[5:]) >= torch.cuda.device_count():
            from analysis._validation import InvalidParameterError

            raise InvalidParameterError(f"The 'device' parameter of resolve_device names {device!r}, which torch "
                                        f"does not see ({torch.cuda.device_count()} CUDA device(s)).")
        torch.cuda.set_device(int(device[5:]))
        return torch.device(device)
    check_choice("device", "resolve_device", device, DEVICES)
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        from analysis._validation import InvalidParameterError

        raise InvalidParameterError(
            "The 'device' option is 'cuda' but torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}). "
            "Use --device cpu or --device auto."
        )
    index = worker_index() % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def cap_threads() -> int:
    """Give each xdist worker an equal share of the cores so workers don't oversubscribe.

    An explicit ``OMP_NUM_THREADS`` wins (the user or a scheduler already
    decided). Returns the number of intra-op threads in force.
    """
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = max(1, int(os.environ["OMP_NUM_THREADS"]))
        torch.set_num_threads(threads)
        return threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // n_workers())
    torch.set_num_threads(threads)
    return threads
