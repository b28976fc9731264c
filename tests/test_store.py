"""Tests for compress.store.artifacts: spec keys, build-once semantics, corruption, multi-process safety,
bad store directories, full disks, lock waits, environments, log recovery and orphan cleanup."""
from __future__ import annotations

import datetime
import errno
import functools
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import filelock
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import compress
import compress.store.files as files
import compress.store.artifacts as store_module
import compress.runtime.numerics as numerics
from analysis._validation import InvalidParameterError
from compress.store.artifacts import (
    STORE_FORMAT_VERSION,
    ArtifactStore,
    ArtifactWarning,
    BuildContext,
    LockTimeout,
    Spec,
    StoreError,
    check_store_root,
)

# ----------------------------------------------------------------------------- helpers

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=6)
)
_values = _scalars | st.tuples(_scalars) | st.tuples(_scalars, _scalars)
_names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
_params = st.dictionaries(_names, _values, min_size=1, max_size=5)


def _canonical(value: object) -> str:
    """Independent canonical form: JSON of the value with tuples as lists."""
    return json.dumps(value)


def _seeded_builder(spec: Spec, parents: list, ctx: BuildContext) -> dict:
    gen = torch.Generator().manual_seed(int(spec.param("seed", 0)))
    return {"w": torch.randn(3, 2, generator=gen), "name": str(spec.param("name", spec.kind)), "n": 7}


def _counting_builder(spec: Spec, parents: list, ctx: BuildContext, *, counter: str) -> dict:
    """Module level so spawned processes can use it: log start, sleep, log done."""
    with open(counter, "a") as f:
        f.write(f"start {os.getpid()} {spec.key}\n")
    time.sleep(float(spec.param("sleep", 0.5)))
    with open(counter, "a") as f:
        f.write(f"done {os.getpid()} {spec.key}\n")
    return _seeded_builder(spec, parents, ctx)


def _done_lines(counter: Path) -> list[tuple[str, str]]:
    if not counter.exists():
        return []
    rows = [line.split() for line in counter.read_text().splitlines()]
    return [(pid, key) for tag, pid, key in rows if tag == "done"]


def _store_for(root: str, counter: str) -> ArtifactStore:
    builder = functools.partial(_counting_builder, counter=counter)
    return ArtifactStore(root, {"slow": builder, "root": builder})


def _race_worker(root, counter, spec, barrier, queue) -> None:
    store = _store_for(root, counter)
    barrier.wait()
    payload = store.get(spec)
    queue.put((os.getpid(), payload["w"].tolist(), store.stats))


def _build_all_worker(root, counter, specs, seed, barrier, queue) -> None:
    store = _store_for(root, counter)
    barrier.wait()
    store.build_all(specs, order_seed=seed)
    queue.put((os.getpid(), store.stats, [store.contains(s) for s in specs]))


def _get_worker(root, counter, spec) -> None:
    _store_for(root, counter).get(spec)


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temp(stem: str, pid: int, host: str | None = None, token: str = "deadbeef") -> str:
    """A temporary-file name as the store writes it (``host`` defaults to this host)."""
    return f".tmp-{stem}-{pid}@{host or files.host_identity()}-{token}{files.TEMP_SUFFIX}"


def _partials(root: Path) -> list[Path]:
    return sorted(root.rglob("*.partial"))


def _header(path: Path) -> dict:
    data = path.read_bytes()
    start = len(b"compress-store\n") + 8
    (length,) = struct.unpack(">Q", data[start - 8 : start])
    return json.loads(data[start : start + length])


def _rewrite_header(path: Path, change) -> None:
    """Replace the header of the artifact at ``path`` by ``change(header)`` (payload kept)."""
    data = path.read_bytes()
    start = len(b"compress-store\n") + 8
    (length,) = struct.unpack(">Q", data[start - 8 : start])
    raw = json.dumps(change(json.loads(data[start : start + length]))).encode()
    path.write_bytes(data[: start - 8] + struct.pack(">Q", len(raw)) + raw + data[start + length :])


