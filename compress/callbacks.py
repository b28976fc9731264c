"""Training callbacks: what a training run adds to the one recipe in :func:`compress.training.train`.

* :class:`HoldMasks` — pruned weights stay exactly zero (iterative pruning,
  fine-tuning, rewinding);
* :class:`Distill` — the loss comes from a :class:`~compress.distill.Distiller`
  and a frozen teacher;
* :class:`FakeQuant` — quantization-aware training: conv/linear weights are
  fake-quantized in the forward pass, gradients pass straight through.

They combine: ``train(model, x, y, cfg, seed=0, callbacks=[HoldMasks(m), Distill(d, t)])``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack

import torch
from torch import nn
from torch.nn.utils import parametrize

from analysis._validation import check_choice, invalid

from .distill import Distiller
from .masks import MaskHolder, MaskSet, apply_masks, validate_masks
from .quantize import QUANT_SCOPES, fake_quant_weight, quant_layers
from .training import Batch, Callback, TrainConfig, predict

__all__ = ["HoldMasks", "Distill", "FakeQuant", "FEATURE_CACHE_BYTES"]

#: The most memory :class:`Distill` spends on caching a frozen teacher's training-set features (1 GiB).
FEATURE_CACHE_BYTES = 1 << 30


class HoldMasks(Callback):
    """Hold ``masks`` fixed while training: masked weights stay exactly zero.

    Applies the masks at the start, zeroes masked gradients and re-applies the
    masks after every optimizer step, so neither momentum nor weight decay
    moves a masked weight (:class:`compress.masks.MaskHolder`). A frozen
    parameter (``requires_grad`` False: SimKD's reused teacher head) gets no
    gradient and no optimizer step, so zeroing it at the start holds it.
    """

    def __init__(self, masks: MaskSet):
        self.masks = masks
        self._stack = ExitStack()
        self._holder: MaskHolder | None = None

    def on_train_start(self, model, x, config) -> None:
        validate_masks(model, self.masks)
        apply_masks(model, self.masks)
        # MaskHolder hooks gradients, which a frozen parameter has none of (the hook cannot even be registered).
        trainable = {n: m for n, m in self.masks.items() if _requires_grad(model, n)}
        self._holder = self._stack.enter_context(MaskHolder(model, trainable))

    def after_step(self) -> None:
        self._holder.after_step()

    def on_train_end(self) -> None:
        self._stack.close()
        self._holder = None


def _requires_grad(model: nn.Module, name: str) -> bool:
    """Whether the parameter ``name`` (plain name, also while parametrized) requires gradients."""
    module, _, attr = name.rpartition(".")
    return getattr(model.get_submodule(module), attr).requires_grad


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
    :meth:`~compress.distill.Distiller.bind` sees the student and the teacher
    (SimKD checks that the student is its wrapped composite and names the
    teacher's feature module there), then its
    :meth:`~compress.distill.Distiller.setup` sees them with the whole training
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
        The strategy (:func:`compress.distill.make_distiller`).
    teacher : nn.Module
        On the training device; left in eval mode.
    """

    def __init__(self, distiller: Distiller, teacher: nn.Module):
        if not isinstance(distiller, Distiller):
            raise invalid("distiller", "Distill", "a compress.distill.Distiller", distiller)
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


class _StraightThroughQuant(nn.Module):
    """Parametrization: per-output-channel symmetric fake quantization, identity gradient."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        # The scale is computed from the detached weight and every value lies inside the
        # clamp range, so torch's fake-quantize backward passes the gradient through unchanged.
        return fake_quant_weight(weight, self.bits).to(weight.dtype)


class FakeQuant(Callback):
    """Quantization-aware training: fake-quantize weights in the forward pass (straight-through gradients).

    Every conv/linear weight (``scope="conv+linear"``) or every linear weight
    (``scope="linear"``) is re-parametrized (``torch.nn.utils.parametrize``)
    as :func:`compress.quantize.fake_quant_weight` of a float latent weight:
    per output channel, symmetric, ``bits`` bits. The optimizer updates the
    latent weights; the gradient reaches them unchanged through the rounding.
    At the end the parametrizations are removed and the weights left on the
    quantization grid (the quantized model is what training produced).

    Parameters
    ----------
    bits : int
        In [2, 16].
    scope : {'conv+linear', 'linear'}
    """

    def __init__(self, bits: int, scope: str = "conv+linear"):
        if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
            raise invalid("bits", "FakeQuant", "an integer in [2, 16]", bits)
        check_choice("scope", "FakeQuant", scope, QUANT_SCOPES)
        self.bits, self.scope = bits, scope
        self._layers: list[nn.Module] = []

    def on_train_start(self, model, x, config) -> None:
        self._layers = [m for _, m in quant_layers(model, self.scope)]
        for m in self._layers:
            parametrize.register_parametrization(m, "weight", _StraightThroughQuant(self.bits))

    def on_train_end(self) -> None:
        for m in self._layers:
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        self._layers = []
