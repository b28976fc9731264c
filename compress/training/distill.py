"""Knowledge distillation: strategies behind one lookup table (:data:`DISTILLERS`).

A :class:`Distiller` turns the student's and the teacher's outputs (and, for
feature distillers, named intermediate activations) into the training loss.
It is an ``nn.Module`` so that a strategy can own trainable modules (a
FitNets regressor, a SimKD projector): the training callback
:class:`compress.training.callbacks.Distill` moves it to the device and trains its
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
``fitnets`` (:class:`FitNetsKD`; Romero et al. 2015, the SH paper's hint loss)
    ``CE(s, y) + hint_weight·MSE(regressor(f_s), f_t)`` with f_s, f_t the outputs
    of the named ``student_layer`` and ``teacher_layer`` (equal spatial sizes:
    :func:`check_hint_pair` checks a pair before training) and a trainable
    1×1 or 3×3 convolution c_s → c_t as regressor.
``crd`` (:class:`CRDKD`; Tian et al. 2020, RepDistiller's ``crd``)
    ``ce_weight·CE(s, y) + crd_weight·CRD`` where CRD is the two-sided NCE
    contrastive loss between 128-d l2-normalised embeddings of the student's and
    the teacher's penultimate feature vectors, with ``negatives`` negatives per
    anchor drawn from momentum-updated memory banks over the training set.

A strategy that changes what the student *is* (SimKD trains and deploys
student encoder → projector → teacher head) uses two hooks every
:class:`Distiller` has, both doing nothing by default (the Hinton variants keep
them so):

* :meth:`Distiller.wrap_student` ``(student, teacher, in_shape)`` — the model to
  train and deploy in place of ``student``; the caller calls it before
  :func:`compress.training.loop.train` and stores what it returns;
* :meth:`Distiller.bind` ``(student, teacher)`` — called by
  :class:`compress.training.callbacks.Distill` when training starts, before the feature
  hooks are attached: a strategy checks the student it is given and fixes
  feature names that depend on the architectures (SimKD: the teacher's last
  feature module).

FitNets and CRD own modules whose sizes depend on the architectures or on the
training set; they build them in a third hook (a no-op by default, drawing no
randomness):

* :meth:`Distiller.setup` ``(student, teacher, x)`` — called by
  :class:`~compress.training.callbacks.Distill` right after :meth:`~Distiller.bind`,
  with the whole training input ``x`` on the training device; the optimizer is
  built after it, so parameters created here are trained. A strategy whose
  :attr:`~Distiller.needs_index` is True gets ``index=`` (the batch's positions
  in the training set) as an extra keyword of :meth:`~Distiller.loss`.

One module though long: it is the strategy interface and its five strategies
side by side, each a short class behind the one lookup table.
"""
from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from analysis._validation import check_choice, check_in_range, invalid

from compress.models.split import split_model
from compress.training.simkd import SimKDStudent, check_bottleneck, simkd_student

