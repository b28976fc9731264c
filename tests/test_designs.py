"""compress.build.designs from plain parameters (as a notebook calls them): structure and independence of units."""
from __future__ import annotations

from compress.build.designs import MW_ROLES, ModelSetup, gc_cka_spec, gc_units, mw_units
from compress.training.loop import TrainConfig

SETUP = ModelSetup("lenet5", "fake", data_seed=0, data_options={"shape": [1, 8, 8], "n_train": 64, "n_test": 32})
TRAIN, CODE = TrainConfig(epochs=1), TrainConfig(epochs=1, optimizer="adamax", lr=0.001)


def test_mw_units_own_their_models_and_name_every_role():
    units = mw_units(SETUP, base_seeds=[0, 1], independent_seeds=[10, 11], student_seeds=[20, 21], train=TRAIN,
                     code_train=CODE, kd_variants=("text", "code"), kd_teacher_weights=(0.1, 0.9),
                     prune_ratios=(0.5,))
    assert [u.id for u in units] == ["unit0", "unit1"]
    keys = [[m.key for m in u.models()] for u in units]
    assert not set(keys[0]) & set(keys[1])  # no model in two replicates
    u = units[0]
    assert set(u.by_role()) == set(MW_ROLES)
    assert len(u.students) == 4 and set(u.controls) == {"text", "code"} and set(u.quantized) == {"fp16", "int8"}
    assert u.students[("code", 0.1)].param("distiller") == "hinton_code"
    assert u.controls["text"].param("init_seed") == 0 and u.controls["text"].param("seed") == 20
    assert u.independent.param("init_seed") == 10
    pruning_only = mw_units(SETUP, base_seeds=[0], independent_seeds=[10], student_seeds=[20], train=TRAIN,
                            code_train=CODE, full=False, prune_ratios=(0.5,))
    assert [len(v) for v in pruning_only[0].by_role().values()] == [1, 0, 0, 0, 0, 1]
    assert pruning_only[0].base == u.base  # same spec, same artifact: built once


def test_gc_units_are_a_tree_per_seed_and_cka_reads_one_level():
    units = gc_units(SETUP, seeds=[0, 1], train=TRAIN, finetune=TrainConfig(epochs=1), retained_fractions=(0.7, 0.5, 0.3),
                     kd={"temperature": 3.0, "teacher_weight": 0.5}, norm="l1", scope="global")
    u = units[0]
    assert list(u.pruned) == [0.7, 0.5, 0.3] and u.pruned[0.5].parents == (u.pruned[0.7],)
    assert set(u.mixed) == {(0.7, 0.5), (0.7, 0.3), (0.5, 0.3)} and len(u.mixed_at(0.3)) == 2
    assert not {m.key for m in u.models()} & {m.key for m in units[1].models()}
    cka = gc_cka_spec(u, 0.3, n_inputs=16, data_seed=0, debiased=False)
    assert cka.kind == "layer_cka" and cka.parents == (u.pruned[0.3], u.distilled[0.3], *u.mixed_at(0.3))


def test_mh_units_share_no_model_across_pairs_even_with_a_common_teacher():
    from compress.build.designs import MH_ROLES, MHPair, mh_units

    options = {"shape": [1, 8, 8], "n_train": 64, "n_test": 32}
    teacher = {"width": 0.125}
    pairs = [MHPair("resnet18", "lenet5", "fake", teacher, (), options), MHPair("resnet18", "lenet5", "fake",
                                                                              teacher, (), options)]
    units = mh_units(pairs, seeds=[0, 1], levels=[0.0, 0.5, 0.9], train=TRAIN, kd_train=TRAIN, finetune=TRAIN)
    assert [u.id for u in units] == [f"fake-resnet18[width=0.125]-lenet5/seed{s}" for s in (0, 1)] * 2
    keys = [{m.key for m in u.models()} for u in units]
    assert all(not keys[i] & keys[j] for i in range(4) for j in range(i + 1, 4))  # the same teacher arch, no shared model
    u = units[0]
    assert set(u.by_role()) == set(MH_ROLES)
    assert u.weight[0.0] is u.channel[0.0] and u.weight[0.0].param("sparsity") == 0.0  # level 0: one model
    assert u.channel[0.5].kind == "channel_prune" and u.channel[0.5].param("retained_fraction") == 0.5
    assert u.channel[0.5].param("layers") == "conv" and u.channel[0.5].parents == (u.student,)  # one-shot
    assert u.student.param("distiller") == "simkd" and u.student.parents == (u.teacher,)
    assert u.teacher_weight[0.9].parents == (u.teacher,)
