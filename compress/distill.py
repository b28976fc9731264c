"""Knowledge distillation: strategies behind one lookup table (:data:`DISTILLERS`).

A :class:`Distiller` turns the student's and the teacher's outputs (and, for
feature distillers, named intermediate activations) into the training loss.
It is an ``nn.Module`` so that a strategy can own trainable modules (a
FitNets regressor, a SimKD projector): the training callback
:class:`compress.callbacks.Distill` moves it to the device and trains its
parameters together with the student's.

Pick a strategy by name with :func:`make_distiller`. The two Hinton variants
both take ``temperature`` T > 0 and ``teacher_weight`` w ∈ [0, 1], the weight
on the *teacher* (soft-target) term — α named by the term it weights:

``hinton`` (:class:`HintonKD`; Hinton et al. 2015, the MW paper's text §2.1)
    ``(1 − w)·CE(s, y) + w·T²·KL(softmax(t/T) ‖ softmax(s/T))`` on logits s, t.
    "An α value close to one tends toward a more substantial reliance on
    knowledge transfer from the teacher": the paper's α is w. The T² factor
    keeps the soft term's gradient scale independent of T.
``hinton_code`` (:class:`MWCodeKD`; the MW paper's published Keras code)
    The code's models end in softmax, so the "predictions" it divides by T are
    probabilities, and its ``alpha`` weights the cross-entropy. With p = softmax
    of our logits: ``(1 − w)·CE(s, y) + w·T²·KL(softmax(p_t/T) ‖ softmax(p_s/T))``
    with w = 1 − alpha_code (code α = 0.1 is ``teacher_weight`` 0.9).
``simkd`` (:class:`SimKD`; Chen et al. 2022, the MH paper §3.1)
    ``MSE(projector(f_s), f_t)`` on the student's and the teacher's last feature
    maps; no labels, no logits, no temperature. Takes ``bottleneck`` (int ≥ 1).

A strategy that changes what the student *is* (SimKD trains and deploys
student encoder → projector → teacher head) uses two hooks every
:class:`Distiller` has, both doing nothing by default (the Hinton variants keep
them so):

* :meth:`Distiller.wrap_student` ``(student, teacher, in_shape)`` — the model to
  train and deploy in place of ``student``; the caller calls it before
  :func:`compress.training.train` and stores what it returns;
* :meth:`Distiller.bind` ``(student, teacher)`` — called by
  :class:`compress.callbacks.Distill` when training starts, before the feature
  hooks are attached: a strategy checks the student it is given and fixes
  feature names that depend on the architectures (SimKD: the teacher's last
  feature module).
"""
from __future__ import annotations

import abc
import inspect
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from analysis._validation import check_choice, check_in_range, invalid

from .simkd import SimKDStudent, check_bottleneck, simkd_student
from .split import split_model

__all__ = ["KDConfig", "hinton_kd_loss", "soft_kl", "Distiller", "HintonKD", "MWCodeKD", "SimKD", "DISTILLERS",
           "make_distiller"]

Features = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class KDConfig:
    """Settings of :func:`hinton_kd_loss`: ``temperature`` T > 0 and ``alpha`` ∈ [0, 1], the teacher term's weight."""

    temperature: float = 3.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        _check_hinton("KDConfig", self.temperature, "alpha", self.alpha)


def _check_hinton(owner: str, temperature: float, weight_name: str, weight: float) -> None:
    check_in_range("temperature", owner, temperature, 0.0, float("inf"))
    check_in_range(weight_name, owner, weight, 0.0, 1.0, closed="both")


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² · KL(softmax(t/T) ‖ softmax(s/T))``, mean over the batch."""
    t = temperature
    log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / t, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * (t * t)


def hinton_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    config: KDConfig,
    *,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Hinton KD loss ``(1 − α)·CE + α·T²·KL``, α on the teacher term; zero soft term when student = teacher."""
    ce = F.cross_entropy(student_logits.float(), targets, label_smoothing=label_smoothing)
    if config.alpha == 0.0:
        return ce
    return (1.0 - config.alpha) * ce + config.alpha * soft_kl(student_logits, teacher_logits, config.temperature)


