"""SimKD's student: its encoder, a projector, and the teacher's classifier reused and frozen.

SimKD (Chen et al. 2022, "Knowledge Distillation with the Reused Teacher
Classifier"; the MH paper §3.1): the student's last feature map goes through a
projector into the teacher's feature space, and the teacher's classifier is
"directly employed for student inference". Training is label-free: the loss is
only the MSE between the projected student map and the teacher's last map
(:class:`compress.training.distill.SimKD`), so a temperature plays no part.

The deployed student is :class:`SimKDStudent` = student encoder → projector →
teacher head (its global pool and final layer(s); :func:`compress.models.split.split_model`
draws the boundary), and its parameter count includes all three.

Projector (SimKD's own code, ``SimKD`` in its ``models/util.py``; the MH paper
does not describe one — declared): conv1×1 → BN → ReLU → conv3×3 → BN → ReLU →
conv1×1 → BN → ReLU, convs without bias, from the student's channels C_s to the
teacher's C_t through ``C_t // bottleneck`` hidden channels (bottleneck 2 in
SimKD). PyTorch's default initialisation. When the two maps differ in spatial
size the larger is adaptive-average-pooled to the smaller's: a larger student
map inside the projector, before its convs (so the deployed student does the
same); a larger teacher map in the loss. Each dimension on its own (SimKD's
code compares heights of square maps).

The teacher head is a copy, so pruning or fine-tuning the student never touches
the teacher. It is frozen: its parameters do not require gradients (the
training optimizer skips them), and it stays in eval mode when the student is
put in train mode, so BatchNorm (if a head had one) keeps its statistics and a
dropout in it (torchvision MobileNet-V2's classifier) is off.

Through the artifact store, ``compress.build.recipes.distill_spec(teacher,
distiller="simkd", ...)`` trains one (the student's weights from its
``init_seed``, the projector drawn next in the same seeded RNG stream), and the
payload's ``simkd`` field (teacher architecture and overrides, bottleneck) lets
``compress.build.workspace.model_from_payload`` rebuild it with :func:`build_simkd_student`.
"""
from __future__ import annotations

import copy
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from analysis._validation import invalid

from compress.models.registry import create_model
from compress.models.split import split_model

__all__ = ["SimKDProjector", "SimKDStudent", "simkd_student", "build_simkd_student", "feature_shape",
           "check_bottleneck"]


def check_bottleneck(bottleneck: object, owner: str) -> int:
    """``bottleneck`` as an int ≥ 1, or the one-format error naming ``owner``."""
    if isinstance(bottleneck, bool) or not isinstance(bottleneck, numbers.Integral) or bottleneck < 1:
        raise invalid("bottleneck", owner, "an integer >= 1", bottleneck)
    return int(bottleneck)


def _check_size(size: object, owner: str) -> tuple[int, int]:
    ok = (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in size))
    if not ok:
        raise invalid("teacher_size", owner, "a (height, width) pair of ints >= 1", size)
    return int(size[0]), int(size[1])


class SimKDProjector(nn.Module):
    """Student feature map ``[N, C_s, H, W]`` → teacher feature space ``[N, C_t, min(H, H_t), min(W, W_t)]``.

    Parameters
    ----------
    in_channels, out_channels : int
        C_s and C_t.
    teacher_size : (int, int)
        ``(H_t, W_t)`` of the teacher's map: a larger student map is pooled to it.
    bottleneck : int
        Hidden channels are ``max(1, C_t // bottleneck)``; ≥ 1.
    """

    def __init__(self, in_channels: int, out_channels: int, *, teacher_size: tuple[int, int], bottleneck: int = 2):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise invalid(name, "SimKDProjector", "an int >= 1", value)
        self.bottleneck = check_bottleneck(bottleneck, "SimKDProjector")
        self.teacher_size = _check_size(teacher_size, "SimKDProjector")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        hidden = max(1, self.out_channels // self.bottleneck)
        self.layers = nn.Sequential(
            nn.Conv2d(self.in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, self.out_channels, 1, bias=False), nn.BatchNorm2d(self.out_channels), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        size = (min(h, self.teacher_size[0]), min(w, self.teacher_size[1]))
        if size != (h, w):
            x = F.adaptive_avg_pool2d(x, size)
        return self.layers(x)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"teacher_size={self.teacher_size}, bottleneck={self.bottleneck}")


class SimKDStudent(nn.Module):
    """The deployed SimKD student: ``head(projector(encoder(x)))``, the teacher's head frozen.

    Parameters
    ----------
    encoder : nn.Module
        The student's body (input → last feature map).
    projector : SimKDProjector
    head : nn.Module
        The teacher's head (feature map → logits). Frozen here: its parameters
        stop requiring gradients and it stays in eval mode (see the module docstring).
    """

    def __init__(self, encoder: nn.Module, projector: SimKDProjector, head: nn.Module):
        super().__init__()
        if not isinstance(projector, SimKDProjector):
            raise invalid("projector", "SimKDStudent", "a SimKDProjector", type(projector).__name__)
        self.encoder, self.projector, self.head = encoder, projector, head
        self.head.requires_grad_(False)
        self.head.eval()

    def train(self, mode: bool = True) -> SimKDStudent:
        super().train(mode)
        self.head.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.projector(self.encoder(x)))


