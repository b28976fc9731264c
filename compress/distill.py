"""Knowledge-distillation losses (callable strategies, one lookup table).

Hinton et al. (2015): ``loss = (1 − α)·CE(student, y) + α·T²·KL(p_teacher^T ‖ p_student^T)``.
**α weights the teacher (soft-target) term**: α → 1 means more weight on the
teacher, as in the MW paper ("α near 1 = more weight on the teacher"). The T²
factor keeps the soft term's gradient scale independent of T.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._validation import check_in_range

__all__ = ["KDConfig", "hinton_kd_loss", "soft_kl", "KD_LOSSES"]


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