class Distiller(nn.Module, abc.ABC):
    """A distillation strategy: the training loss from student and teacher outputs.

    Attributes
    ----------
    student_features, teacher_features : tuple of str
        Names (as in ``model.named_modules()``) of the layers whose outputs
        :meth:`loss` reads, collected by forward hooks during the student's
        training forward and the teacher's forward. Empty for logit
        distillers, which lets training precompute the teacher's logits.

    Notes
    -----
    Trainable modules a strategy owns are ordinary submodules: their
    parameters are trained with the student's.
    """

    student_features: tuple[str, ...] = ()
    teacher_features: tuple[str, ...] = ()

    @property
    def needs_features(self) -> bool:
        return bool(self.student_features or self.teacher_features)

    def wrap_student(self, student: nn.Module, teacher: nn.Module, in_shape: tuple[int, int, int]) -> nn.Module:
        """The model to train (and deploy) in place of ``student``; ``student`` itself by default."""
        return student

    def bind(self, student: nn.Module, teacher: nn.Module) -> None:
        """Check ``student`` and fix architecture-dependent feature names before training; nothing by default."""

    @abc.abstractmethod
    def loss(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        targets: torch.Tensor,
        student_features: Features,
        teacher_features: Features,
        *,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """The batch's training loss (a scalar); ``label_smoothing`` applies to its cross-entropy term."""

    @abc.abstractmethod
    def settings(self) -> dict:
        """The constructor arguments, defaults filled in: ``type(d)(**d.settings())`` rebuilds ``d``."""


class _SoftTargetKD(Distiller):
    """Shared settings of the two Hinton variants: ``temperature`` T > 0 and ``teacher_weight`` w ∈ [0, 1]."""

    def __init__(self, temperature: float = 3.0, teacher_weight: float = 0.5):
        super().__init__()
        _check_hinton(type(self).__name__, temperature, "teacher_weight", teacher_weight)
        self.temperature, self.teacher_weight = float(temperature), float(teacher_weight)

    def settings(self) -> dict:
        return {"temperature": self.temperature, "teacher_weight": self.teacher_weight}

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, teacher_weight={self.teacher_weight}"


class HintonKD(_SoftTargetKD):
    """Hinton KD as the MW paper's text describes it, ``teacher_weight`` on the soft term: :func:`hinton_kd_loss`."""

    def __init__(self, temperature: float = 3.0, teacher_weight: float = 0.5):
        super().__init__(temperature, teacher_weight)
        self._config = KDConfig(self.temperature, self.teacher_weight)

    def loss(self, student_logits, teacher_logits, targets, student_features, teacher_features, *,
             label_smoothing=0.0):
        return hinton_kd_loss(student_logits, teacher_logits, targets, self._config, label_smoothing=label_smoothing)


class MWCodeKD(_SoftTargetKD):
    """KD as the MW paper's published Keras code computes it (its ``Distiller.train_step``).

    The code (student and teacher end in softmax, so ``predictions`` are
    probabilities; ``distillation_loss_fn`` is Keras' KL divergence)::

        distillation_loss = KLDivergence(softmax(teacher_predictions / T),
                                         softmax(student_predictions / T)) * T**2
        loss = alpha * student_loss + (1 - alpha) * distillation_loss

    Here, with logit-output models and p = softmax(logits)::

        loss = (1 − w)·CE(s, y) + w·T²·KL(softmax(p_t/T) ‖ softmax(p_s/T)),   w = 1 − alpha

    ``teacher_weight`` w is the code's ``1 − alpha``: code α = 0.1 is w = 0.9,
    mirroring the labels so that w means the same as in :class:`HintonKD`.
    Probabilities lie in [0, 1], so ``softmax(p/T)`` is close to uniform (the
    soft targets carry little of the teacher's ranking; that is the variant's
    point).
    """

    def loss(self, student_logits, teacher_logits, targets, student_features, teacher_features, *,
             label_smoothing=0.0):
        ce = F.cross_entropy(student_logits.float(), targets, label_smoothing=label_smoothing)
        if self.teacher_weight == 0.0:
            return ce
        p_s = F.softmax(student_logits.float(), dim=1)
        p_t = F.softmax(teacher_logits.float(), dim=1)
        return (1.0 - self.teacher_weight) * ce + self.teacher_weight * soft_kl(p_s, p_t, self.temperature)


class SimKD(Distiller):
    """SimKD: MSE between the projected student map and the teacher's last map (:mod:`compress.simkd`).

    The student it trains is :meth:`wrap_student`'s :class:`~compress.simkd.SimKDStudent`
    (student encoder → projector → the teacher's head, frozen); the projector
    is part of that student, so this strategy owns no parameters. The loss
    reads the projector's output (``student_features = ("projector",)``) and
    the teacher's last feature map (``teacher_features``, set by :meth:`bind`
    from :func:`compress.split.split_model`); a teacher map larger than the
    projected map is adaptive-average-pooled to its size. Labels, logits and
    label smoothing play no part.

    Parameters
    ----------
    bottleneck : int
        The projector's hidden channels are the teacher's divided by it; ≥ 1 (SimKD: 2).
    """

    student_features = ("projector",)

    def __init__(self, bottleneck: int = 2):
        super().__init__()
        self.bottleneck = check_bottleneck(bottleneck, "SimKD")
        self.teacher_features: tuple[str, ...] = ()

    def settings(self) -> dict:
        return {"bottleneck": self.bottleneck}

    def extra_repr(self) -> str:
        return f"bottleneck={self.bottleneck}"

    def wrap_student(self, student: nn.Module, teacher: nn.Module, in_shape: tuple[int, int, int]) -> SimKDStudent:
        """:func:`compress.simkd.simkd_student`: ``student``'s encoder, a fresh projector, ``teacher``'s head frozen."""
        return simkd_student(student, teacher, in_shape, bottleneck=self.bottleneck)

    def bind(self, student: nn.Module, teacher: nn.Module) -> None:
        """Check that ``student`` is a SimKD student of this bottleneck; read the teacher's last feature module."""
        if not isinstance(student, SimKDStudent):
            raise invalid("student", "SimKD", "a SimKDStudent (build it with SimKD.wrap_student(student, teacher, "
                          "in_shape))", type(student).__name__)
        if student.projector.bottleneck != self.bottleneck:
            raise invalid("student", "SimKD", f"a SimKDStudent whose projector has bottleneck {self.bottleneck}",
                          f"bottleneck {student.projector.bottleneck}")
        self.teacher_features = (split_model(teacher).feature_module,)

    def loss(self, student_logits, teacher_logits, targets, student_features, teacher_features, *,
             label_smoothing=0.0):
        if not self.teacher_features or self.teacher_features[0] not in teacher_features:
            raise invalid("teacher_features", "SimKD.loss", "the teacher's last feature map (call bind(student, "
                          "teacher) first; compress.callbacks.Distill does)", sorted(teacher_features))
        projected = student_features["projector"]
        target = teacher_features[self.teacher_features[0]]
        if target.shape[-2:] != projected.shape[-2:]:
            target = F.adaptive_avg_pool2d(target, projected.shape[-2:])
        if target.shape != projected.shape:
            raise invalid("teacher_features", "SimKD.loss", f"a map of the projected shape {tuple(projected.shape)}",
                          tuple(target.shape))
        return F.mse_loss(projected.float(), target.float())


#: The one lookup table of distillation strategies: name → class.
DISTILLERS: dict[str, type[Distiller]] = {"hinton": HintonKD, "hinton_code": MWCodeKD, "simkd": SimKD}


def make_distiller(name: str, **params) -> Distiller:
    """The strategy registered as ``name`` in :data:`DISTILLERS`, built with ``params``.

    Raises
    ------
    InvalidParameterError
        For an unknown name (the message lists the known ones) or a bad parameter value.
    """
    check_choice("name", "make_distiller", name, DISTILLERS)
    cls = DISTILLERS[name]
    known = [p for p in inspect.signature(cls).parameters]
    for key in params:
        if key not in known:
            raise invalid("params", f"make_distiller({name!r})", f"keywords among {', '.join(known)}", key)
    return cls(**params)
