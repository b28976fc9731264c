"""The pytest glue's plain functions: claim registry and families, the worlds' spec graphs, training health."""
from __future__ import annotations

import dataclasses

import pytest

from analysis.stats.family import Measurement
from analysis.stats.rules import Directional
from analysis.stats.units import UnitTable
from compress.build.kinds import label
from compress.build.recipes import eval_spec
from compress.store.artifacts import Spec
from fixtures.claims import CATALOGUE, REGISTRY, Claim, case_id, claim, is_claim_id, measure_family
from fixtures.papers.gc import gc_specs, gc_units
from fixtures.papers.mw import mw_experiments, mw_specs
from fixtures.profile import load_profile
from fixtures.world import World, training_health


class _World:
    def __init__(self, values):
        self.values = values

    def health_notes(self):
        return ["Training health: fine"]


def _claim(measure) -> Claim:
    return Claim("MW-4", "sentence", "w", lambda p: [], measure)


def _measure(case, world):
    t = UnitTable("unit")
    for i, v in enumerate(world.values[case["k"]]):
        t.add(f"u{i}", models=[f"{case['k']}{i}"], x=v)
    return Measurement(table=t, rule=Directional("d", "x", alternative="greater", delta=0.5), deviations=["own"])


def test_family_is_decided_together_and_keyed_by_instance_id():
    world = _World({"a": [1.0, 1.1, 0.9, 1.2, 1.05, 0.95], "b": [0.1, -0.2, 0.3, 0.0, 0.2, -0.1]})
    profile = load_profile("smoke")
    fam = measure_family(_claim(_measure), [{"k": "a"}, {"k": "b"}], world, profile)
    a, b = fam["MW-4[a]"], fam["MW-4[b]"]
    assert a.verdict == "supported" and b.verdict == "inconclusive"
    assert a.p_adjusted == pytest.approx(min(1.0, 2 * a.p_value))  # Holm over the family of two
    assert a.sentence == "sentence" and a.power is not None and a.stability is not None
    assert "Training health: fine" in a.notes
    assert a.deviations[-1] == "own" and a.deviations[0].startswith("everything")  # profile's, then the claim's


def test_a_failing_case_becomes_an_error_and_the_rest_still_run():
    def measure(case, world):
        if case["k"] == "bad":
            raise RuntimeError("boom")
        return _measure(case, world)

    fam = measure_family(_claim(measure), [{"k": "bad"}, {"k": "a"}], _World({"a": [1.0, 1.1, 0.9, 1.2]}),
                         load_profile("smoke"))
    assert fam["MW-4[bad]"].verdict == "error" and "RuntimeError: boom" in fam["MW-4[bad]"].notes[-1]
    assert "Traceback" in fam["MW-4[bad]"].details["traceback"]
    assert fam["MW-4[a]"].verdict == "supported"


def test_a_measure_that_returns_something_else_is_an_error():
    fam = measure_family(_claim(lambda case, world: 3), [{"k": "a"}], _World({}), load_profile("smoke"))
    assert fam["MW-4[a]"].verdict == "error" and "not a Measurement" in fam["MW-4[a]"].notes[-1]


def test_claim_ids_come_from_the_catalogue_and_register_once():
    for bad in ("XX-1", "MW-10", "MW-x", "MW-x1a", "MW-xBad-Name", "mw-xLower"):
        with pytest.raises(ValueError, match="neither in the catalogue .* nor an extension ID"):
            claim(bad, "s", world="mw_world", cases=lambda p: [])
    assert {f"MW-{i}" for i in range(1, 10)} | {f"GC-{i}" for i in range(1, 7)} <= set(CATALOGUE)
    assert is_claim_id("MW-3") and is_claim_id("GC-xMyClaim") and not is_claim_id("MW-xMy_Claim")


@pytest.mark.parametrize("effects", [{"margin": "1"}, {"margin": True}, {"margin": float("nan")}, {"a b": 1.0}])
def test_a_claims_own_effects_must_be_named_numbers(effects):
    with pytest.raises(ValueError, match="must be an identifier with a finite number"):
        claim("MW-xEffects", "s", world="mw_world", cases=lambda p: [], effects=effects)


