"""Tests for fixtures.profile: built-in profiles load; bad profiles fail early with a precise message."""
from __future__ import annotations

import re

import pytest

from compress.data import list_datasets
from compress.models import list_models
from fixtures.profile import PROFILE_DIR, Experiment, Profile, ProfileError, list_profiles, load_profile

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
independent_seeds = [0, 1, 2]
student_seeds = [24, 42]
kd_temperature = 3.0
kd_alphas = [0.1, 0.9]
quant_schemes = ["fp16", "int8"]
prune_ratios = [0.3, 0.7]
distance = "js"
equivalence_bounds = [0.8, 1.25]
accuracy_margin = 1.0
false_proxy_ratio = 0.7
"""


def _write(tmp_path, text: str, name: str = "p.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _load(tmp_path, text: str, **kwargs) -> Profile:
    return load_profile(str(_write(tmp_path, text)), **kwargs)


def _replace(line_start: str, new_line: str) -> str:
    """GOOD with the line starting with ``line_start`` replaced (exactly one such line)."""
    lines = GOOD.splitlines()
    hits = [i for i, line in enumerate(lines) if line.startswith(line_start)]
    assert len(hits) == 1, line_start
    lines[hits[0]] = new_line
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- good profiles


def test_builtin_profiles_are_listed():
    assert {"smoke", "ci", "paper"} <= set(list_profiles())
    assert list_profiles() == sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


@pytest.mark.parametrize("name", list_profiles())
def test_every_builtin_profile_loads_against_the_registries(name):
    prof = load_profile(name, known_models=list_models(), known_datasets=list_datasets())
    assert prof.name == name
    assert prof.path == PROFILE_DIR / f"{name}.toml"
    assert 0 < prof.alpha < 1
    assert prof.experiments("mw"), "every built-in profile runs the MW claims"
    assert re.fullmatch(r"[0-9a-f]{16}", prof.raw_hash)
    mw = prof.section("mw")
    assert mw["independent_seeds"][0] not in mw["student_seeds"]


def test_builtin_profile_by_path_equals_by_name():
    by_name = load_profile("smoke")
    by_path = load_profile(str(PROFILE_DIR / "smoke.toml"))
    assert by_name.raw_hash == by_path.raw_hash and by_name.path == by_path.path


def test_good_profile_fields(tmp_path):
    prof = _load(tmp_path, GOOD)
    assert prof.name == "tiny" and prof.alpha == 0.05 and prof.data_seed == 0
    assert prof.train == {"epochs": 1, "batch_size": 64, "lr": 0.05, "optimizer": "sgd"}
    (exp,) = prof.experiments("mw")
    assert exp == Experiment("lenet5", "fake", (), (("n_train", 128), ("shape", (1, 8, 8))))
    assert exp.id == "fake-lenet5"
    assert prof.datasets() == {"fake"}
    assert prof.runs_claim("MW-3") and not prof.runs_claim("GC-1")
    assert prof.experiments("gc") == [] and prof.section("gc") == {}


def test_claims_key_restricts_the_claims_a_section_runs(tmp_path):
    prof = _load(tmp_path, GOOD + 'claims = ["MW-1", "MW-4"]\n')
    assert prof.runs_claim("MW-1") and prof.runs_claim("MW-4") and not prof.runs_claim("MW-2")


def test_raw_hash_changes_with_content_only(tmp_path):
    a = _load(tmp_path, GOOD)
    b = load_profile(str(_write(tmp_path, "# a comment\n" + GOOD, "q.toml")))
    c = _load(tmp_path, _replace("kd_temperature", "kd_temperature = 4.0"))
    assert a.raw_hash == b.raw_hash
    assert a.raw_hash != c.raw_hash


def test_defaults_when_optional_tables_are_missing(tmp_path):
    prof = _load(tmp_path, 'name = "bare"\n')
    assert prof.alpha == 0.05 and prof.data_seed == 0 and prof.train == {} and prof.sections == {}


def test_extra_sections_are_validated_with_their_schema(tmp_path):
    schema = {"gc": {"k": (lambda v: isinstance(v, int), "an integer")}}
    assert _load(tmp_path, GOOD + "\n[gc]\nk = 3\n", extra_sections=schema).section("gc") == {"k": 3}
    with pytest.raises(ProfileError, match=r"'gc\.k' key must be an integer\. Got 'x' instead\."):
        _load(tmp_path, GOOD + '\n[gc]\nk = "x"\n', extra_sections=schema)


# ----------------------------------------------------------------------------- bad profiles


def test_unknown_profile_name_lists_valid_ones():
    with pytest.raises(ProfileError) as info:
        load_profile("smok")
    msg = str(info.value)
    assert "'smok'" in msg
    for name in list_profiles():
        assert name in msg


def test_missing_toml_path(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(str(tmp_path / "absent.toml"))


def test_toml_syntax_error(tmp_path):
    with pytest.raises(ProfileError, match="does not parse as TOML"):
        _load(tmp_path, GOOD.replace('distance = "js"', "distance = js"))


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(ProfileError) as info:
        _load(tmp_path, "alhpa = 0.05\n" + GOOD)
    msg = str(info.value)
    assert "unknown key 'alhpa'" in msg and "alpha" in msg and "mw" in msg


def test_unknown_key_in_a_table_lists_the_valid_keys(tmp_path):
    with pytest.raises(ProfileError) as info:
        _load(tmp_path, _replace("epochs", "epoch = 1"))
    msg = str(info.value)
    assert "'epoch'" in msg and "batch_size" in msg and "epochs" in msg


def test_unknown_key_in_mw(tmp_path):
    with pytest.raises(ProfileError, match=r"unknown key mw\.'prune_ratio'.*prune_ratios"):
        _load(tmp_path, _replace("prune_ratios", "prune_ratio = [0.3]"))


@pytest.mark.parametrize(
    ("line_start", "new_line", "key", "allowed", "got"),
    [
        ("alpha", "alpha = 1.5", "alpha", "a number in (0, 1)", "1.5"),
        ("seed", 'seed = "zero"', "data.seed", "an integer", "'zero'"),
        ("epochs", "epochs = 0", "train.epochs", "a positive integer", "0"),
        ("batch_size", "batch_size = 6.4", "train.batch_size", "a positive integer", "6.4"),
        ("lr", "lr = -0.05", "train.lr", "a number > 0", "-0.05"),
        ("optimizer", 'optimizer = "rmsprop"', "train.optimizer", "one of 'sgd', 'adam'", "'rmsprop'"),
        ("independent_seeds", "independent_seeds = [0]", "mw.independent_seeds", "a list of ≥ 2 distinct integers", "[0]"),
        ("student_seeds", "student_seeds = [24, 24]", "mw.student_seeds", "a list of distinct integers", "[24, 24]"),
        ("kd_temperature", "kd_temperature = 0", "mw.kd_temperature", "a number > 0", "0"),
        ("kd_alphas", "kd_alphas = [0.1, 1.5]", "mw.kd_alphas", "a list of distinct numbers in [0, 1]", "[0.1, 1.5]"),
        ("quant_schemes", 'quant_schemes = ["int3"]', "mw.quant_schemes", "'fp16', 'bf16', 'int8', 'int4'", "['int3']"),
        ("prune_ratios", "prune_ratios = [0.7, 0.3]", "mw.prune_ratios", "an increasing list", "[0.7, 0.3]"),
        ("prune_ratios", "prune_ratios = [0.3, 1.0]", "mw.prune_ratios", "numbers in (0, 1)", "[0.3, 1.0]"),
        ("distance", 'distance = "cosine"', "mw.distance", "one of 'js', 'kl', 'disagreement'", "'cosine'"),
        ("equivalence_bounds", "equivalence_bounds = [1.2, 0.8]", "mw.equivalence_bounds", "low < 1 < high", "[1.2, 0.8]"),
        ("accuracy_margin", "accuracy_margin = -1", "mw.accuracy_margin", "a number of accuracy points > 0", "-1"),
    ],
)
def test_bad_value_names_key_allowed_values_and_value(tmp_path, line_start, new_line, key, allowed, got):
    with pytest.raises(ProfileError) as info:
        _load(tmp_path, _replace(line_start, new_line))
    msg = str(info.value)
    assert f"the {key!r} key must be " in msg
    assert allowed in msg
    assert msg.endswith(f"Got {got} instead.")


def test_bool_is_not_an_integer(tmp_path):
    with pytest.raises(ProfileError, match=r"'train\.epochs' key must be a positive integer\. Got True instead\."):
        _load(tmp_path, _replace("epochs", "epochs = true"))


def test_student_seed_equal_to_base_seed_is_rejected(tmp_path):
    with pytest.raises(ProfileError) as info:
        _load(tmp_path, _replace("student_seeds", "student_seeds = [24, 0]"))
    msg = str(info.value)
    assert "'mw.student_seeds'" in msg and "base model's seed 0" in msg and "Got [24, 0] instead." in msg


def test_student_seed_equal_to_a_later_independent_seed_is_allowed(tmp_path):
    assert _load(tmp_path, _replace("student_seeds", "student_seeds = [1, 24]")).section("mw")["student_seeds"] == [1, 24]


def test_false_proxy_ratio_must_be_one_of_prune_ratios(tmp_path):
    with pytest.raises(ProfileError, match=r"'mw\.false_proxy_ratio' key must be one of prune_ratios \[0\.3, 0\.7\]\. Got 0\.5 instead\."):
        _load(tmp_path, _replace("false_proxy_ratio", "false_proxy_ratio = 0.5"))


def test_missing_required_mw_key(tmp_path):
    with pytest.raises(ProfileError, match=r"\[mw\] needs the key 'kd_alphas'"):
        _load(tmp_path, GOOD.replace("kd_alphas = [0.1, 0.9]\n", ""))


def test_section_must_be_a_table(tmp_path):
    with pytest.raises(ProfileError, match=r"the 'mw' key must be a table\. Got 3 instead\."):
        _load(tmp_path, 'name = "x"\nmw = 3\n')


def test_nested_section_train_table_is_validated(tmp_path):
    with pytest.raises(ProfileError, match=r"'mw\.train\.augment' key must be one of 'none', 'flip_crop'"):
        _load(tmp_path, GOOD + '\n[mw.train]\naugment = "cutout"\n')


def test_experiment_needs_arch_and_dataset(tmp_path):
    text = _replace("  { arch", '  { arch = "lenet5" },')
    with pytest.raises(ProfileError, match=r"'mw\.experiments\[0\]' key must be a table with 'arch' and 'dataset'"):
        _load(tmp_path, text)


def test_experiment_unknown_key(tmp_path):
    text = _replace("  { arch", '  { arch = "lenet5", dataset = "fake", widht = 0.5 },')
    with pytest.raises(ProfileError, match=r"unknown key 'widht' in mw\.experiments\[0\]\. Valid keys: arch, dataset, overrides, data_options"):
        _load(tmp_path, text)


def test_experiment_names_checked_against_registries(tmp_path):
    text = _replace("  { arch", '  { arch = "lenet7", dataset = "fake" },')
    assert _load(tmp_path, text).experiments("mw")[0].arch == "lenet7"  # no registry given: not checked
    with pytest.raises(ProfileError) as info:
        _load(tmp_path, text, known_models=list_models(), known_datasets=list_datasets())
    msg = str(info.value)
    assert "'mw.experiments[0].arch'" in msg and "lenet5" in msg and "Got 'lenet7' instead." in msg
    text = _replace("  { arch", '  { arch = "lenet5", dataset = "imagenet" },')
    with pytest.raises(ProfileError, match=r"experiments\[0\]\.dataset.*cifar10.*Got 'imagenet' instead"):
        _load(tmp_path, text, known_models=list_models(), known_datasets=list_datasets())


def test_profile_error_is_a_value_error():
    assert issubclass(ProfileError, ValueError)
