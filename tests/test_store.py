"""Tests for compress.store: spec keys, build-once semantics, corruption, multi-process safety."""
from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
import struct
import time
from pathlib import Path

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from compress._validation import InvalidParameterError
from compress.store import STORE_FORMAT_VERSION, ArtifactStore, ArtifactWarning, BuildContext, Spec

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
    # What a SIGKILL during the write leaves behind: a partial temp file.
    stale = directory / f".tmp-{spec.key}-12345-deadbeef.partial"
    stale.write_bytes(b"compress-store\npartial")
    old_other = directory / ".tmp-otherkey-1-00000000.partial"
    old_other.write_bytes(b"")
    os.utime(old_other, (time.time() - 3 * 86400,) * 2)
    assert not store.contains(spec)
    store.get(spec)
    assert store.stats["built"] == 1
    assert not stale.exists() and not old_other.exists()
    assert [p.name for p in directory.iterdir()] == [f"{spec.key}.pt"]


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
    assert _done_lines(counter) == []
    payload = store.get(spec)  # the dead process's lock is gone: no wait
    assert store.stats == {"built": 1, "loaded": 0, "rebuilt": 0}
    assert torch.equal(payload["w"], _seeded_builder(spec, [], None)["w"])