__all__ = ["CRDKD", "DISTILLERS", "REGRESSORS", "Distiller", "FitNetsKD", "HintonKD", "KDConfig", "MWCodeKD", "SimKD",
           "check_hint_pair", "hint_shapes", "hinton_kd_loss", "make_distiller", "soft_kl"]

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
    needs_index : bool
        Whether :meth:`loss` takes the keyword ``index`` (the batch's positions
        in the training set; CRD's memory rows). False: :meth:`loss` is called
        without it.

    Notes
    -----
    Trainable modules a strategy owns are ordinary submodules: their
    parameters are trained with the student's.
    """

    student_features: tuple[str, ...] = ()
    teacher_features: tuple[str, ...] = ()
    needs_index: bool = False
    #: Whether :class:`compress.training.callbacks.Distill` may compute the frozen teacher's features once for the whole
    #: training set (no augmentation) instead of on every batch. Off by default: batched and per-batch forwards
    #: need not agree to the last bit, and the strategies that predate it keep their stored results.
    cache_teacher_features: bool = False

    @property
    def needs_features(self) -> bool:
        return bool(self.student_features or self.teacher_features)

    def wrap_student(self, student: nn.Module, teacher: nn.Module, in_shape: tuple[int, int, int]) -> nn.Module:
        """The model to train (and deploy) in place of ``student``; ``student`` itself by default."""
        return student

    def bind(self, student: nn.Module, teacher: nn.Module) -> None:
        """Check ``student`` and fix architecture-dependent feature names before training; nothing by default."""

    def setup(self, student: nn.Module, teacher: nn.Module, x: torch.Tensor) -> None:
        """Build what the strategy owns once the models and the training set are known; nothing by default.

        :class:`compress.training.callbacks.Distill` calls it when training starts, right
        after :meth:`bind` and before the optimizer is built (so parameters
        created here are trained with the student's).

        Parameters
        ----------
        student, teacher : nn.Module
            On the training device.
        x : Tensor
            The whole training input, on the training device: ``len(x)`` is the
            training-set size, ``x[:2]`` an example batch for shape probes.
            What is built goes on ``x.device``.
        """

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
        """The batch's training loss (a scalar); ``label_smoothing`` applies to its cross-entropy term.

        A strategy with :attr:`needs_index` True takes one more keyword,
        ``index`` (the batch's positions in the training set).
        """

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
    """SimKD: MSE between the projected student map and the teacher's last map (:mod:`compress.training.simkd`).

    The student it trains is :meth:`wrap_student`'s :class:`~compress.training.simkd.SimKDStudent`
    (student encoder → projector → the teacher's head, frozen); the projector
    is part of that student, so this strategy owns no parameters. The loss
    reads the projector's output (``student_features = ("projector",)``) and
    the teacher's last feature map (``teacher_features``, set by :meth:`bind`
    from :func:`compress.models.split.split_model`); a teacher map larger than the
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
        """:func:`compress.training.simkd.simkd_student`: ``student``'s encoder, a fresh projector, ``teacher``'s head frozen."""
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
                          "teacher) first; compress.training.callbacks.Distill does)", sorted(teacher_features))
        projected = student_features["projector"]
        target = teacher_features[self.teacher_features[0]]
        if target.shape[-2:] != projected.shape[-2:]:
            target = F.adaptive_avg_pool2d(target, projected.shape[-2:])
        if target.shape != projected.shape:
            raise invalid("teacher_features", "SimKD.loss", f"a map of the projected shape {tuple(projected.shape)}",
                          tuple(target.shape))
        return F.mse_loss(projected.float(), target.float())


# ----------------------------------------------------------------------------- feature-shape probes


def _module_list(modules: Mapping[str, nn.Module], limit: int = 60) -> str:
    names = [n for n in modules if n]
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _output_shapes(model: nn.Module, names: Sequence[str], x: torch.Tensor, *, role: str,
                   owner: str) -> dict[str, tuple[int, ...]]:
    """Per-example output shapes of the named modules of ``model`` on ``x``.

    One forward in eval mode without gradients (no randomness drawn, no
    BatchNorm statistics moved); every module's mode is restored after. Works
    on the meta device. Errors name the parameter ``{role}_layer``.
    """
    param = f"{role}_layer"
    modules = dict(model.named_modules())
    for name in names:
        if not name or name not in modules:
            raise invalid(param, owner, f"the name of a module of the {role} (one of {_module_list(modules)})", name)
    shapes: dict[str, tuple[int, ...] | None] = {}

    def keep(name: str):
        def hook(module, inputs, output):
            shapes[name] = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None

        return hook

    handles = [modules[n].register_forward_hook(keep(n)) for n in names]
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode
    for name in names:
        if shapes.get(name) is None:
            raise invalid(param, owner, f"a module of the {role} that the forward pass calls and that returns a tensor",
                          name)
    return shapes


def _check_in_shape(in_shape: object, owner: str) -> tuple[int, int, int]:
    ok = (isinstance(in_shape, (tuple, list)) and len(in_shape) == 3
          and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in in_shape))
    if not ok:
        raise invalid("in_shape", owner, "(channels, height, width), three positive ints", in_shape)
    return tuple(in_shape)


def _check_maps(s_shape: tuple[int, ...], t_shape: tuple[int, ...], student_layer: str, teacher_layer: str,
                owner: str) -> None:
    """Raise unless both are feature maps (C, H, W) of one spatial size (a convolutional regressor keeps it)."""
    for role, layer, shape in (("student", student_layer, s_shape), ("teacher", teacher_layer, t_shape)):
        if len(shape) != 3:
            raise invalid(f"{role}_layer", owner, f"a module of the {role} whose output is a feature map "
                          "[N, C, H, W] (the regressor is a convolution)", (layer, shape))
    if s_shape[1:] != t_shape[1:]:
        raise invalid("teacher_layer", owner, f"a module of the teacher whose output has the spatial size "
                      f"{s_shape[1:]} of the student's {student_layer!r} output {s_shape} (the regressor keeps "
                      "the resolution)", (teacher_layer, t_shape))


def hint_shapes(student: nn.Module, teacher: nn.Module, student_layer: str, teacher_layer: str,
                in_shape: tuple[int, int, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-example output shapes of ``student_layer`` and ``teacher_layer`` on inputs of ``in_shape``.

    Runs one forward of each model on a batch of two zero inputs on the
    model's device, in eval mode without gradients (modes restored). Models
    built on the meta device (``with torch.device("meta"): create_model(...)``)
    work and cost nothing, so a pair can be checked when a spec is made.

    Parameters
    ----------
    student, teacher : nn.Module
    student_layer, teacher_layer : str
        Names as in ``model.named_modules()``.
    in_shape : tuple of int
        ``(channels, height, width)`` of one input.

    Returns
    -------
    tuple
        ``(student_shape, teacher_shape)``, each the output shape without the
        batch dimension (``(C, H, W)`` for a feature map).

    Raises
    ------
    InvalidParameterError
        For a name that is no module of its model (the message lists the
        model's module names) or a module the forward pass does not call.
    """
    return _hint_shapes(student, teacher, student_layer, teacher_layer, in_shape, "hint_shapes")


def _hint_shapes(student: nn.Module, teacher: nn.Module, student_layer: str, teacher_layer: str,
                 in_shape: tuple[int, int, int], owner: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    in_shape = _check_in_shape(in_shape, owner)
    out = []
    for role, model, layer in (("student", student, student_layer), ("teacher", teacher, teacher_layer)):
        x = torch.zeros(2, *in_shape, device=_model_device(model))
        out.append(_output_shapes(model, (layer,), x, role=role, owner=owner)[layer])
    return out[0], out[1]


def check_hint_pair(student: nn.Module, teacher: nn.Module, student_layer: str, teacher_layer: str,
                    in_shape: tuple[int, int, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Check a FitNets hint pair before training: :func:`hint_shapes`, both feature maps of one spatial size.

    Returns
    -------
    tuple
        ``(student_shape, teacher_shape)`` as :func:`hint_shapes`: the
        regressor maps ``student_shape[0]`` channels to ``teacher_shape[0]``.

    Raises
    ------
    InvalidParameterError
        As :func:`hint_shapes`; and for an output that is not a feature map
        ``[N, C, H, W]`` or for spatial sizes that differ (the message names
        both layers and both shapes).
    """
    s_shape, t_shape = _hint_shapes(student, teacher, student_layer, teacher_layer, in_shape, "check_hint_pair")
    _check_maps(s_shape, t_shape, student_layer, teacher_layer, "check_hint_pair")
    return s_shape, t_shape


# ----------------------------------------------------------------------------- FitNets

#: FitNetsKD's regressor kinds: kernel size 1 or 3 (padding 1); both keep the resolution.
REGRESSORS = ("conv1x1", "conv3x3")


def _check_layer_name(param: str, owner: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not value:
        expected = "a module name (as in model.named_modules())" + (" or None" if optional else "")
        raise invalid(param, owner, expected, value)


class FitNetsKD(Distiller):
    """FitNets hint training (Romero et al. 2015) joined with the label loss, as the SH paper uses it.

    ``loss = CE(s, y) + hint_weight · MSE(regressor(f_s), f_t)``

    with f_s, f_t the outputs of ``student_layer`` and ``teacher_layer`` (the
    SH paper: layer 17 of VGG-16 and layer 11 of VGG-11, weight 0.5) and the
    regressor a trainable convolution c_s → c_t with bias (no normalisation,
    no activation) that keeps the resolution, so the two maps must have one
    spatial size. Label smoothing applies to the CE term; the teacher's logits
    play no part. MSE is the mean over all entries. FitNets' regressor carries
    the hint layer's nonlinearity; here it is linear, so a hint taken at a
    convolution's output (before BatchNorm/ReLU) is matched exactly in form.

    The regressor is built by :meth:`setup` when training starts (the channel
    counts come from a shape probe on two training inputs) and trained with the
    student; it is not part of the deployed student. Its initial weights
    (``nn.Conv2d``'s default init) are drawn from torch's global CPU RNG at that
    moment: :func:`compress.training.loop.train` does not seed that RNG (its
    ``seed`` orders the data and augmentation), so a reproducible run seeds
    it (``torch.manual_seed``) before training (the store's builders do:
    :func:`compress.build.workspace.trained`). A fresh regressor is drawn at every
    training start. The teacher's features may be computed once for the
    training set (``cache_teacher_features``).

    Parameters
    ----------
    student_layer, teacher_layer : str
        Module names (as in ``model.named_modules()``) whose outputs are
        feature maps of one spatial size (:func:`check_hint_pair` checks a pair
        before training).
    hint_weight : float
        Weight of the hint term, ≥ 0 (SH paper: 0.5).
    regressor : {'conv1x1', 'conv3x3'}
        Kernel size of the regressor (3×3 with padding 1).
    """

    cache_teacher_features = True

    def __init__(self, student_layer: str, teacher_layer: str, hint_weight: float = 0.5, regressor: str = "conv1x1"):
        super().__init__()
        owner = "FitNetsKD"
        _check_layer_name("student_layer", owner, student_layer)
        _check_layer_name("teacher_layer", owner, teacher_layer)
        check_in_range("hint_weight", owner, hint_weight, 0.0, float("inf"), closed="left")
        check_choice("regressor", owner, regressor, REGRESSORS)
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.hint_weight, self.regressor_kind = float(hint_weight), regressor
        self.student_features, self.teacher_features = (student_layer,), (teacher_layer,)
        self.regressor: nn.Conv2d | None = None

    def settings(self) -> dict:
        return {"student_layer": self.student_layer, "teacher_layer": self.teacher_layer,
                "hint_weight": self.hint_weight, "regressor": self.regressor_kind}

    def extra_repr(self) -> str:
        return (f"student_layer={self.student_layer!r}, teacher_layer={self.teacher_layer!r}, "
                f"hint_weight={self.hint_weight}, regressor={self.regressor_kind!r}")

    def setup(self, student: nn.Module, teacher: nn.Module, x: torch.Tensor) -> None:
        """Probe both layers on ``x[:2]``, check them as :func:`check_hint_pair` does, build the regressor on ``x``'s device.

        Raises
        ------
        InvalidParameterError
            For an unknown layer name, an output that is not a feature map, or
            spatial sizes that differ (naming both layers and both shapes).
        """
        owner = "FitNetsKD"
        example = x[:2]
        s_shape = _output_shapes(student, (self.student_layer,), example, role="student", owner=owner)[
            self.student_layer]
        t_shape = _output_shapes(teacher, (self.teacher_layer,), example, role="teacher", owner=owner)[
            self.teacher_layer]
        _check_maps(s_shape, t_shape, self.student_layer, self.teacher_layer, owner)
        k = 1 if self.regressor_kind == "conv1x1" else 3
        self.regressor = nn.Conv2d(s_shape[0], t_shape[0], k, padding=k // 2).to(x.device)

    def loss(self, student_logits, teacher_logits, targets, student_features, teacher_features, *,
             label_smoothing=0.0):
        if self.regressor is None:
            raise invalid("regressor", "FitNetsKD.loss", "built (call setup(student, teacher, x) first; "
                          "compress.training.callbacks.Distill does)", None)
        ce = F.cross_entropy(student_logits.float(), targets, label_smoothing=label_smoothing)
        hint = F.mse_loss(self.regressor(student_features[self.student_layer]).float(),
                          teacher_features[self.teacher_layer].float())
        return ce + self.hint_weight * hint


# ----------------------------------------------------------------------------- CRD

_NCE_EPS = 1e-7  # RepDistiller's crd/criterion.py


def _feature_vector(f: torch.Tensor) -> torch.Tensor:
    """A feature map adaptive-average-pooled to 1×1 and flattened; other outputs flattened."""
    if f.dim() == 4:
        f = F.adaptive_avg_pool2d(f, 1)
    return f.flatten(1)


def _nce_loss(p: torch.Tensor, n_data: int) -> torch.Tensor:
    """RepDistiller's ``ContrastLoss`` (the CRD paper's Eq. 18) on ``p`` = [positive, K negatives] per row."""
    k = p.shape[1] - 1
    m_pn = k / float(n_data)  # K · P_n, P_n = 1/n the uniform noise distribution
    p_pos, p_neg = p[:, 0], p[:, 1:]
    log_d1 = torch.log(p_pos / (p_pos + m_pn + _NCE_EPS))
    log_d0 = torch.log(m_pn / (p_neg + m_pn + _NCE_EPS))
    return -(log_d1.sum() + log_d0.sum()) / p.shape[0]


def _check_int(param: str, owner: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise invalid(param, owner, f"an int ≥ {low}", value)
    return value


class CRDKD(Distiller):
    """Contrastive Representation Distillation (Tian et al. 2020), as RepDistiller's ``crd`` computes it.

    ``loss = ce_weight · CE(s, y) + crd_weight · CRD``

    (RepDistiller's ``train_student.py --distill crd -a 0 -b 0.8``: CE weight 1,
    no KL term, CRD weight 0.8). The CRD term follows ``crd/criterion.py`` and
    ``crd/memory.py``:

    * f_s, f_t: the student's and the teacher's penultimate feature vectors — the
      outputs of ``student_layer``/``teacher_layer`` (default: the model's last
      feature map, :func:`compress.models.split.split_model`'s ``feature_module``),
      adaptive-average-pooled and flattened;
    * embeddings v_s = g_s(f_s), v_t = g_t(f_t): Linear to ``embed_dim``,
      l2-normalised; both trained with the student;
    * two memory banks of ``embed_dim``-vectors, one row per training example
      (student's, teacher's), initialised uniformly in [−σ, σ], σ = 1/√(embed_dim/3);
    * per anchor i: row i (the positive) and K = ``negatives`` rows drawn
      uniformly with replacement from all n rows (ContrastMemory's AliasMethod
      with uniform weights: nothing excluded); scores exp(⟨m, v⟩/T)/Z, the
      student's v against the teacher's bank and the teacher's v against the
      student's bank; Z per side fixed on the first batch as mean(exp(⟨m, v⟩/T))·n;
    * NCE loss per side (``ContrastLoss``):
      ``−Σ_i [log(P_pos/(P_pos + K/n)) + Σ_k log((K/n)/(P_k + K/n))] / B`` (+1e-7 in
      the denominators); CRD is the sum of the two sides;
    * after the scores, the batch's rows of each bank move towards the batch's
      embeddings, ``m ← normalise(momentum·m + (1 − momentum)·v)`` (no gradient).

    RepDistiller's CIFAR-100 training script does not use the uniform draw: its
    data set (``CIFAR100InstanceSample``, mode 'exact') hands over K negatives
    drawn without replacement from examples of *other classes*. That needs every
    training label when the banks are built, which :meth:`setup` does not get;
    here a negative has the anchor's class with probability ≈ its class share.

    The training-set size n is learnt at :meth:`setup`. With fewer than
    K + 1 examples, K is scaled to the dataset: K = n − 1
    (:attr:`negatives_used`, :attr:`scaling`). :meth:`loss` takes ``index``
    (:attr:`~Distiller.needs_index`); :class:`compress.training.callbacks.Distill` passes it.
    The contrastive part runs in float32 outside autocast; the banks live on
    the training device.

    Randomness: at :meth:`setup` the two embeddings (``nn.Linear``'s default
    init), then the student's and the teacher's banks are drawn from torch's
    global CPU RNG, then one draw from it seeds a ``torch.Generator`` on the
    training device that draws the negatives. :func:`compress.training.loop.train`
    does not seed the global RNG (its ``seed`` orders the data), so a
    reproducible run seeds it (``torch.manual_seed``) before training.

    Parameters
    ----------
    negatives : int
        K, negatives per anchor, ≥ 1 (CRD: 4096).
    temperature : float
        T > 0 (CRD: 0.07).
    embed_dim : int
        Embedding size, ≥ 1 (CRD: 128).
    momentum : float
        Memory update momentum in [0, 1) (CRD: 0.5).
    crd_weight, ce_weight : float
        Weights ≥ 0 of the CRD and the cross-entropy terms (0.8, 1.0).
    student_layer, teacher_layer : str or None
        Modules whose outputs are the feature vectors (pooled if maps); None:
        :func:`~compress.models.split.split_model`'s ``feature_module`` of the model.
    """

    needs_index = True
    cache_teacher_features = True

    def __init__(self, negatives: int = 4096, temperature: float = 0.07, embed_dim: int = 128, momentum: float = 0.5,
                 crd_weight: float = 0.8, ce_weight: float = 1.0, student_layer: str | None = None,
                 teacher_layer: str | None = None):
        super().__init__()
        owner = "CRDKD"
        self.negatives = _check_int("negatives", owner, negatives, 1)
        check_in_range("temperature", owner, temperature, 0.0, float("inf"))
        self.embed_dim = _check_int("embed_dim", owner, embed_dim, 1)
        check_in_range("momentum", owner, momentum, 0.0, 1.0, closed="left")
        check_in_range("crd_weight", owner, crd_weight, 0.0, float("inf"), closed="left")
        check_in_range("ce_weight", owner, ce_weight, 0.0, float("inf"), closed="left")
        _check_layer_name("student_layer", owner, student_layer, optional=True)
        _check_layer_name("teacher_layer", owner, teacher_layer, optional=True)
        self.temperature, self.momentum = float(temperature), float(momentum)
        self.crd_weight, self.ce_weight = float(crd_weight), float(ce_weight)
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.student_features: tuple[str, ...] = ()
        self.teacher_features: tuple[str, ...] = ()
        self.embed_s: nn.Linear | None = None
        self.embed_t: nn.Linear | None = None
        self.n_data: int | None = None
        self.negatives_used: int | None = None
        self._generator: torch.Generator | None = None
        self._z_ready = False

    def settings(self) -> dict:
        return {"negatives": self.negatives, "temperature": self.temperature, "embed_dim": self.embed_dim,
                "momentum": self.momentum, "crd_weight": self.crd_weight, "ce_weight": self.ce_weight,
                "student_layer": self.student_layer, "teacher_layer": self.teacher_layer}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.settings().items())

    @property
    def scaling(self) -> str | None:
        """The declared scaling when K was clipped to the dataset (after :meth:`setup`), else None."""
        if self.negatives_used is None or self.negatives_used == self.negatives:
            return None
        return (f"N scaled to the dataset: {self.negatives} negatives per anchor → {self.negatives_used} "
                f"(n − 1, n = {self.n_data} training examples)")

    def bind(self, student: nn.Module, teacher: nn.Module) -> None:
        """Name the feature modules: the given layers, else each model's last feature module (:func:`split_model`)."""
        self.student_features = (self.student_layer or split_model(student).feature_module,)
        self.teacher_features = (self.teacher_layer or split_model(teacher).feature_module,)

    def setup(self, student: nn.Module, teacher: nn.Module, x: torch.Tensor) -> None:
        """Size the embeddings by a probe on ``x[:2]`` and the banks by ``len(x)``; build them on ``x``'s device.

        Raises
        ------
        InvalidParameterError
            For fewer than two training examples, or a layer name that is no
            module of its model (call :meth:`bind` first).
        """
        owner = "CRDKD"
        if not self.student_features or not self.teacher_features:
            raise invalid("student_features", f"{owner}.setup", "named (call bind(student, teacher) first; "
                          "compress.training.callbacks.Distill does)", self.student_features)
        n = int(x.shape[0])
        if n < 2:
            raise invalid("x", f"{owner}.setup", "at least 2 training examples (a positive and a negative)", n)
        dims = []
        for role, model, (layer,) in (("student", student, self.student_features),
                                      ("teacher", teacher, self.teacher_features)):
            shape = _output_shapes(model, (layer,), x[:2], role=role, owner=owner)[layer]
            dims.append(shape[0] if len(shape) == 3 else math.prod(shape))
        device = x.device
        self.n_data, self.negatives_used = n, min(self.negatives, n - 1)
        # RepDistiller's order: embed_s, embed_t, then the banks (memory_v1: student, memory_v2: teacher).
        self.embed_s = nn.Linear(dims[0], self.embed_dim).to(device)
        self.embed_t = nn.Linear(dims[1], self.embed_dim).to(device)
        stdv = 1.0 / math.sqrt(self.embed_dim / 3)
        for name in ("memory_s", "memory_t"):
            bank = torch.rand(n, self.embed_dim).mul_(2 * stdv).add_(-stdv)
            self.register_buffer(name, bank.to(device))
        self.register_buffer("z", torch.full((2,), -1.0, device=device))  # Z of the student's and the teacher's side
        self._z_ready = False
        seed = int(torch.randint(0, 2**63 - 1, (1,)))
        self._generator = torch.Generator(device=device).manual_seed(seed)

    def _embed(self, layer: nn.Linear, f: torch.Tensor) -> torch.Tensor:
        v = layer(_feature_vector(f).float())
        return v / v.norm(dim=1, keepdim=True)

    def loss(self, student_logits, teacher_logits, targets, student_features, teacher_features, *,
             label_smoothing=0.0, index=None):
        if self._generator is None or index is None:
            raise invalid("index", "CRDKD.loss", "the batch's positions in the training set, after setup(student, "
                          "teacher, x) (compress.training.callbacks.Distill passes both)", None if index is None else "no setup")
        ce = F.cross_entropy(student_logits.float(), targets, label_smoothing=label_smoothing)
        f_s = student_features[self.student_features[0]]
        f_t = teacher_features[self.teacher_features[0]]
        with torch.autocast(f_s.device.type, enabled=False):
            crd = self._contrast(self._embed(self.embed_s, f_s), self._embed(self.embed_t, f_t), index)
        return self.ce_weight * ce + self.crd_weight * crd

    def _contrast(self, v_s: torch.Tensor, v_t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The two NCE losses (student anchors vs the teacher's bank and vice versa); then the banks' momentum update."""
        n, k, b = self.n_data, self.negatives_used, index.shape[0]
        idx = torch.randint(0, n, (b, k + 1), generator=self._generator, device=index.device)
        idx[:, 0] = index
        # Rows read by indexing are copies: the update below leaves the autograd graph untouched.
        p_s = torch.exp(torch.bmm(self.memory_t[idx], v_s.unsqueeze(2)).squeeze(2) / self.temperature)
        p_t = torch.exp(torch.bmm(self.memory_s[idx], v_t.unsqueeze(2)).squeeze(2) / self.temperature)
        if not self._z_ready:
            self.z.copy_(torch.stack([p_s.mean(), p_t.mean()]).detach() * n)
            self._z_ready = True
        loss = _nce_loss(p_s / self.z[0], n) + _nce_loss(p_t / self.z[1], n)
        with torch.no_grad():
            for bank, v in ((self.memory_s, v_s), (self.memory_t, v_t)):
                rows = bank[index].mul_(self.momentum).add_(v.detach() * (1.0 - self.momentum))
                bank.index_copy_(0, index, rows / rows.norm(dim=1, keepdim=True))
        return loss


#: The one lookup table of distillation strategies: name → class.
DISTILLERS: dict[str, type[Distiller]] = {"hinton": HintonKD, "hinton_code": MWCodeKD, "simkd": SimKD,
                                          "fitnets": FitNetsKD, "crd": CRDKD}


def make_distiller(name: str, **params) -> Distiller:
    """The strategy registered as ``name`` in :data:`DISTILLERS`, built with ``params``.

    Raises
    ------
    InvalidParameterError
        For an unknown name (the message lists the known ones), an unknown or
        missing keyword (FitNets' layer names have no defaults) or a bad value.
    """
    check_choice("name", "make_distiller", name, DISTILLERS)
    cls = DISTILLERS[name]
    signature = inspect.signature(cls).parameters
    known = list(signature)
    for key in params:
        if key not in known:
            raise invalid("params", f"make_distiller({name!r})", f"keywords among {', '.join(known)}", key)
    missing = [k for k, p in signature.items() if p.default is inspect.Parameter.empty and k not in params]
    if missing:
        raise invalid("params", f"make_distiller({name!r})", f"keywords including {', '.join(missing)} (no defaults)",
                      tuple(params))
    return cls(**params)
