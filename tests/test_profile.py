"""Tests for fixtures.profile: built-in profiles load; bad profiles fail early, with every problem listed."""
from __future__ import annotations

import pytest

from fixtures.profile import list_profiles, load_profile, PROFILE_DIR
from fixtures.schema import Profile, ProfileError, train_config

GOOD = """\
name = "tiny"
description = "a valid profile the tests mutate"
alpha = 0.05

[data]
seed = 0

[train]
epochs = 1
batch_size = 64
lr = 0.05
optimizer = "sgd"

[mw]
experiments = [
  { arch = "lenet5", dataset = "fake", data_options = { shape = [1, 8, 8], n_train = 128 } },
]
base_seeds = [0, 1, 2]
independent_seeds = [10, 11, 12]
student_seeds = [20, 21, 22]
kd_teacher_weights = [0.1, 0.9]
prune_ratios = [0.3, 0.7]
distance = "js"

[gc]
experiments = [{ arch = "resnet18", dataset = "fake", overrides = { width = 0.125 }, data_options = { shape = [1, 8, 8] } }]
seeds = [0, 1]
retained_fractions = [0.7, 0.3]
early_layers = ["conv1"]
"""


def _load(tmp_path, text: str) -> Profile:
    path = tmp_path / "p.toml"
    path.write_text(text)
    return load_profile(str(path))


def _replace(line_start: str, new_line: str, text: str = GOOD) -> str:
    """``text`` with the one line starting with ``line_start`` replaced."""
    lines = text.splitlines()
    hits = [i for i, line in enumerate(lines) if line.startswith(line_start)]
    assert len(hits) == 1, line_start
    lines[hits[0]] = new_line
    return "\n".join(lines) + "\n"


def _problems(tmp_path, text: str) -> str:
    with pytest.raises(ProfileError) as info:
        _load(tmp_path, text)
    return str(info.value)


# ----------------------------------------------------------------------------- good profiles
def test_builtin_profiles_are_listed():
    assert {"smoke", "ci", "paper"} <= set(list_profiles())
    assert all((PROFILE_DIR / f"{n}.toml").is_file() for n in list_profiles())


@pytest.mark.parametrize("name", ["smoke", "ci", "paper"])
def test_every_builtin_profile_loads_with_typed_sections_and_declared_deviations(name):
    p = load_profile(name)
    mw, gc = p.section("mw"), p.section("gc")
    assert len(mw.base_seeds) == len(mw.independent_seeds) == len(mw.student_seeds)
    assert gc.seeds and gc.retained_fractions == tuple(sorted(gc.retained_fractions, reverse=True))
    assert p.deviations and all(d.setting and d.paper and d.ours for d in p.deviations)
    assert p.deviations_for("MW-3") and p.deviations_for("GC-1")


def test_defaults_come_from_the_section_class(tmp_path):
    p = _load(tmp_path, GOOD)
    mw = p.section("mw")
    assert mw.kd_temperature == 3.0 and mw.quant_schemes == ("fp16", "int8") and mw.kd_variants == ("text",)
    assert mw.effects.mw1_ratio_bound == 0.8 and mw.effects.mw3_closer_ratio == 2.0  # CLAIMS.md defaults
    assert p.power_simulations == 2000 and p.stability_resamples == 200


def test_nested_effects_table_overrides_one_value(tmp_path):
    p = _load(tmp_path, GOOD + "\n[mw.effects]\nmw4_ratio = 2.0\n")
    assert p.section("mw").effects.mw4_ratio == 2.0 and p.section("mw").effects.mw3_vs_pruning_ratio == 1.5


def test_train_config_layers_profile_section_experiment_and_extra(tmp_path):
    text = GOOD.replace('{ arch = "lenet5", dataset = "fake",', '{ arch = "lenet5", dataset = "fake", train = { epochs = 4 },')
    p = _load(tmp_path, text + '\n[mw.train]\nlr = 0.01\n')
    exp = p.section("mw").experiments[0]
    cfg = train_config(p, "mw", exp, batch_size=32)
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.optimizer) == (4, 0.01, 32, "sgd")


def test_claims_key_restricts_the_claims_a_section_runs(tmp_path):
    p = _load(tmp_path, _replace('distance = "js"', 'distance = "js"\nclaims = ["MW-3"]'))
    assert p.runs_claim("MW-3") and not p.runs_claim("MW-4") and p.runs_claim("GC-1")


def test_raw_hash_changes_with_content_only(tmp_path):
    a = _load(tmp_path, GOOD).raw_hash
    assert _load(tmp_path, GOOD + "\n# a comment\n").raw_hash == a
    assert _load(tmp_path, _replace("seed = 0", "seed = 1")).raw_hash != a


