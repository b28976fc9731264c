"""Knowledge-distillation losses: small strategies behind one lookup table (:data:`DISTILLERS`).

Hinton et al. (2015): ``loss = (1 − α)·CE(student, y) + α·T²·KL(p_teacher^T ‖ p_student^T)``.
**α weights the teacher (soft-target) term**: α → 1 means more weight on the
teacher, as in the MW paper's text ("α near 1 = more weight on the teacher").
The T² factor keeps the soft term's gradient scale independent of T.

Strategies (pick by name with :func:`make_distiller`; both take ``temperature``
and ``teacher_weight``, α named by the term it weights):

* ``hinton`` — the loss above (:class:`HintonKD`);
* ``hinton_code`` — what the MW paper's published Keras code computes
  (:class:`MWCodeKD`): its models end in softmax, so its "logits" are
  probabilities, and T divides those probabilities before a second softmax
  (near-uniform soft targets); its ``alpha`` weights the cross-entropy, the
  reverse of its text (code α = 0.1 is ``teacher_weight`` 0.9).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._validation import check_choice, check_in_range

__all__ = ["KDConfig", "hinton_kd_loss", "soft_kl", "KD_LOSSES", "Distiller", "HintonKD", "MWCodeKD", "DISTILLERS",
           "make_distiller"]


@dataclass(frozen=True)
class KDConfig:
    """Hinton KD settings: ``temperature`` T > 0 and ``alpha`` ∈ [0, 1], the teacher term's weight."""

    temperature: float = 3.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        check_in_range("temperature", "KDConfig", self.temperature, 0.0, float("inf"))
        check_in_range("alpha", "KDConfig", self.alpha, 0.0, 1.0, closed="both")


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
    """Hinton KD loss; zero soft term when student = teacher. See module docstring for α."""
    ce = F.cross_entropy(student_logits.float(), targets, label_smoothing=label_smoothing)
    if config.alpha == 0.0:
        return ce
    return (1.0 - config.alpha) * ce + config.alpha * soft_kl(student_logits, teacher_logits, config.temperature)


KD_LOSSES = {"hinton": hinton_kd_loss}


class Distiller:
    """A distillation strategy: the training loss from the student's and the teacher's outputs.

    Logit distillers (the two here) read outputs only; feature-based ones
    (FitNets, SimKD, CRD) will also declare the intermediate layers they need.
    """

    name = ""

    def loss(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, *,
             label_smoothing: float = 0.0) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define loss")


@dataclass(frozen=True)
class HintonKD(Distiller):
    """Hinton KD as the MW paper's §2.1 describes it: ``teacher_weight`` on the soft term."""

    temperature: float = 3.0
    teacher_weight: float = 0.5
    name = "hinton"

    def __post_init__(self) -> None:
        KDConfig(self.temperature, self.teacher_weight)  # same checks, same messages

    def loss(self, student_logits, teacher_logits, targets, *, label_smoothing=0.0):
        return hinton_kd_loss(student_logits, teacher_logits, targets, KDConfig(self.temperature, self.teacher_weight),
                              label_smoothing=label_smoothing)


@dataclass(frozen=True)
class MWCodeKD(Distiller):
    """The MW paper's Keras code: ``(1 − w)·CE + w·T²·KL(softmax(p_t/T) ‖ softmax(p_s/T))``, p = softmax(logits).

    The code writes ``alpha * student_loss + (1 - alpha) * distillation_loss``
    with alpha on the cross-entropy; ``teacher_weight`` w = 1 − alpha names it by
    the teacher term, like :class:`HintonKD`, so the two variants line up.
    """

    temperature: float = 3.0
    teacher_weight: float = 0.5
    name = "hinton_code"

    def __post_init__(self) -> None:
        KDConfig(self.temperature, self.teacher_weight)

    def loss(self, student_logits, teacher_logits, targets, *, label_smoothing=0.0):
        ce = F.cross_entropy(student_logits.float(), targets, label_smoothing=label_smoothing)
        if self.teacher_weight == 0.0:
            return ce
        p_s = F.softmax(student_logits.float(), dim=1)
        p_t = F.softmax(teacher_logits.float(), dim=1)
        soft = soft_kl(p_s, p_t, self.temperature)  # softmax of probabilities / T: near-uniform targets
        return (1.0 - self.teacher_weight) * ce + self.teacher_weight * soft


DISTILLERS = {"hinton": HintonKD, "hinton_code": MWCodeKD}


def make_distiller(name: str, **params) -> Distiller:
    """The strategy registered as ``name`` (:data:`DISTILLERS`) with its parameters."""
    check_choice("name", "make_distiller", name, DISTILLERS)
    return DISTILLERS[name](**params)