class _NoModels(World):
    SECTION = "mw"

    def trained_models(self):
        return []


def test_an_extension_claim_is_labelled_and_reads_its_own_effects_from_the_profile(tmp_path):
    profile = load_profile("smoke")
    profile = dataclasses.replace(profile, claim_effect_values={"mw": {"margin": 0.25}})
    seen = {}

    def measure(case, world):
        seen["margin"], seen["other"] = world.effect("margin"), world.effect("other")
        with pytest.raises(KeyError, match="'nope' is not declared .* declared: margin, other"):
            world.effect("nope")
        raise RuntimeError("measured")

    c = Claim("MW-xEffects", "s", "mw_world", lambda p: [{"exp": "e"}], measure, None,
              (("margin", 1.0), ("other", 2.0)))
    world = _NoModels(profile=profile, store=None)
    [evidence] = measure_family(c, [{"exp": "e"}], world, profile).values()
    assert seen == {"margin": 0.25, "other": 2.0} and evidence.verdict == "error"
    assert c.extension and not dataclasses.replace(c, id="MW-3").extension


def test_every_mw_and_gc_claim_is_registered_with_a_documented_measurement():
    for c in _registered_claims():
        assert c.sentence and c.id in c.doc  # the docstring names the claim, the paper's words and the test
        assert c.cases(load_profile("ci")), c.id


def test_case_id_is_the_bracketed_instance_id():
    assert case_id({"exp": "digits-lenet5", "kd": "text", "w": 0.5}) == "digits-lenet5,text,w=0.5"


# ---------------------------------------------------------------- the spec graphs
def test_mw_units_own_their_models_and_follow_the_profile():
    profile = load_profile("ci")
    exps = {e.id: e for e in mw_experiments(profile)}
    lenet, resnet, mobile = exps["digits-lenet5"], exps["digits-resnet18"], exps["digits-mobilenet_v1"]
    sec = profile.section("mw")
    declared = {e.id: e.units or len(sec.base_seeds) for e in sec.experiments}
    assert {k: len(e.units) for k, e in exps.items()} == declared  # an experiment's units, else one per base seed
    assert len(lenet.units) == len(sec.base_seeds) > len(resnet.units) > 1 and len(mobile.units) > 1
    assert set(lenet.kd_variants) == {"text", "code"} and resnet.kd_variants == ("text",)
    seen: dict[str, str] = {}
    for e in exps.values():
        for u in e.units:
            for m in u.models():
                assert seen.setdefault(m.key, f"{e.id}/{u.id}") == f"{e.id}/{u.id}", label(m)  # no model in two units
    u = lenet.units[0]
    assert len(u.students) == 6 and set(u.controls) == {"text", "code"} and len(u.pruned) == 10
    # students start from the base's initial weights, controls too (same init, labels only)
    assert all(s.param("init_seed", None) in (None, u.base.param("init_seed")) for s in u.students.values())
    assert mobile.units[0].independent is None and not mobile.units[0].students  # pruning-only role


def test_gc_teachers_are_the_mw_bases_of_the_same_seeds():
    profile = load_profile("ci")
    bases = {u.base.param("seed"): u.base.key for e in mw_experiments(profile) if e.id == "digits-resnet18"
             for u in e.units}
    units = gc_units(profile)
    shared = [u for u in units if u.seed in bases]
    assert shared and all(u.teacher.key == bases[u.seed] for u in shared)  # one artifact, trained once
    u = units[0]
    assert len(u.pruned) == len(u.distilled) == 5 and len(u.mixed) == 10
    specs = gc_specs(profile)
    assert eval_spec(u.teacher) in specs and eval_spec(u.mixed[(0.9, 0.1)]) in specs
    assert all(s.kind in ("eval", "layer_cka") for s in gc_specs(profile))