def _log_rows(root: Path) -> list[dict]:
    path = root / "store.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class _Recorder:
    """Builders that record the order of their calls."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, spec: Spec, parents: list, ctx: BuildContext) -> dict:
        self.calls.append(spec.param("name"))
        return {"name": spec.param("name"), "parents": [p["name"] for p in parents]}


# ----------------------------------------------------------------------------- specs


@settings(max_examples=40, deadline=None)
@given(params=_params, data=st.data())
def test_key_stable_under_param_order(params, data):
    items = list(params.items())
    shuffled = data.draw(st.permutations(items))
    a = Spec.make("train", **params)
    b = Spec("train", tuple(shuffled))
    assert a.key == b.key
    assert a == b and hash(a) == hash(b)
    assert a.params == tuple(sorted(a.params))
    assert len(a.key) == 64 and int(a.key, 16) >= 0


@settings(max_examples=60, deadline=None)
@given(params=_params, data=st.data())
def test_key_changes_when_any_param_changes(params, data):
    name = data.draw(st.sampled_from(sorted(params)))
    new_value = data.draw(_values)
    assume(_canonical(new_value) != _canonical(params[name]))
    base = Spec.make("train", **params)
    changed = Spec.make("train", **{**params, name: new_value})
    assert base.key != changed.key
    assert base != changed
    extra = Spec.make("train", **params, zzz_extra=1)
    assert extra.key != base.key
    assert Spec.make("other", **params).key != base.key


@settings(max_examples=30, deadline=None)
@given(seed_a=st.integers(0, 100), seed_b=st.integers(0, 100))
def test_key_changes_when_a_parent_changes(seed_a, seed_b):
    child_a = Spec.make("prune", parents=(Spec.make("train", seed=seed_a),), ratio=0.3)
    child_b = Spec.make("prune", parents=(Spec.make("train", seed=seed_b),), ratio=0.3)
    assert (child_a.key == child_b.key) == (seed_a == seed_b)
    grandchild_a = Spec.make("finetune", parents=(child_a,), epochs=5)
    grandchild_b = Spec.make("finetune", parents=(child_b,), epochs=5)
    assert (grandchild_a.key == grandchild_b.key) == (seed_a == seed_b)


def test_key_depends_on_parent_order_and_type_of_value():
    p, q = Spec.make("train", seed=1), Spec.make("train", seed=2)
    assert Spec.make("kd", parents=(p, q)).key != Spec.make("kd", parents=(q, p)).key
    assert Spec.make("kd", parents=(p,)).key != Spec.make("kd").key
    keys = {Spec.make("t", x=v).key for v in (1, 1.0, True, "1", (1,))}
    assert len(keys) == 5


def test_lists_become_tuples_and_dicts_are_rejected():
    spec = Spec.make("train", widths=[1, [2, 3]], seed=2)
    assert spec.param("widths") == (1, (2, 3))
    assert spec == Spec.make("train", widths=(1, (2, 3)), seed=2)
    with pytest.raises(InvalidParameterError, match=r"'opts' parameter of Spec 'train'.*not a dict"):
        Spec.make("train", opts={"lr": 0.1})
    with pytest.raises(InvalidParameterError, match="'opts'"):
        Spec.make("train", opts=[{"lr": 0.1}])
    with pytest.raises(InvalidParameterError, match="finite"):
        Spec.make("train", lr=float("nan"))
    with pytest.raises(InvalidParameterError, match="JSON scalar"):
        Spec.make("train", path=Path("/tmp"))
    with pytest.raises(InvalidParameterError, match="distinct names"):
        Spec("train", (("a", 1), ("a", 2)))
    with pytest.raises(InvalidParameterError, match="tuple of Spec"):
        Spec.make("prune", parents=("train",))
    with pytest.raises(InvalidParameterError, match="'kind'"):
        Spec.make("")


def test_param_as_dict_describe_and_ancestors():
    data = Spec.make("data", name="digits")
    a = Spec.make("train", parents=(data,), arch="resnet18", seed=2, epochs=30, lr=0.1, width=16)
    b = Spec.make("train", parents=(data,), arch="vgg11", seed=2)
    kd = Spec.make("kd", parents=(a, b), temperature=4.0)
    assert kd.param("temperature") == 4.0
    assert kd.param("alpha", None) is None
    with pytest.raises(KeyError, match="temperature"):
        kd.param("alpha")
    order = kd.ancestors()
    assert order[-1] == kd and len(order) == len({s.key for s in order}) == 4
    position = {s.key: i for i, s in enumerate(order)}
    for spec in order:
        assert all(position[p.key] < position[spec.key] for p in spec.parents)
    as_dict = kd.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["parents"][0]["parents"][0]["params"] == {"name": "digits"}
    short = a.describe(max_length=40)
    assert short.startswith("train(arch=resnet18") and "…" in short and short.endswith("<- data")
    assert a.describe(max_length=200) == "train(arch=resnet18, epochs=30, lr=0.1, seed=2, width=16) <- data"


# ----------------------------------------------------------------------------- store, one process


def test_get_builds_once_then_loads(tmp_path):
    calls = []

    def build(spec, parents, ctx):
        calls.append(spec.key)
        return _seeded_builder(spec, parents, ctx)

    spec = Spec.make("train", seed=3)
    store = ArtifactStore(tmp_path, {"train": build})
    first = store.get(spec)
    assert store.get(spec) is first  # memory cache
    assert len(calls) == 1 and store.stats == {"built": 1, "loaded": 0, "rebuilt": 0}
    assert store.contains(spec)
    assert store.path_for(spec) == tmp_path / "objects" / spec.key[:2] / f"{spec.key}.pt"

    other = ArtifactStore(tmp_path, {"train": build}, memory_cache=False)
    second = other.get(spec)
    third = other.get(spec)
    assert len(calls) == 1
    assert other.stats == {"built": 0, "loaded": 2, "rebuilt": 0}
    expected = _seeded_builder(spec, [], None)
    for payload in (first, second, third):
        assert torch.equal(payload["w"], expected["w"]) and payload["name"] == "train" and payload["n"] == 7


def test_parents_built_before_children_and_passed_in_order(tmp_path):
    recorder = _Recorder()
    a = Spec.make("node", name="a")
    b = Spec.make("node", name="b")
    c = Spec.make("node", parents=(b, a), name="c")  # order b, a on purpose
    d = Spec.make("node", parents=(c, a), name="d")
    store = ArtifactStore(tmp_path, {"node": recorder})
    assert [(s.param("name"), present) for s, present in store.plan([d])] == [
        ("b", False), ("a", False), ("c", False), ("d", False)
    ]
    payload = store.get(d)
    assert payload == {"name": "d", "parents": ["c", "a"]}
    assert store.get(c) == {"name": "c", "parents": ["b", "a"]}
    assert sorted(recorder.calls) == ["a", "b", "c", "d"]  # each once, a shared
    assert recorder.calls.index("c") > max(recorder.calls.index("a"), recorder.calls.index("b"))
    assert recorder.calls[-1] == "d"
    assert all(present for _, present in store.plan([d]))


def test_unknown_kind_fails_before_any_builder_runs(tmp_path):
    recorder = _Recorder()
    parent = Spec.make("node", name="p")
    child = Spec.make("nose", parents=(parent,), name="c")  # typo in a descendant
    store = ArtifactStore(tmp_path, {"node": recorder, "train": recorder})
    known = r"one of the store's builders \('node', 'train'\)\. Got 'nose'"
    with pytest.raises(InvalidParameterError, match=known):
        store.get(Spec.make("node", parents=(child,), name="top"))
    with pytest.raises(InvalidParameterError, match="'nose'"):
        store.build_all([parent, child])
    assert recorder.calls == [] and not store.contains(parent)
    with pytest.raises(InvalidParameterError, match="a Spec"):
        store.get("train")


def test_builder_gets_extra_specs_and_reports_progress(tmp_path):
    events = []
    extra = Spec.make("node", name="extra")

    def uses_extra(spec, parents, ctx):
        ctx.report("half way")
        return {"name": "top", "extra": ctx.store.get(extra)["name"]}

    def on_event(event, spec, seconds):
        events.append((event, spec.kind, seconds))

    store = ArtifactStore(tmp_path, {"node": _Recorder(), "top": uses_extra}, on_event=on_event)
    assert store.get(Spec.make("top")) == {"name": "top", "extra": "extra"}
    names = [(e, k) for e, k, _ in events]
    assert names == [
        ("building", "top"), ("progress", "top"), ("building", "node"), ("built", "node"), ("built", "top")
    ]
    assert all(t >= 0 for _, _, t in events)

    log = [json.loads(line) for line in (tmp_path / "store.log").read_text().splitlines()]
    assert [row["event"] for row in log] == ["built", "built"]
    assert {row["kind"] for row in log} == {"node", "top"}
    assert all(row["pid"] == os.getpid() and len(row["key"]) == 12 and row["seconds"] >= 0 for row in log)

    events.clear()
    ArtifactStore(tmp_path, {"top": uses_extra}, on_event=on_event).get(Spec.make("top"))
    assert [(e, k) for e, k, _ in events] == [("loaded", "top")]


def test_build_all_in_one_process_builds_each_once_and_loads_nothing_present(tmp_path):
    recorder = _Recorder()
    root = Spec.make("node", name="r")
    leaves = [Spec.make("node", parents=(root,), name=f"l{i}") for i in range(4)]
    top = Spec.make("node", parents=tuple(leaves), name="top")
    store = ArtifactStore(tmp_path, {"node": recorder})
    store.build_all([top, *leaves], order_seed=3)
    assert sorted(recorder.calls) == sorted(["r", "l0", "l1", "l2", "l3", "top"])
    assert recorder.calls[0] == "r" and recorder.calls[-1] == "top"
    assert store.stats == {"built": 6, "loaded": 0, "rebuilt": 0}
    again = ArtifactStore(tmp_path, {"node": recorder})
    again.build_all([top], order_seed=4)
    assert again.stats == {"built": 0, "loaded": 0, "rebuilt": 0} and len(recorder.calls) == 6
    assert again.get(top) == {"name": "top", "parents": ["l0", "l1", "l2", "l3"]}
    with pytest.raises(InvalidParameterError, match="'order_seed'"):
        store.build_all([top], order_seed=1.5)


@pytest.mark.parametrize(
    "damage, reason",
    [
        ("truncate_payload", "truncated payload"),
        ("truncate_header", "truncated"),
        ("flip_payload_byte", "checksum mismatch"),
        ("append", "trailing bytes"),
        ("garbage", "bad magic"),
        ("empty", "truncated"),
        ("other_version", "format version"),
        ("other_key", "key mismatch"),
        ("not_torch_payload", "unreadable payload"),
    ],
)
def test_corrupt_artifact_warns_and_is_rebuilt(tmp_path, damage, reason):
    calls = []

    def build(spec, parents, ctx):
        calls.append(spec.key)
        return _seeded_builder(spec, parents, ctx)

    spec = Spec.make("train", seed=5)
    ArtifactStore(tmp_path, {"train": build}).get(spec)
    path = ArtifactStore(tmp_path, {}).path_for(spec)
    data = path.read_bytes()
    if damage == "truncate_payload":
        data = data[:-10]
    elif damage == "truncate_header":
        data = data[:20]
    elif damage == "flip_payload_byte":
        data = data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:]
    elif damage == "append":
        data = data + b"\0"
    elif damage == "garbage":
        data = b"x" * len(data)
    elif damage == "empty":
        data = b""
    elif damage == "other_version":
        old = f'"format_version": {STORE_FORMAT_VERSION}'.encode()
        new = f'"format_version": {STORE_FORMAT_VERSION + 1}'.encode()
    elif damage == "other_key":
        old, new = spec.key.encode(), Spec.make("train", seed=6).key.encode()
    elif damage == "not_torch_payload":  # intact metadata and checksum, payload torch cannot read
        magic_and_length = len(b"compress-store\n") + 8
        (length,) = struct.unpack(">Q", data[magic_and_length - 8 : magic_and_length])
        header = json.loads(data[magic_and_length : magic_and_length + length])
        junk = b"not a torch file"
        header.update(payload_sha256=hashlib.sha256(junk).hexdigest(), payload_bytes=len(junk))
        raw = json.dumps(header).encode()
        data = data[: magic_and_length - 8] + struct.pack(">Q", len(raw)) + raw + junk
    if damage in ("other_version", "other_key"):
        assert len(old) == len(new) and old in data
        data = data.replace(old, new, 1)
    path.write_bytes(data)

    store = ArtifactStore(tmp_path, {"train": build})
    # contains() checks metadata and checksum; only loading finds a payload torch cannot read.
    assert store.contains(spec) == (damage == "not_torch_payload")
    with pytest.warns(ArtifactWarning, match=reason) as record:
        payload = store.get(spec)
    assert str(path) in str(record[0].message)
    assert len(calls) == 2 and store.stats == {"built": 0, "loaded": 0, "rebuilt": 1}
    assert torch.equal(payload["w"], _seeded_builder(spec, [], None)["w"])
    assert store.contains(spec)
    fresh = ArtifactStore(tmp_path, {"train": build})
    assert torch.equal(fresh.get(spec)["w"], payload["w"]) and fresh.stats["loaded"] == 1


def test_failed_or_invalid_build_leaves_nothing(tmp_path):
    spec = Spec.make("train", seed=1)

    def fails(spec, parents, ctx):
        raise RuntimeError("out of memory")

    def returns_module(spec, parents, ctx):
        return torch.nn.Linear(2, 2)

    cases = [(fails, RuntimeError, "out of memory"), (returns_module, TypeError, "weights_only")]
    for builder, error, match in cases:
        store = ArtifactStore(tmp_path, {"train": builder})
        with pytest.raises(error, match=match):
            store.get(spec)
        assert not store.contains(spec)
        assert not [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]  # no artifact, no temp file
    # The lock was released: a good builder now succeeds at once.
    assert ArtifactStore(tmp_path, {"train": _seeded_builder}).get(spec)["n"] == 7


def test_stale_temp_file_is_never_an_artifact_and_is_cleaned_up(tmp_path):
    spec = Spec.make("train", seed=9)
    store = ArtifactStore(tmp_path, {"train": _seeded_builder})
    directory = store.path_for(spec).parent
    directory.mkdir(parents=True)
    # What a SIGKILL during the write leaves behind: a partial temp file of a now dead process.
    stale = directory / _temp(f"{spec.key}.pt", _dead_pid())
    stale.write_bytes(b"compress-store\npartial")
    old_other = directory / ".tmp-otherkey-1-00000000.partial"  # old naming, no host: judged by age
    old_other.write_bytes(b"")
    os.utime(old_other, (time.time() - 3 * 86400,) * 2)
    fresh_old_style = directory / f".tmp-{spec.key}-12345-deadbeef.partial"
    fresh_old_style.write_bytes(b"")
    assert not store.contains(spec)
    store.get(spec)
    assert store.stats["built"] == 1
    assert not stale.exists() and not old_other.exists()
    # A fresh file without a host in its name might be a live writer elsewhere: kept until stale.
    assert sorted(p.name for p in directory.iterdir()) == sorted([f"{spec.key}.pt", fresh_old_style.name])


# ----------------------------------------------------------------------------- environment


def test_environment_is_written_into_every_artifact(tmp_path):
    env = {"torch": "2.11", "numerics": "portable", "cpu_capability": "AVX2", "device": "cpu", "threads": 1}
    parent = Spec.make("train", seed=1)
    child = Spec.make("train", parents=(parent,), seed=2)
    store = ArtifactStore(tmp_path / "a", {"train": _seeded_builder}, environment=env)
    store.get(child)
    for spec in (parent, child):
        header = _header(store.path_for(spec))
        assert header["environment"] == env and header["torch_version"] == torch.__version__
    default = ArtifactStore(tmp_path / "b", {"train": _seeded_builder})
    assert default.environment == numerics.environment("cpu")
    default.get(parent)
    assert _header(default.path_for(parent))["environment"] == numerics.environment("cpu")


def test_foreign_environment_is_noted_once_per_distinct_difference(tmp_path):
    here = {"torch": "2.14.1", "numerics": "portable", "cpu_capability": "DEFAULT", "device": "cpu",
            "threads": 1}
    old_torch = {**here, "torch": "2.11", "cpu_capability": "AVX2"}
    gpu = {**here, "device": "cuda:0", "threads": None}
    same_but_other_gpu = {**gpu, "device": "cuda:1"}  # same device type: not a difference
    groups = {
        "old": [Spec.make("train", seed=i) for i in range(3)],
        "gpu": [Spec.make("train", seed=10)],
        "here": [Spec.make("train", seed=20)],
    }
    for name, env in (("old", old_torch), ("gpu", gpu), ("here", here)):
        ArtifactStore(tmp_path, {"train": _seeded_builder}, environment=env).build_all(groups[name])

    events = []
    loader = ArtifactStore(
        tmp_path, {"train": _seeded_builder}, environment=same_but_other_gpu,
        on_event=lambda e, s, t: events.append((e, s)) if e == "environment" else None,
    )
    loader.get(groups["gpu"][0])
    assert events == [] and loader.environment_notes == []  # cuda:0 vs cuda:1 builds alike

    loader = ArtifactStore(
        tmp_path, {"train": _seeded_builder}, environment=here,
        on_event=lambda e, s, t: events.append((e, s)) if e == "environment" else None,
    )
    loader.get(groups["here"][0])
    assert events == [] and loader.environment_notes == []
    for spec in groups["old"]:
        loader.get(spec)
        loader.get(spec)  # memory cache: not loaded again, not counted again
    assert events == [("environment", groups["old"][0])]
    assert loader.environment_notes == [
        f"3 artifacts loaded from {tmp_path} were built under another environment: "
        "torch: 2.11 → 2.14.1; cpu_capability: AVX2 → DEFAULT"
    ]
    loader.get(groups["gpu"][0])
    assert events == [("environment", groups["old"][0]), ("environment", groups["gpu"][0])]
    assert len(loader.environment_notes) == 2
    gpu_note = loader.environment_notes[1]
    assert gpu_note.startswith(f"1 artifact loaded from {tmp_path} was built under another environment: ")
    assert "device: cuda → cpu" in gpu_note and "threads: None → 1" in gpu_note
    assert loader.stats == {"built": 0, "loaded": 5, "rebuilt": 0}  # foreign artifacts are valid, not rebuilt


def test_artifact_from_before_environments_loads_as_unknown_environment(tmp_path, recwarn):
    specs = [Spec.make("train", seed=i) for i in range(2)]
    writer = ArtifactStore(tmp_path, {"train": _seeded_builder})
    writer.build_all(specs)
    for spec in specs:  # what the previous store code wrote: no "environment" in the header
        _rewrite_header(writer.path_for(spec), lambda h: {k: v for k, v in h.items() if k != "environment"})
    events = []
    loader = ArtifactStore(tmp_path, {"train": _seeded_builder}, on_event=lambda e, s, t: events.append(e))
    for spec in specs:
        assert torch.equal(loader.get(spec)["w"], _seeded_builder(spec, [], None)["w"])
    assert loader.stats == {"built": 0, "loaded": 2, "rebuilt": 0}
    assert not [w for w in recwarn if issubclass(w.category, ArtifactWarning)]
    assert events.count("environment") == 1
    assert loader.environment_notes == [
        f"2 artifacts loaded from {tmp_path} were built by an older store that did not record the "
        "environment (unknown environment; they may differ in bytes from builds here)"
    ]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"environment": "cpu"}, "'environment' parameter of ArtifactStore must be a JSON-able mapping"),
        ({"environment": {"device": object()}}, "'environment'"),
        ({"lock_timeout": 0}, "'lock_timeout' parameter of ArtifactStore must be a number of seconds > 0"),
        ({"lock_timeout": True}, "'lock_timeout'"),
        ({"lock_timeout": float("inf")}, "'lock_timeout'"),
        ({"wait_report_every": -1.0}, "'wait_report_every' parameter of ArtifactStore must be a number"),
    ],
)
def test_store_options_are_validated(tmp_path, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        ArtifactStore(tmp_path / "store", {}, **kwargs)
    assert not (tmp_path / "store").exists()  # rejected before anything was created


# ----------------------------------------------------------------------------- bad store directories


def test_check_store_root_accepts_usable_directories_and_leaves_nothing(tmp_path):
    existing = tmp_path / "store"
    existing.mkdir()
    check_store_root(existing)
    check_store_root(tmp_path / "new" / "store")  # can be created: fine, but not created by the check
    assert list(existing.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    assert compress.check_store_root is check_store_root
    assert compress.StoreError is StoreError and issubclass(compress.LockTimeout, StoreError)


def test_check_store_root_rejects_a_file_or_a_path_under_a_file(tmp_path):
    a_file = tmp_path / "artifacts"
    a_file.write_text("not a directory")
    with pytest.raises(StoreError) as info:
        check_store_root(a_file)
    assert str(info.value) == (
        f"The artifact store --artifact-dir {a_file} is not usable: {a_file} is a file, not a directory. "
        "Choose another --artifact-dir."
    )
    assert isinstance(info.value, OSError)
    below = a_file / "x" / "y"
    expected = (f"The artifact store --store {below} is not usable: {a_file} is a file, so {below} cannot be "
                "created under it. Choose another --store.")
    with pytest.raises(StoreError, match=re.escape(expected)):
        check_store_root(below, flag="--store")
    with pytest.raises(StoreError, match=r"^The artifact store .* Choose another directory\.$"):
        check_store_root(a_file, flag=None)
    assert a_file.read_text() == "not a directory"


def test_check_store_root_rejects_an_unwritable_directory(tmp_path, monkeypatch):
    # Tested by doing: root ignores mode bits, so refuse the probe file's creation instead.
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    real_open = os.open

    def read_only_open(path, flags, *args):
        if flags & os.O_CREAT and Path(path).parent in (store_dir, tmp_path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    real_stat = os.stat

    def unsearchable_stat(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "locked")):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", unsearchable_stat)
    with pytest.raises(StoreError, match=rf"{tmp_path / 'locked' / 'store'} is not usable: cannot look at "
                                         rf"{tmp_path / 'locked' / 'store'}: Permission denied\."):
        check_store_root(tmp_path / "locked" / "store")
    monkeypatch.undo()
    monkeypatch.setattr(os, "open", read_only_open)
    expected = (f"The artifact store --artifact-dir {store_dir} is not usable: cannot write in {store_dir}: "
                "Permission denied. Choose another --artifact-dir.")
    with pytest.raises(StoreError, match=re.escape(expected)):
        check_store_root(store_dir)
    with pytest.raises(StoreError, match=rf"cannot write in {tmp_path} \(its nearest existing parent"):
        check_store_root(tmp_path / "missing" / "store")
    monkeypatch.undo()
    assert list(store_dir.iterdir()) == [] and not (tmp_path / "missing").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores mode bits")
def test_check_store_root_rejects_a_read_only_directory_by_mode(tmp_path):
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    store_dir.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="cannot write in"):
            check_store_root(store_dir)
    finally:
        store_dir.chmod(0o755)


def test_check_store_root_rejects_too_little_free_space(tmp_path, monkeypatch):
    free = shutil.disk_usage(tmp_path).free
    expected = (rf"{tmp_path} is not usable: only [0-9.]+ MiB free on the file system of {tmp_path}, "
                r"at least [0-9.]+ MiB needed\. Choose another --artifact-dir\.")
    with pytest.raises(StoreError, match=expected):
        check_store_root(tmp_path, min_free_bytes=free + 2**40)
    check_store_root(tmp_path, min_free_bytes=0)
    one_mib_free = types.SimpleNamespace(total=2**33, used=2**33 - 2**20, free=2**20)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: one_mib_free)
    with pytest.raises(StoreError, match=r"only 1\.0 MiB free on the file system of .*, at least 100\.0 MiB"):
        check_store_root(tmp_path)  # the default minimum: 100 MiB
    check_store_root(tmp_path, min_free_bytes=2**20)
    monkeypatch.undo()
    with pytest.raises(InvalidParameterError, match="'min_free_bytes' parameter of check_store_root"):
        check_store_root(tmp_path, min_free_bytes=-1)
    with pytest.raises(InvalidParameterError, match="'flag'"):
        check_store_root(tmp_path, flag=3)


def test_store_construction_turns_directory_errors_into_store_errors(tmp_path, monkeypatch):
    a_file = tmp_path / "file"
    a_file.write_text("")
    expected = (f"The artifact store --artifact-dir {a_file} is not usable: {a_file} or one of its parents "
                "is a file, not a directory. Choose another --artifact-dir.")
    with pytest.raises(StoreError, match=f"^{re.escape(expected)}$"):
        ArtifactStore(a_file, {})
    with pytest.raises(StoreError, match=rf"{a_file / 'sub'} is not usable: .*is a file, not a directory"):
        ArtifactStore(a_file / "sub", {})
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "objects").write_text("")
    with pytest.raises(StoreError, match=rf"{clash / 'objects'} exists and is not a directory") as info:
        ArtifactStore(clash, {})
    assert isinstance(info.value.__cause__, FileExistsError)

    def refused(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refused)
    objects = tmp_path / "ro" / "objects"
    with pytest.raises(StoreError, match=re.escape(f"cannot create {objects}: Permission denied.")):
        ArtifactStore(tmp_path / "ro", {})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clash", "file"]


# ----------------------------------------------------------------------------- failed writes


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_disk_full_during_write_names_artifact_and_store_and_leaves_nothing(tmp_path, monkeypatch, where):
    spec = Spec.make("train", seed=4)
    store = ArtifactStore(tmp_path, {"train": _seeded_builder})
    seen_partials: list[tuple[str, int]] = []

    def full(*_):
        seen_partials.extend((p.name, p.stat().st_size) for p in _partials(tmp_path))
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", full)
    else:
        real_fdopen = os.fdopen

        class HalfWritten:
            """A file that takes the first half of the first write, then finds the disk full."""

            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                full()

        monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: HalfWritten(real_fdopen(fd, *a, **k)))
    with pytest.raises(StoreError) as info:
        store.get(spec)
    monkeypatch.undo()
    message = str(info.value)
    assert message.startswith(f"Could not write the artifact of {spec.describe()} to the artifact store "
                              f"{tmp_path}: no space left on its file system (")
    assert "Nothing was stored for it. Free some space or choose another --artifact-dir." in message
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    # The failure happened with the artifact's temporary file on disk, holding data ...
    artifact_partials = [(n, size) for n, size in seen_partials if n.startswith(f".tmp-{spec.key}.pt-")]
    assert len(artifact_partials) == 1 and artifact_partials[0][1] > 0
    assert files.parse_temp_name(artifact_partials[0][0]) == (os.getpid(), files.host_identity())
    # ... and nothing half-written is left: no temporary file, no artifact, no log line, no owner record.
    assert _partials(tmp_path) == [] and not store.path_for(spec).exists() and not store.contains(spec)
    assert store.stats == {"built": 0, "loaded": 0, "rebuilt": 0} and _log_rows(tmp_path) == []
    assert list((tmp_path / "locks").glob("*.owner")) == []
    assert ArtifactStore(tmp_path, {"train": _seeded_builder}).get(spec)["n"] == 7  # lock released


def test_other_write_errors_are_store_errors_too(tmp_path, monkeypatch):
    spec = Spec.make("train", seed=4)
    store = ArtifactStore(tmp_path, {"train": _seeded_builder})

    def read_only(*_):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(StoreError, match=re.escape(f"of {spec.describe()} to the artifact store {tmp_path}: "
                                                   "Read-only file system. Nothing was stored for it.")):
        store.get(spec)
    monkeypatch.undo()
    assert _partials(tmp_path) == [] and not store.path_for(spec).exists()


# ----------------------------------------------------------------------------- lock owners and waiting


def test_lock_holder_is_recorded_while_building_and_removed_after(tmp_path):
    spec = Spec.make("train", seed=3)
    seen = {}

    def build(spec, parents, ctx):
        seen["holder"] = ctx.store.lock_holder(spec)
        seen["files"] = sorted(p.name for p in (tmp_path / "locks").iterdir())
        return _seeded_builder(spec, parents, ctx)

    before = datetime.datetime.now().astimezone().replace(microsecond=0)
    store = ArtifactStore(tmp_path, {"train": build})
    assert store.lock_holder(spec) is None
    store.get(spec)
    holder = seen["holder"]
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert holder["spec"] == spec.describe() and holder["key"] == spec.key
    since = datetime.datetime.fromisoformat(holder["since"])
    assert before <= since <= datetime.datetime.now().astimezone()
    assert seen["files"] == [f"{spec.key}.lock", f"{spec.key}.owner"]
    assert store.lock_holder(spec) is None and not (tmp_path / "locks" / f"{spec.key}.owner").exists()
    # A record left by a killed holder on this host names nobody.
    owner = tmp_path / "locks" / f"{spec.key}.owner"
    owner.write_text(json.dumps({**holder, "pid": _dead_pid()}))
    assert store.lock_holder(spec) is None
    owner.write_text(json.dumps({**holder, "pid": 4242, "host": "far", "host_id": "far~00000000"}))
    assert store.lock_holder(spec)["host"] == "far"  # another host's pid cannot be checked: trusted


def test_waiter_reports_who_holds_the_lock_then_loads_what_was_built(tmp_path):
    spec = Spec.make("train", seed=6)
    inside, release, calls = threading.Event(), threading.Event(), []

    def slow(spec, parents, ctx):
        calls.append(spec.key)
        inside.set()
        assert release.wait(30)
        return _seeded_builder(spec, parents, ctx)

    holder_store = ArtifactStore(tmp_path, {"train": slow})
    thread = threading.Thread(target=holder_store.get, args=(spec,))
    thread.start()
    assert inside.wait(30)

    waits = []

    def on_event(event, s, seconds):
        if event == "waiting":
            waits.append((seconds, dict(waiter.waiting)))
            if len(waits) == 4:
                release.set()

    # A second store object in this process has its own lock object: it contends like another process.
    waiter = ArtifactStore(tmp_path, {"train": slow}, on_event=on_event, wait_report_every=0.05)
    payload = waiter.get(spec)
    thread.join(30)
    assert calls == [spec.key]  # built once, by the holder
    assert waiter.stats == {"built": 0, "loaded": 1, "rebuilt": 0} and waiter.waiting is None
    assert torch.equal(payload["w"], _seeded_builder(spec, [], None)["w"])
    seconds = [s for s, _ in waits]
    assert seconds[0] == 0.0 and seconds == sorted(seconds) and seconds[3] >= 0.1
    for waited, info in waits:
        assert info["holder"]["pid"] == os.getpid() and info["holder"]["spec"] == spec.describe()
        assert info["waited_s"] == waited and info["spec"] == spec.describe()
        expected = f"waiting 0:00 for {spec.describe()} built by pid {os.getpid()} on host "
        assert info["text"].startswith(expected)


@pytest.mark.parametrize("record", [True, False])
@pytest.mark.parametrize("method", ["get", "build_all"])
def test_lock_timeout_names_spec_holder_and_wait_and_builds_nothing(tmp_path, record, method):
    spec = Spec.make("train", seed=7)
    calls, events = [], []
    store = ArtifactStore(
        tmp_path, {"train": lambda s, p, c: calls.append(s) or {}}, lock_timeout=0.3, wait_report_every=0.1,
        on_event=lambda e, s, t: events.append((e, t)),
    )
    other = filelock.FileLock(str(tmp_path / "locks" / f"{spec.key}.lock"))  # another holder
    other.acquire()
    if record:
        (tmp_path / "locks" / f"{spec.key}.owner").write_text(json.dumps(
            {"pid": 4242, "host": "gpu-7", "host_id": "gpu-7~00000000", "since": "2026-01-02T11:02:03+00:00",
             "spec": spec.describe(), "key": spec.key}))
    start = time.monotonic()
    try:
        with pytest.raises(LockTimeout) as info:
            store.get(spec) if method == "get" else store.build_all([spec])
    finally:
        other.release()
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert message.startswith(f"Gave up waiting for {spec.describe()} after 0:00 (lock_timeout=0.3 s): ")
    who = "pid 4242 on host gpu-7 (since 2026-01-02 " if record else "another process (it left no owner"
    assert f"it is being built by {who}" in message
    assert f"which holds {tmp_path / 'locks' / f'{spec.key}.lock'}." in message
    assert isinstance(info.value, StoreError) and isinstance(info.value, OSError)
    assert 0.3 <= elapsed < 5
    waited = [t for e, t in events if e == "waiting"]
    assert waited[0] == 0.0 and len(waited) >= 4 and waited[-1] >= 0.3
    assert calls == [] and not store.path_for(spec).exists() and _partials(tmp_path) == []
    assert store.waiting is None and store.stats == {"built": 0, "loaded": 0, "rebuilt": 0}


def test_lock_timeout_shorter_than_the_report_interval_is_kept(tmp_path):
    spec = Spec.make("train", seed=7)
    events = []
    store = ArtifactStore(tmp_path, {"train": _seeded_builder}, lock_timeout=0.2, wait_report_every=60,
                          on_event=lambda e, s, t: events.append((e, t)))
    other = filelock.FileLock(str(tmp_path / "locks" / f"{spec.key}.lock"))
    start = time.monotonic()
    with other.acquire(timeout=1), pytest.raises(LockTimeout):
        store.get(spec)
    assert 0.2 <= time.monotonic() - start < 5  # not the 60 s report interval
    assert [e for e, _ in events] == ["waiting", "waiting"] and events[1][1] >= 0.2
    assert not store.path_for(spec).exists() and _partials(tmp_path) == []


# ----------------------------------------------------------------------------- store.log recovery


@pytest.mark.parametrize("batch", [1, 256])
def test_rebuild_log_restores_the_built_lines_a_kill_lost(tmp_path, monkeypatch, batch):
    monkeypatch.setattr(store_module, "_LOCK_BATCH", batch)  # locks are taken (and released) in batches
    parent = Spec.make("train", seed=1)
    specs = [parent, Spec.make("train", parents=(parent,), seed=2, lr=0.1), Spec.make("train", seed=3)]
    store = ArtifactStore(tmp_path, {"train": _seeded_builder})
    store.build_all(specs)
    ArtifactStore(tmp_path, {"train": _seeded_builder}).get(specs[1])  # a "loaded" line: not a "built" one
    rows = _log_rows(tmp_path)
    assert [r["event"] for r in rows] == ["built", "built", "built", "loaded"]
    kept = [r for r in rows if not (r["event"] == "built" and r["key"] != specs[0].key[:12])]
    (tmp_path / "store.log").write_text("".join(json.dumps(r) + "\n" for r in kept))
    (tmp_path / "objects" / "zz").mkdir()
    (tmp_path / "objects" / "zz" / f"{'z' * 64}.pt").write_bytes(b"garbage")  # not an artifact: ignored

    assert store.rebuild_log() == 2
    rows = _log_rows(tmp_path)
    assert rows[: len(kept)] == kept
    recovered = rows[len(kept):]
    assert sorted(r["key"] for r in recovered) == sorted(s.key[:12] for s in specs[1:])
    for row in recovered:
        spec = next(s for s in specs if s.key[:12] == row["key"])
        assert row["event"] == "built" and row["recovered"] is True and row["kind"] == "train"
        assert row["spec"] == spec.describe() and row["time"] == _header(store.path_for(spec))["created"]
        assert row["pid"] is None and row["seconds"] is None
    built = {r["key"] for r in rows if r["event"] == "built"}
    assert built == {s.key[:12] for s in specs}
    assert store.rebuild_log() == 0 and len(_log_rows(tmp_path)) == len(rows)  # idempotent

    (tmp_path / "store.log").unlink()
    held = filelock.FileLock(str(tmp_path / "locks" / f"{specs[2].key}.lock"))
    with held.acquire(timeout=1):  # being rebuilt right now: its builder will log it
        assert store.rebuild_log() == 2
    assert store.rebuild_log() == 1
    assert {r["key"] for r in _log_rows(tmp_path)} == {s.key[:12] for s in specs}


def test_rebuild_log_does_not_duplicate_a_line_its_builder_appends_meanwhile(tmp_path, monkeypatch):
    spec = Spec.make("train", seed=1)
    store = ArtifactStore(tmp_path, {"train": _seeded_builder})
    store.get(spec)
    real = files.logged_keys
    reads = []

    def first_read_misses_the_line(log):  # the builder's line lands between the scan and the lock
        reads.append(log)
        return set() if len(reads) == 1 else real(log)

    monkeypatch.setattr(files, "logged_keys", first_read_misses_the_line)
    assert store.rebuild_log() == 0 and len(reads) == 2
    assert [r["event"] for r in _log_rows(tmp_path)] == ["built"]


# ----------------------------------------------------------------------------- orphaned temporary files


def test_temporary_file_names_carry_pid_and_host():
    name = files.temp_name("abc.pt")
    assert name.startswith(".tmp-abc.pt-") and name.endswith(".partial")
    assert files.parse_temp_name(name) == (os.getpid(), files.host_identity())
    assert files.parse_temp_name(_temp("k.owner", 17, "my-host.example.org~1a2b3c4d")) == (
        17, "my-host.example.org~1a2b3c4d"
    )
    assert files.parse_temp_name(".tmp-abc-12345-deadbeef.partial") == (None, None)  # old naming
    assert files.parse_temp_name("abc.pt") is None and files.parse_temp_name(".tmp-abc.lock") is None
    assert "@" not in files.host_identity() and "/" not in files.host_identity()


def test_orphans_are_swept_from_the_whole_tree_once_without_touching_live_writers(tmp_path):
    spec = Spec.make("train", seed=5)
    store = ArtifactStore(tmp_path, {"train": _seeded_builder})
    objects, locks = tmp_path / "objects", tmp_path / "locks"
    three_days_ago = time.time() - 3 * 86400
    dead = _dead_pid()
    layout = {  # path -> (old by mtime, should be removed)
        objects / "aa" / _temp("aa11.pt", dead): (False, True),  # dead writer on this host
        objects / "bb" / _temp("bb11.pt", os.getpid()): (False, False),  # live writer (us)
        objects / "bb" / _temp("bb22.pt", dead, "elsewhere~12345678"): (False, False),  # other host, fresh
        objects / "cc" / _temp("cc11.pt", dead, "elsewhere~12345678"): (True, True),  # other host, stale
        objects / "cc" / ".tmp-cc22-77-00000000.partial": (False, False),  # old naming, fresh
        objects / "dd" / ".tmp-dd11-77-00000000.partial": (True, True),  # old naming, stale
        objects / "dd" / f"{'d' * 64}.pt": (True, False),  # an artifact, however old
        locks / _temp("ee11.owner", dead): (False, True),  # owner record's temporary
    }
    for path, (old, _) in layout.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
        if old:
            os.utime(path, (three_days_ago, three_days_ago))
    store.get(spec)
    for path, (_, removed) in layout.items():
        assert path.exists() != removed, path
    assert not [p for p in tmp_path.rglob(".tmp-clock-*")]  # the clock probes are gone too

    late = objects / "aa" / _temp("aa33.pt", dead)
    late.write_bytes(b"")
    store.get(Spec.make("train", seed=6))  # the sweep runs once per store object ...
    assert late.exists()
    assert store.clean_orphaned_temporaries() == [late] and not late.exists()  # ... or on demand


def test_sweep_judges_age_by_the_file_systems_clock_not_the_machines(tmp_path, monkeypatch):
    directory = tmp_path / "objects" / "ab"
    directory.mkdir(parents=True)
    fresh = directory / _temp("ab1.pt", 4242, "elsewhere~12345678")
    fresh.write_bytes(b"")
    old = directory / _temp("ab2.pt", 4242, "elsewhere~12345678")
    old.write_bytes(b"")
    real_now = time.time()
    os.utime(old, (real_now - 3 * 86400,) * 2)
    # This machine's clock is 3 days ahead (or behind): no effect on which file is stale.
    for shift in (3 * 86400, -3 * 86400):
        monkeypatch.setattr(time, "time", lambda: real_now + shift)
        assert files.sweep_orphans([directory]) == ([old] if shift > 0 else [])
        assert fresh.exists() and not old.exists()
    monkeypatch.undo()
    # The file system's clock decides: a file is stale exactly past the stale age on it.
    mtime = fresh.stat().st_mtime
    monkeypatch.setattr(files, "fs_now", lambda d: mtime + files.STALE_TEMP_SECONDS - 60)
    assert files.sweep_orphans([directory]) == [] and fresh.exists()
    monkeypatch.setattr(files, "fs_now", lambda d: mtime + files.STALE_TEMP_SECONDS + 60)
    assert files.sweep_orphans([directory]) == [fresh] and not fresh.exists()


# ----------------------------------------------------------------------------- store, several processes


@pytest.mark.slow
def test_two_processes_racing_build_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    counter = tmp_path / "counter.txt"
    spec = Spec.make("slow", seed=4, sleep=0.5)
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_race_worker, args=(str(tmp_path / "store"), str(counter), spec, barrier, queue))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert [key for _, key in _done_lines(counter)] == [spec.key]  # built exactly once
    (_, w1, s1), (_, w2, s2) = results
    assert w1 == w2 == _seeded_builder(spec, [], None)["w"].tolist()
    assert sorted([s1["built"], s2["built"]]) == [0, 1]
    assert sorted([s1["loaded"], s2["loaded"]]) == [0, 1]


@pytest.mark.slow
def test_build_all_two_processes_build_disjoint_sets_in_parallel(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    counter = tmp_path / "counter.txt"
    root = Spec.make("root", sleep=0.2)
    specs = [Spec.make("slow", parents=(root,), seed=i, sleep=0.5) for i in range(6)]
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(
            target=_build_all_worker,
            args=(str(tmp_path / "store"), str(counter), specs, seed, barrier, queue),
        )
        for seed in (0, 1)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    done = _done_lines(counter)
    keys = [key for _, key in done]
    assert sorted(keys) == sorted(s.key for s in [root, *specs])  # each exactly once
    builders_of_children = {pid for pid, key in done if key != root.key}
    assert len(builders_of_children) == 2  # both processes built some
    for _, stats, present in results:
        assert all(present) and stats["rebuilt"] == 0
    assert sum(stats["built"] for _, stats, _ in results) == 7


@pytest.mark.slow
def test_killed_build_leaves_no_artifact(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    counter = tmp_path / "counter.txt"
    root = tmp_path / "store"
    spec = Spec.make("slow", seed=8, sleep=60.0)
    proc = ctx.Process(target=_get_worker, args=(str(root), str(counter), spec))
    proc.start()
    deadline = time.monotonic() + 60
    while not (counter.exists() and "start" in counter.read_text()):
        assert time.monotonic() < deadline and proc.is_alive()
        time.sleep(0.05)
    proc.kill()  # SIGKILL on POSIX: no cleanup code runs
    proc.join(timeout=30)
    assert proc.exitcode is not None and proc.exitcode != 0

    store = ArtifactStore(root, {"slow": _seeded_builder})
    assert not store.contains(spec) and not store.path_for(spec).exists()
    assert _done_lines(counter) == [] and _partials(root) == []
    # The killed holder's owner record is still there, but a dead process on this host holds nothing.
    assert (root / "locks" / f"{spec.key}.owner").exists() and store.lock_holder(spec) is None
    payload = store.get(spec)  # the dead process's lock is gone: no wait
    assert store.stats == {"built": 1, "loaded": 0, "rebuilt": 0}
    assert torch.equal(payload["w"], _seeded_builder(spec, [], None)["w"])


@pytest.mark.slow
def test_waiter_names_the_other_process_that_builds(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    counter = tmp_path / "counter.txt"
    root = tmp_path / "store"
    spec = Spec.make("slow", seed=11, sleep=1.5)
    proc = ctx.Process(target=_get_worker, args=(str(root), str(counter), spec))
    proc.start()
    deadline = time.monotonic() + 60
    while not (counter.exists() and "start" in counter.read_text()):
        assert time.monotonic() < deadline and proc.is_alive()
        time.sleep(0.02)
    holders = []

    def on_event(event, s, seconds):
        if event == "waiting":
            holders.append((seconds, waiter.waiting["holder"]))

    waiter = ArtifactStore(root, {"slow": _seeded_builder}, on_event=on_event, wait_report_every=0.2)
    assert waiter.lock_holder(spec)["pid"] == proc.pid
    payload = waiter.get(spec)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert waiter.stats == {"built": 0, "loaded": 1, "rebuilt": 0}  # loaded what the other process built
    assert torch.equal(payload["w"], _seeded_builder(spec, [], None)["w"])
    assert len(holders) >= 3 and holders[0][0] == 0.0
    # Every report but the last (the holder may be releasing then) names the other process.
    assert all(h is not None and h["pid"] == proc.pid and h["spec"] == spec.describe()
               for _, h in holders[:-1])
    assert [key for _, key in _done_lines(counter)] == [spec.key]
    assert waiter.lock_holder(spec) is None and waiter.waiting is None
