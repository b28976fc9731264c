"""The distillation callback: :class:`Distill` trains against a :class:`~compress.training.distill.Distiller`'s
loss with a frozen teacher, through :func:`compress.training.loop.train`.

Callbacks combine: ``train(model, x, y, cfg, seed=0, callbacks=[HoldMasks(m), Distill(d, t)])``, with
:class:`compress.prune.hold.HoldMasks` (pruned weights stay zero) and :class:`compress.quant.qat.FakeQuant`
(quantization-aware training) beside it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from analysis._validation import invalid
from compress.training.distill import Distiller
from compress.training.loop import Batch, Callback, TrainConfig, predict

__all__ = ["Distill", "FEATURE_CACHE_BYTES"]

#: The most memory :class:`Distill` spends on caching a frozen teacher's training-set features (1 GiB).
FEATURE_CACHE_BYTES = 1 << 30


class _FeatureTap:
    """Forward hooks keeping the latest outputs of the named modules of ``model``."""

    def __init__(self, model: nn.Module, names: Sequence[str], role: str):
        modules = dict(model.named_modules())
        for name in names:
            if name not in modules:
                known = ", ".join(n for n in list(modules)[1:21] if n)
                raise invalid(f"{role}_features", "Distill", f"names of modules of the {role} (e.g. {known})", name)
        self.features: dict[str, torch.Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._keep(n)) for n in names]

    def _keep(self, name: str):
        def hook(module, inputs, output):
            self.features[name] = output

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.features.clear()


class Distill(Callback):
    """Train against ``distiller``'s loss with a frozen ``teacher`` (eval mode, no gradients).

    Without augmentation and with a logit distiller, the teacher's logits are
    computed once for the whole training set (the teacher is frozen, so
    per-batch forwards would recompute the same numbers every epoch);
    otherwise the teacher runs on every batch, as the student saw it. The
    distiller is moved to the training device and its parameters (if any) are
    trained with the student's. At the start the distiller's
    :meth:`~compress.training.distill.Distiller.bind` sees the student and the teacher
    (SimKD checks that the student is its wrapped composite and names the
    teacher's feature module there), then its
    :meth:`~compress.training.distill.Distiller.setup` sees them with the whole training
    input (FitNets builds its regressor, CRD its embeddings and memory banks;
    the other strategies do nothing). A distiller whose ``needs_index`` is True
    gets ``index=batch.index`` as an extra keyword of its ``loss``. A feature
    distiller whose ``cache_teacher_features`` is True (FitNets, CRD) gets the
    teacher's logits and features computed once on the whole training set when
    there is no augmentation and they fit in :data:`FEATURE_CACHE_BYTES`
    (SimKD keeps its per-batch teacher forward: its stored students were built so).

    Parameters
    ----------
    distiller : Distiller
        The strategy (:func:`compress.training.distill.make_distiller`).
    teacher : nn.Module
        On the training device; left in eval mode.
    """

    def __init__(self, distiller: Distiller, teacher: nn.Module):
        if not isinstance(distiller, Distiller):
            raise invalid("distiller", "Distill", "a compress.training.distill.Distiller", distiller)
        if not isinstance(teacher, nn.Module):
            raise invalid("teacher", "Distill", "an nn.Module", teacher)
        self.distiller, self.teacher = distiller, teacher
        self._teacher_logits: torch.Tensor | None = None
        self._teacher_features: dict | None = None
        self._taps: list[_FeatureTap] = []
        self._label_smoothing = 0.0

    def on_train_start(self, model: nn.Module, x: torch.Tensor, config: TrainConfig) -> None:
        d = self.distiller
        self.teacher.eval()
        d.to(x.device).train()
        d.bind(model, self.teacher)
        d.setup(model, self.teacher, x)
        self._label_smoothing = config.label_smoothing
        self._taps = [_FeatureTap(model, d.student_features, "student"),
                      _FeatureTap(self.teacher, d.teacher_features, "teacher")]
        if config.augment == "none" and not d.needs_features:
            self._teacher_logits = predict(self.teacher, x)
        elif config.augment == "none" and d.cache_teacher_features:
            self._teacher_logits, self._teacher_features = self._teacher_outputs(x, self._taps[1])

    def _teacher_outputs(self, x: torch.Tensor, tap: _FeatureTap) -> tuple:
        """The frozen teacher's logits and tapped features on the whole training set, once (no augmentation: every
        epoch would recompute the same numbers). Kept only while they fit in :data:`FEATURE_CACHE_BYTES`."""
        logits, feats = [], {}
        with torch.no_grad():
            for start in range(0, x.shape[0], 256):
                logits.append(self.teacher(x[start:start + 256]))
                for name, f in tap.features.items():
                    feats.setdefault(name, []).append(f)
                size = sum(sum(t.numel() * t.element_size() for t in v) for v in feats.values())
                if size / (start + 256) * x.shape[0] > FEATURE_CACHE_BYTES:
                    return None, None  # too large: the teacher runs on every batch instead
        return torch.cat(logits), {name: torch.cat(v) for name, v in feats.items()}

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.distiller.parameters()

    def loss(self, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        student_tap, teacher_tap = self._taps
        teacher_features = teacher_tap.features
        if self._teacher_logits is not None:
            teacher_logits = self._teacher_logits[batch.index]
            if self._teacher_features is not None:
                teacher_features = {name: f[batch.index] for name, f in self._teacher_features.items()}
        else:
            with torch.no_grad():
                teacher_logits = self.teacher(batch.x)
        extra = {"index": batch.index} if self.distiller.needs_index else {}
        return self.distiller.loss(batch.logits, teacher_logits, batch.y, student_tap.features,
                                   teacher_features, label_smoothing=self._label_smoothing, **extra)

    def on_train_end(self) -> None:
        for tap in self._taps:
            tap.remove()
        self._taps = []
        self._teacher_logits = self._teacher_features = None
        self.distiller.eval()