@torch.no_grad()
def feature_shape(encoder: nn.Module, in_shape: tuple[int, int, int]) -> tuple[int, tuple[int, int]]:
    """``(C, (H, W))`` of ``encoder``'s map for one input of ``in_shape``.

    One forward of zeros in eval mode on the encoder's device; every module's
    mode is restored afterwards (BatchNorm statistics are not touched).
    """
    modes = [(m, m.training) for m in encoder.modules()]
    param = next(encoder.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    encoder.eval()
    try:
        out = encoder(torch.zeros(1, *in_shape, device=device))
    finally:
        for m, mode in modes:
            m.training = mode
    if out.dim() != 4:
        raise invalid("encoder", "feature_shape", "a module giving a [N, C, H, W] map", tuple(out.shape))
    return int(out.shape[1]), (int(out.shape[2]), int(out.shape[3]))


def simkd_student(student: nn.Module, teacher: nn.Module, in_shape: tuple[int, int, int], *,
                  bottleneck: int = 2) -> SimKDStudent:
    """The SimKD student built from a registry ``student`` and a (trained) ``teacher``.

    The encoder is ``student``'s own modules (training the composite trains
    them); the head is a frozen copy of ``teacher``'s; a fresh projector maps
    the student's channels to the teacher's. On ``student``'s device.

    Parameters
    ----------
    student, teacher : nn.Module
        Models of :func:`compress.models.registry.create_model` (:func:`compress.models.split.split_model`).
    in_shape : tuple of int
        ``(channels, height, width)`` of one input: fixes both maps' sizes.
    bottleneck : int
        The projector's channel reduction, ≥ 1.

    Raises
    ------
    InvalidParameterError
        A model :func:`~compress.models.split.split_model` does not know, or a bad ``bottleneck``.
    """
    bottleneck = check_bottleneck(bottleneck, "simkd_student")
    s, t = split_model(student), split_model(teacher)
    c_s, _ = feature_shape(s.encoder, in_shape)
    c_t, size_t = feature_shape(t.encoder, in_shape)
    projector = SimKDProjector(c_s, c_t, teacher_size=size_t, bottleneck=bottleneck)
    param = next(student.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return SimKDStudent(s.encoder, projector, copy.deepcopy(t.head)).to(device)


def build_simkd_student(student_arch: str, teacher_arch: str, num_classes: int, in_shape: tuple[int, int, int], *,
                        student_overrides: dict | None = None, teacher_overrides: dict | None = None,
                        bottleneck: int = 2) -> SimKDStudent:
    """A fresh :class:`SimKDStudent` from registry names: the skeleton a saved ``state_dict`` loads into.

    Initialisation draws from torch's global RNG (student, then teacher, then
    projector); the teacher's weights are placeholders for ``load_state_dict``.

    Raises
    ------
    InvalidParameterError
        Unknown architecture (the message lists the known ones), bad override or ``bottleneck``.
    """
    bottleneck = check_bottleneck(bottleneck, "build_simkd_student")
    student = create_model(student_arch, num_classes, in_shape, **dict(student_overrides or {}))
    teacher = create_model(teacher_arch, num_classes, in_shape, **dict(teacher_overrides or {}))
    return simkd_student(student, teacher, tuple(in_shape), bottleneck=bottleneck)
