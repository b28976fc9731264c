"""Tests for SimKD: the student composite and projector (compress.training.simkd) and the distiller (compress.training.distill.SimKD)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analysis._validation import InvalidParameterError
from compress.measure.accounting import count_parameters
from compress.models.registry import create_model
from compress.models.split import split_model
from compress.training.callbacks import Distill
from compress.training.distill import DISTILLERS, SimKD, make_distiller
from compress.training.loop import TrainConfig, train
from compress.training.simkd import SimKDProjector, SimKDStudent, build_simkd_student, feature_shape, simkd_student
from tinyproblems import blobs

SHAPES = {"cifar": (3, 32, 32), "digits": (1, 8, 8)}
#: The MH small-scale pairs (teacher → student), plus a LeNet student (5×5 map: pooled to a teacher's 4×4).
PAIRS = [("resnet50", "resnet18"), ("resnet34", "mobilenet_v2"), ("vgg19", "vgg11"), ("vgg16", "mobilenet_v1"),
         ("resnet50", "vgg11"), ("resnet18", "lenet5")]
#: Pairs and inputs where one map is larger than the other (the rest have equal sizes).
POOLED = {("vgg16", "mobilenet_v1", "cifar"): "student", ("resnet18", "lenet5", "cifar"): "student",
          ("resnet18", "lenet5", "digits"): "student", ("resnet50", "vgg11", "cifar"): "teacher"}
QUICK = TrainConfig(epochs=4, batch_size=16, lr=0.05, weight_decay=5e-4, amp=False)


def _model(name: str, in_shape, seed: int = 0, num_classes: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    overrides = {} if name.startswith("tv_") else {"width": 0.25}
    return create_model(name, num_classes, in_shape, **overrides)


def _pair(teacher: str, student: str, in_shape, bottleneck: int = 2, num_classes: int = 10):
    t, s = _model(teacher, in_shape, 0, num_classes).eval(), _model(student, in_shape, 1, num_classes)
    torch.manual_seed(2)
    return t, s, SimKD(bottleneck).wrap_student(s, t, in_shape)


def _x(in_shape, n: int = 4, seed: int = 3) -> torch.Tensor:
    return torch.randn(n, *in_shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- projector and composite


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize(("teacher", "student"), PAIRS)
def test_pair_projector_shapes_pooling_and_deployed_parameter_count(teacher, student, shape):
    in_shape = SHAPES[shape]
    t, s, composite = _pair(teacher, student, in_shape)
    s_split, t_split = split_model(s), split_model(t)
    c_s, (h_s, w_s) = feature_shape(s_split.encoder, in_shape)
    c_t, (h_t, w_t) = feature_shape(t_split.encoder, in_shape)
    pooled = "student" if h_s > h_t else "teacher" if h_t > h_s else None  # square maps
    assert pooled == POOLED.get((teacher, student, shape))
    p = composite.projector
    assert (p.in_channels, p.out_channels, p.teacher_size) == (c_s, c_t, (h_t, w_t))
    convs = [m for m in p.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (c_s, c_t // 2, (1, 1)), (c_t // 2, c_t // 2, (3, 3)), (c_t // 2, c_t, (1, 1))]
    assert [type(m) for m in p.layers] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] * 3
    x = _x(in_shape)
    composite.eval()
    projected = composite.projector(composite.encoder(x))
    assert tuple(projected.shape) == (4, c_t, min(h_s, h_t), min(w_s, w_t))
    assert tuple(composite(x).shape) == (4, 10)
    # The teacher's map, pooled where larger, has the projected map's shape: the loss is defined.
    teacher_map = split_model(t).encoder(x)
    d = SimKD()
    d.bind(composite, t)
    loss = d.loss(None, None, None, {"projector": projected}, {d.teacher_features[0]: teacher_map})
    assert loss.dim() == 0 and torch.isfinite(loss)
    # Deployed = student encoder + projector + teacher head; the student's own head is gone.
    parts = count_parameters(s_split.encoder) + count_parameters(p) + count_parameters(t_split.head)
    assert count_parameters(composite) == parts
    assert count_parameters(composite) == (count_parameters(s) - count_parameters(s_split.head)
                                           + count_parameters(p) + count_parameters(t_split.head))


def test_a_larger_student_map_is_average_pooled_before_the_projector_convs():
    # vgg16 → mobilenet_v1 on 32 px: student map 2×2, teacher 1×1.
    in_shape = SHAPES["cifar"]
    _, _, composite = _pair("vgg16", "mobilenet_v1", in_shape)
    composite.eval()
    x = _x(in_shape)
    f_s = composite.encoder(x)
    assert f_s.shape[-2:] == (2, 2) and composite.projector.teacher_size == (1, 1)
    expected = composite.projector.layers(f_s.mean((2, 3), keepdim=True))
    assert torch.allclose(composite.projector(f_s), expected, atol=1e-6)


def test_a_larger_teacher_map_is_average_pooled_in_the_loss():
    # resnet50 → vgg11 on 32 px: teacher map 4×4, student 1×1.
    g = torch.Generator().manual_seed(0)
    projected, teacher_map = torch.randn(3, 8, 1, 1, generator=g), torch.randn(3, 8, 4, 4, generator=g)
    d = SimKD()
    d.teacher_features = ("layer4",)
    loss = d.loss(None, None, None, {"projector": projected}, {"layer4": teacher_map})
    expected = ((projected - teacher_map.mean((2, 3), keepdim=True)) ** 2).mean()
    assert torch.allclose(loss, expected, atol=1e-6)


def test_loss_is_exactly_zero_when_projected_features_equal_the_teachers():
    g = torch.Generator().manual_seed(1)
    d = SimKD()
    d.teacher_features = ("features",)
    t = torch.randn(5, 16, 2, 2, generator=g)
    assert float(d.loss(None, None, None, {"projector": t.clone()}, {"features": t})) == 0.0
    big = torch.randn(5, 16, 4, 4, generator=g)  # the teacher's map pooled to the student's size is the reference
    same = F.adaptive_avg_pool2d(big, (2, 2))
    assert float(d.loss(None, None, None, {"projector": same}, {"features": big})) == 0.0


def test_loss_is_the_mean_squared_error_and_ignores_logits_labels_and_smoothing():
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(4, 6, 3, 3, generator=g), torch.randn(4, 6, 3, 3, generator=g)
    d = SimKD()
    d.teacher_features = ("layer4",)
    loss = d.loss(torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g), torch.zeros(4, dtype=torch.long),
                  {"projector": s}, {"layer4": t}, label_smoothing=0.3)
    assert torch.equal(loss, d.loss(None, None, None, {"projector": s}, {"layer4": t}))
    assert torch.allclose(loss, ((s.double() - t.double()) ** 2).mean().float(), atol=1e-7)


def test_wrapped_student_trains_the_students_own_modules_and_copies_the_teachers_head():
    in_shape = SHAPES["digits"]
    t, s, composite = _pair("resnet50", "resnet18", in_shape)
    assert composite.encoder.layer4 is s.layer4 and composite.encoder.conv1 is s.conv1
    assert composite.head.fc is not t.fc
    assert torch.equal(composite.head.fc.weight, t.fc.weight)
    assert all(p.requires_grad for p in t.parameters())  # the teacher itself is left as it was


def test_head_stays_in_eval_mode_without_gradients():
    in_shape = SHAPES["digits"]
    _, _, composite = _pair("resnet34", "mobilenet_v2", in_shape)
    composite.train()
    assert composite.training and composite.encoder.training and composite.projector.training
    assert not composite.head.training and not any(m.training for m in composite.head.modules())
    assert not any(p.requires_grad for p in composite.head.parameters())
    x = _x(in_shape, n=8)
    F.cross_entropy(composite(x), torch.arange(8) % 10).backward()
    assert all(p.grad is None for p in composite.head.parameters())
    assert all(p.grad is not None for p in composite.projector.parameters())


def test_a_heads_dropout_and_batchnorm_stay_off_in_train_mode():
    # torchvision MobileNet-V2's head drops out in train mode; reused in SimKD it must not.
    in_shape = SHAPES["digits"]
    _, _, composite = _pair("mobilenet_v2", "vgg11", in_shape)
    assert any(isinstance(m, nn.Dropout) for m in composite.head.modules())
    composite.train()
    x = _x(in_shape, n=8)
    with torch.no_grad():
        assert torch.equal(composite(x), composite(x))
    # A head with BatchNorm keeps its running statistics.
    head = nn.Sequential(nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    student = SimKDStudent(nn.Conv2d(1, 2, 3, padding=1), SimKDProjector(2, 4, teacher_size=(8, 8)), head).train()
    before = copy.deepcopy(head.state_dict())
    student(_x(in_shape, n=8))
    assert all(torch.equal(v, head.state_dict()[k]) for k, v in before.items())


@pytest.mark.slow
def test_training_leaves_the_teacher_head_bit_identical_and_reduces_the_loss():
    in_shape, classes = SHAPES["digits"], 3
    x, y = blobs(48, shape=in_shape, classes=classes)
    torch.manual_seed(0)
    teacher = create_model("resnet18", classes, in_shape, width=0.25).eval()  # untrained: its features are targets
    d = make_distiller("simkd")
    torch.manual_seed(1)
    composite = d.wrap_student(create_model("vgg11", classes, in_shape, width=0.25), teacher, in_shape)
    head_before = copy.deepcopy(composite.head.state_dict())
    encoder_before = copy.deepcopy(composite.encoder.state_dict())
    teacher_before = copy.deepcopy(teacher.state_dict())
    res = train(composite, x, y, QUICK, seed=0, callbacks=[Distill(d, teacher)])
    assert res.losses[-1] < res.losses[0]
    head_after = composite.head.state_dict()
    assert head_before.keys() == head_after.keys()
    assert all(torch.equal(v, head_after[k]) for k, v in head_before.items())
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())
    assert any(not torch.equal(v, composite.encoder.state_dict()[k]) for k, v in encoder_before.items()
               if v.is_floating_point())
    # Label-free: the same run with shuffled labels gives the same losses.
    torch.manual_seed(1)
    again = d.wrap_student(create_model("vgg11", classes, in_shape, width=0.25), teacher, in_shape)
    res2 = train(again, x, y[torch.randperm(len(y), generator=torch.Generator().manual_seed(9))], QUICK, seed=0,
                 callbacks=[Distill(d, teacher)])
    assert res2.losses == res.losses


def test_a_saved_student_loads_into_the_skeleton_built_from_names():
    in_shape = SHAPES["cifar"]
    _, _, composite = _pair("vgg16", "mobilenet_v1", in_shape)
    torch.manual_seed(7)
    skeleton = build_simkd_student("mobilenet_v1", "vgg16", 10, in_shape, student_overrides={"width": 0.25},
                                   teacher_overrides={"width": 0.25})
    skeleton.load_state_dict(composite.state_dict())
    x = _x(in_shape)
    assert torch.equal(skeleton.eval()(x), composite.eval()(x))


# ----------------------------------------------------------------------------- the distiller and bad input


def test_simkd_is_registered_and_its_settings_round_trip():
    assert DISTILLERS["simkd"] is SimKD
    d = make_distiller("simkd")
    assert d.settings() == {"bottleneck": 2}
    assert type(d)(**d.settings()).settings() == d.settings()
    assert make_distiller("simkd", bottleneck=4).settings() == {"bottleneck": 4}
    assert d.needs_features and list(d.parameters()) == []


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_bad_bottleneck_is_named(bad):
    with pytest.raises(InvalidParameterError) as info:
        make_distiller("simkd", bottleneck=bad)
    assert str(info.value) == f"The 'bottleneck' parameter of SimKD must be an integer >= 1. Got {bad!r} instead."
    with pytest.raises(InvalidParameterError, match="'bottleneck' parameter of build_simkd_student"):
        build_simkd_student("vgg11", "vgg11", 10, SHAPES["digits"], bottleneck=bad)


def test_temperature_is_not_a_simkd_setting():
    with pytest.raises(InvalidParameterError) as info:
        make_distiller("simkd", temperature=4.0)
    assert str(info.value) == ("The 'params' parameter of make_distiller('simkd') must be keywords among bottleneck. "
                               "Got 'temperature' instead.")


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(InvalidParameterError) as info:
        build_simkd_student("resnet99", "resnet50", 10, SHAPES["digits"])
    assert "'resnet99'" in str(info.value) and "'resnet18'" in str(info.value)
    with pytest.raises(InvalidParameterError, match="'model' parameter of split_model"):
        simkd_student(nn.Sequential(nn.Conv2d(1, 2, 3)), _model("vgg11", SHAPES["digits"]), SHAPES["digits"])


def test_distill_refuses_a_student_that_is_not_wrapped():
    in_shape = SHAPES["digits"]
    x, y = blobs(16, shape=in_shape, classes=3)
    teacher = create_model("vgg11", 3, in_shape, width=0.25).eval()
    with pytest.raises(InvalidParameterError) as info:
        train(create_model("vgg11", 3, in_shape, width=0.25), x, y, QUICK, seed=0,
              callbacks=[Distill(SimKD(), teacher)])
    assert str(info.value).startswith("The 'student' parameter of SimKD must be a SimKDStudent (build it with "
                                      "SimKD.wrap_student")
    composite = SimKD(bottleneck=4).wrap_student(create_model("vgg11", 3, in_shape, width=0.25), teacher, in_shape)
    with pytest.raises(InvalidParameterError, match="whose projector has bottleneck 2. Got 'bottleneck 4' instead"):
        SimKD().bind(composite, teacher)


def test_loss_before_bind_says_what_is_missing():
    with pytest.raises(InvalidParameterError, match="call bind"):
        SimKD().loss(None, None, None, {"projector": torch.zeros(1, 2, 1, 1)}, {})