# ----------------------------------------------------------------------------- bad profiles
def test_unknown_profile_name_lists_valid_ones():
    with pytest.raises(ProfileError, match=r"Unknown profile 'nope'\. Valid profiles: .*ci.*paper.*smoke"):
        load_profile("nope")


def test_missing_toml_path_and_syntax_error(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(str(tmp_path / "missing.toml"))
    with pytest.raises(ProfileError, match="does not parse as TOML"):
        _load(tmp_path, "name = \n")


def test_every_problem_is_listed_at_once(tmp_path):
    text = _replace("alpha", "alpha = 2")
    text = _replace("epochs", "epochz = 3", text)
    text = _replace("distance", 'distance = "cosine"', text)
    text = _replace("retained_fractions", "retained_fractions = [0.3, 0.7]", text)
    msg = _problems(tmp_path, text)
    assert "has 4 problems" in msg
    assert "the 'alpha' key must be a significance level in (0, 0.5). Got 2 instead." in msg
    assert "unknown key 'epochz' in [train]. Valid keys:" in msg and "epochs" in msg
    assert "the 'mw.distance' key must be one of 'js', 'kl', 'disagreement'. Got 'cosine' instead." in msg
    assert "'gc.retained_fractions'" in msg and "strictly decreasing" in msg


@pytest.mark.parametrize(("line_start", "new_line", "needle"), [
    ("seed = 0", 'seed = "zero"', "the 'data.seed' key must be an integer. Got 'zero' instead."),
    ("optimizer", 'optimizer = "rmsprop"', "'train.optimizer' key must be one of 'sgd', 'adam'"),
    ("base_seeds", "base_seeds = [0, 0, 1]", "'mw.base_seeds' key must be a list of distinct integers"),
    ("kd_teacher_weights", "kd_teacher_weights = [0.9, 0.1]", "'mw.kd_teacher_weights' key must be an increasing list"),
    ("prune_ratios", "prune_ratios = [0.3, 1.0]", "'mw.prune_ratios' key must be an increasing list of distinct fractions in (0, 1)"),
    ("student_seeds", "student_seeds = [20, 21]", "'student_seeds' needs one seed per base (3); it has 2"),
    ("student_seeds", "student_seeds = [20, 21, 0]", "must not share a seed"),
    ("seeds = [0, 1]", "seeds = [0, 0]", "'gc.seeds' key must be a list of distinct integers"),
    ("early_layers", 'early_layers = ["conv9"]', "'early_layers' entry 'conv9' is not a layer of resnet18"),
])
def test_bad_value_names_key_allowed_values_and_value(tmp_path, line_start, new_line, needle):
    assert needle in _problems(tmp_path, _replace(line_start, new_line))


def test_bool_is_not_an_integer(tmp_path):
    assert "'train.epochs' key must be an integer ≥ 0. Got True instead." in _problems(tmp_path, _replace("epochs", "epochs = true"))


def test_missing_required_key_names_it_and_what_it_must_be(tmp_path):
    msg = _problems(tmp_path, GOOD.replace("independent_seeds = [10, 11, 12]\n", ""))
    assert "[mw] needs the key 'independent_seeds' (a list of distinct integers, one per base)." in msg


def test_unknown_keys_everywhere_list_the_valid_ones(tmp_path):
    msg = _problems(tmp_path, _replace("prune_ratios", "prune_ratio = [0.3]") + "\n[mw.effects]\nmw1_ratio = 'x'\n")
    assert "unknown key 'prune_ratio' in [mw]. Valid keys:" in msg and "prune_ratios" in msg
    assert "'mw.effects.mw1_ratio' key must be a finite number (an effect of interest a claim declares)" in msg


def test_an_effect_key_no_claim_declares_is_named_with_the_valid_ones(tmp_path):
    """Effects tables also hold claims' own effects (checked once the claims are known, before training)."""
    profile = _load(tmp_path, GOOD + "\n[mw.effects]\nmw1_ratio = 0.9\nmy_margin = 0.5\n")
    assert profile.claim_effect_values == {"mw": {"mw1_ratio": 0.9, "my_margin": 0.5}}
    [msg] = profile.undeclared_effects({"mw": {"my_margin"}})
    assert "unknown key 'mw1_ratio' in [mw.effects]" in msg and "mw1_ratio_bound" in msg and "my_margin" in msg
    assert profile.undeclared_effects({"gc": set()}) == []  # no MW claim collected: nothing to check against
    assert profile.claim_effects("MW", {"my_margin": 1.0, "other": 2.0}) == {"my_margin": 0.5, "other": 2.0}


def test_model_overrides_and_data_options_are_checked_before_training(tmp_path):
    text = GOOD.replace('{ arch = "lenet5", dataset = "fake", data_options = { shape = [1, 8, 8], n_train = 128 } }',
                        '{ arch = "lenet5", dataset = "fake", overrides = { depth = 3 }, data_options = { shap = [1, 8, 8] } }')
    msg = _problems(tmp_path, text)
    assert "load_dataset('fake') must be one of 'shape', 'num_classes', 'n_train', 'n_test'. Got 'shap' instead." in msg


def test_unknown_override_is_named(tmp_path):
    text = GOOD.replace("n_train = 128 } }", "n_train = 128 }, overrides = { depth = 3 } }")
    assert "create_model('lenet5') must be one of 'width'. Got 'depth' instead." in _problems(tmp_path, text)


def test_experiment_names_are_checked_against_the_registries(tmp_path):
    text = GOOD.replace('arch = "lenet5", dataset = "fake"', 'arch = "lenet7", dataset = "imagenet"')
    msg = _problems(tmp_path, text)
    assert "'mw.experiments[0].arch' key must be one of" in msg and "Got 'lenet7' instead." in msg
    assert "'mw.experiments[0].dataset' key must be one of cifar10, cifar100, colour_digits, digits, fake, mnist" in msg


def test_section_must_be_a_table_and_deviations_need_their_keys(tmp_path):
    assert "the 'mw' key must be a table. Got 3 instead." in _problems(tmp_path, 'name = "x"\nmw = 3\n')
    msg = _problems(tmp_path, GOOD + '\n[[deviations]]\nclaims = ["MW-*"]\nsetting = "data"\n')
    assert "[deviations[0]] needs the keys 'paper', 'ours'." in msg


def test_deviations_apply_by_claim_pattern(tmp_path):
    p = _load(tmp_path, GOOD + '\n[[deviations]]\nclaims = ["MW-3", "GC-*"]\nsetting = "data"\npaper = "MNIST"\nours = "fake"\n')
    assert p.deviations_for("MW-3") == ["data: paper MNIST; ours fake"]
    assert p.deviations_for("GC-5") and not p.deviations_for("MW-4")


def test_profile_error_is_a_value_error():
    assert issubclass(ProfileError, ValueError)


# ----------------------------------------------------------------------------- [mh]
MH = """
[mh]
datasets = ["fake"]
data_options = { shape = [1, 8, 8] }
pairs = [
  { teacher = "resnet18", student = "lenet5", teacher_overrides = { width = 0.125 } },
]
seeds = [0, 1]   # per pair
levels = [0.0, 0.5, 0.9]
breakpoint_rule = "drop<=1"
"""


def test_mh_section_loads_with_its_defaults(tmp_path):
    sec = _load(tmp_path, GOOD + MH).section("mh")
    assert sec.levels == (0.0, 0.5, 0.9) and sec.simkd_bottleneck == 2 and sec.channel_layers == "conv"
    assert sec.effects.mh1_ratio == 1.25 and sec.require_compression


@pytest.mark.parametrize(("line_start", "new_line", "needles"), [
    ('  { teacher = "resnet18"', '  { teacher = "resnet1800", student = "lenet5" },',
     ["unknown architecture 'resnet1800'", "resnet18", "lenet5"]),
    ('  { teacher = "resnet18"', '  { teacher = "lenet5", student = "resnet18" },',
     ["student resnet18", "is not smaller than its teacher lenet5", "require_compression"]),
    ('  { teacher = "resnet18"', '  { teacher = "resnet18", student = "lenet5", tutor = "x" },', ["unknown keys: ['tutor']"]),
    ("levels =", "levels = [0.0, 0.5, 1.0]", ["mh.levels", "[0.0, 0.5, 1.0]", "in [0, 1)"]),
    ("levels =", "levels = [0.0, 0.9, 0.5]", ["mh.levels", "strictly increasing"]),
    ("levels =", "levels = [0.1, 0.5]", ["mh.levels", "starting at 0"]),
    ("breakpoint_rule =", 'breakpoint_rule = "drop < one"', ["mh.breakpoint_rule", "'drop < one'", "drop<=x"]),
    ("seeds = [0, 1]   # per pair", "seeds = [0, 1000]", ["mh.seeds", "[0, 1000)"]),
    ("datasets =", 'datasets = ["cifar1000"]', ["unknown dataset(s) ['cifar1000']", "digits"]),
])
def test_bad_mh_values_are_named_before_any_training(tmp_path, line_start, new_line, needles):
    message = _problems(tmp_path, _replace(line_start, new_line, GOOD + MH))
    for needle in needles:
        assert needle in message, message