def test_mw_specs_are_evaluations_of_every_model():
    profile = load_profile("smoke")
    specs = mw_specs(profile)
    assert specs and all(s.kind == "eval" for s in specs)
    assert len(specs) == len({s.key for s in specs}) == sum(len(u.models()) for e in mw_experiments(profile) for u in e.units)


def test_training_health_names_models_near_chance_only():
    a, b = Spec.make("train", arch="a", dataset="d", init_seed=0, seed=0), Spec.make("train", arch="b", dataset="d", init_seed=1, seed=1)
    assert training_health({a: 95.0}, 10) == []
    (note,) = training_health({a: 95.0, b: 11.0}, 10)
    assert "1 model(s) near chance" in note


# ---------------------------------------------------------------- specs per claim (needs=)
def _registered_claims():
    import importlib.util

    from fixtures.plugin import ROOT

    for module in ("test_functional_perspective", "test_orthogonality", "test_pruning_after_distillation",
                   "test_vgg11_compression"):
        spec = importlib.util.spec_from_file_location(f"_claims_{module}", ROOT / "claims" / f"{module}.py")
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return ([REGISTRY[f"MW-{i}"] for i in range(1, 10)] + [REGISTRY[f"GC-{i}"] for i in range(1, 7)]
            + [REGISTRY[f"MH-{i}"] for i in range(1, 7)] + [REGISTRY[f"SH-{i}"] for i in range(1, 10)])


def _specs(profile, claims):
    from fixtures.claims import WORLDS, roles_for

    claims = [c for c in claims if c.cases(profile)]
    return [s for w in dict.fromkeys(c.world for c in claims) for s in WORLDS[w].specs(profile, roles_for(w, claims))]


@pytest.mark.parametrize("profile_name", ["smoke", "ci"])
def test_all_claims_together_need_exactly_the_whole_graph(profile_name):
    """Declaring needs= changes nothing for a full run: the same artifact keys as every role of every world."""
    from fixtures.claims import WORLDS

    profile, claims = load_profile(profile_name), _registered_claims()
    assert all(c.needs for c in claims)  # every claim declares what it reads
    whole = {s.key for w in WORLDS.values() for s in w.specs(profile, None)}
    assert {s.key for s in _specs(profile, claims)} == whole


def test_one_claim_builds_only_what_it_declares():
    profile, claims = load_profile("smoke"), {c.id: c for c in _registered_claims()}
    everything = _specs(profile, claims.values())
    mw3 = _specs(profile, [claims["MW-3"]])
    parents = {p.kind for s in mw3 for p in s.ancestors()}
    assert len(mw3) < len(everything) and "distill" not in parents and {"quantize", "prune"} <= parents
    gc5 = _specs(profile, [claims["GC-5"]])
    assert gc5 and all(s.kind == "eval" for s in gc5)  # accuracies only: no layer-wise CKA


def test_a_claim_reading_outside_its_needs_is_stopped_by_name():
    from fixtures.papers.mw import MWWorld
    from fixtures.world import UndeclaredRead

    profile = load_profile("smoke")
    world = MWWorld(profile=profile, store=None, experiments={e.id: e for e in mw_experiments(profile)})
    unit = next(iter(world.experiments.values())).units[0]
    student = next(iter(unit.students.values()))
    with world.reading("MW-4", frozenset({"base", "quantized"})):
        with pytest.raises(UndeclaredRead, match=r"MW-4 read .* a 'students' artifact.*add 'students' to its needs"):
            world.probs(student)
        assert [world.role_of(m) for m in world.trained_models()] == ["base"] * len(world.trained_models())


def test_needs_name_roles_of_the_claims_world():
    with pytest.raises(ValueError, match=r"unknown roles \['student'\]; roles of mw_world: base, independent, "
                                         r"students, controls, quantized, pruned"):
        claim("MW-4", "s", world="mw_world", cases=lambda p: [], needs=("base", "student"))
    with pytest.raises(ValueError, match="unknown world 'w'; known worlds: mw_world, gc_world"):
        claim("MW-4", "s", world="w", cases=lambda p: [])
