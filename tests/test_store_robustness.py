"""The store in hostile conditions: bad directories, full disks, hung lock holders, killed writers, foreign builds."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import filelock
import pytest
import torch

from compress import store as store_module
from compress.store import ArtifactStore, LockTimeout, Spec, StoreError, check_store_root


def _builders(calls=None):
    def build(spec, parents, ctx):
        if calls is not None:
            calls.append(spec.key)
        return {"w": torch.full((3,), float(spec.param("seed")))}

    return {"train": build}


def _partials(root):
    return list((root / "objects").rglob("*.partial"))


# ---------------------------------------------------------------- directories
def test_check_store_root_names_the_path_the_problem_and_the_flag(tmp_path):
    check_store_root(tmp_path / "new" / "store")  # creatable: fine
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(StoreError, match=r"--artifact-dir .*a-file is not usable: .*a-file is a file, not a directory"):
        check_store_root(afile)
    with pytest.raises(StoreError, match="is a file, so .* cannot be created"):
        check_store_root(afile / "sub")
    with pytest.raises(StoreError, match="MiB free"):
        check_store_root(tmp_path, min_free_bytes=2**62)


def test_check_store_root_detects_an_unwritable_directory(tmp_path, monkeypatch):
    # Tests run as root, which ignores mode bits: simulate the read-only file system instead.
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(store_module.tempfile, "mkstemp", refuse)
    with pytest.raises(StoreError, match="not writable"):
        check_store_root(tmp_path)


def test_a_store_under_a_file_is_a_store_error(tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(StoreError, match="cannot be created"):
        ArtifactStore(afile, _builders())


def test_a_full_disk_gives_one_clear_error_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path, _builders())
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full)
    spec = Spec.make("train", seed=1)
    with pytest.raises(StoreError, match=r"Could not write artifact train\(seed=1\) to the store .*No space left"):
        store.get(spec)
    monkeypatch.setattr(store_module.os, "fsync", real_fsync)
    assert not _partials(tmp_path) and not store.path_for(spec).exists()


# ---------------------------------------------------------------- locks
def test_a_waiter_reports_who_holds_the_lock_and_gives_up_after_the_timeout(tmp_path):
    spec = Spec.make("train", seed=2)
    holder = ArtifactStore(tmp_path, _builders())
    lock = filelock.FileLock(str(tmp_path / "locks" / f"{spec.key}.lock"))
    lock.acquire()
    holder._write_owner(spec)  # what a building process writes beside its lock
    events = []
    waiter = ArtifactStore(tmp_path, _builders(), lock_timeout=0.6, wait_report_every=0.2,
                           on_event=lambda e, s, secs: events.append((e, secs)))
    try:
        with pytest.raises(LockTimeout, match=rf"train\(seed=2\).*locked by pid {os.getpid()} on "):
            waiter.get(spec)
    finally:
        lock.release()
    waits = [secs for e, secs in events if e == "waiting"]
    assert len(waits) >= 3 and waits == sorted(waits)  # one line per poll, with the time waited
    assert waiter.lock_holder(spec)["pid"] == os.getpid()
    assert not waiter.path_for(spec).exists()  # nothing was built by the waiter


HOLDER = """
import sys, time, torch
from compress.store import ArtifactStore, Spec
calls = []
def build(spec, parents, ctx):
    print("building", flush=True)
    time.sleep(float(sys.argv[2]))
    return {"w": torch.full((3,), float(spec.param("seed")))}
ArtifactStore(sys.argv[1], {"train": build}).get(Spec.make("train", seed=3))
"""


def test_a_waiter_names_the_holder_and_builds_nothing_when_it_finishes(tmp_path):
    spec = Spec.make("train", seed=3)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "1.5"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "building"  # it holds the lock now
    events, calls = [], []
    waiter = ArtifactStore(tmp_path, _builders(calls), wait_report_every=0.3,
                           on_event=lambda e, s, secs: events.append((e, s.key, secs)))
    assert waiter.lock_holder(spec)["pid"] == holder.pid
    assert waiter.get(spec)["w"].tolist() == [3.0, 3.0, 3.0]
    assert holder.wait(timeout=60) == 0
    assert calls == [] and any(e == "waiting" and k == spec.key for e, k, _ in events)
    assert waiter.lock_holder(spec) is None  # the owner record goes with the lock


# ---------------------------------------------------------------- orphans and the log
def test_orphaned_temporary_files_of_dead_writers_are_swept_but_never_a_live_one(tmp_path):
    store = ArtifactStore(tmp_path, _builders())
    d = tmp_path / "objects" / "ab"
    d.mkdir(parents=True)
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    dead = d / f".tmp-{'a' * 64}-{store_module._HOST}-{dead_pid}-0000.partial"
    live = d / f".tmp-{'b' * 64}-{store_module._HOST}-{os.getpid()}-0000.partial"
    foreign = d / f".tmp-{'c' * 64}-otherhost-{dead_pid}-0000.partial"
    for f in (dead, live, foreign):
        f.write_bytes(b"x" * 10)
    store.get(Spec.make("train", seed=4))  # the first build sweeps the whole objects/ tree
    assert not dead.exists() and live.exists() and foreign.exists()


def test_stale_age_is_judged_on_the_file_systems_clock_not_the_machines(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path, _builders())
    d = tmp_path / "objects" / "cd"
    d.mkdir(parents=True)
    young = d / f".tmp-{'d' * 64}-otherhost-1-0000.partial"
    young.write_bytes(b"x")
    monkeypatch.setattr(store_module.time, "time", lambda: 1e12)  # a machine clock far ahead
    store.get(Spec.make("train", seed=5))
    assert young.exists()
    old = d / f".tmp-{'e' * 64}-otherhost-1-0000.partial"
    old.write_bytes(b"x")
    os.utime(old, (1, 1))  # written at the epoch, by the file system's clock
    ArtifactStore(tmp_path, _builders()).get(Spec.make("train", seed=6))
    assert not old.exists() and young.exists()


def test_rebuild_log_restores_lines_lost_to_a_kill(tmp_path):
    store = ArtifactStore(tmp_path, _builders())
    for seed in range(3):
        store.get(Spec.make("train", seed=seed))
    log = tmp_path / "store.log"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:1]) + "\n")  # as if killed after the renames
    assert store.rebuild_log() == 2
    keys = [json.loads(line)["key"] for line in log.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 3
    assert store.rebuild_log() == 0


# ---------------------------------------------------------------- environments
def test_artifacts_record_their_environment_and_foreign_ones_are_noted_once(tmp_path):
    env_a = {"torch": "2.14.1", "numerics": "portable", "cpu_capability": "DEFAULT", "device": "cpu"}
    env_b = {**env_a, "cpu_capability": "AVX512"}
    a = ArtifactStore(tmp_path, _builders(), environment=env_a)
    for seed in range(3):
        a.get(Spec.make("train", seed=seed))
    header = store_module._check_file(open(a.path_for(Spec.make("train", seed=0)), "rb"), Spec.make("train", seed=0).key,
                                      keep_payload=False)[2]
    assert header["environment"] == env_a
    events = []
    b = ArtifactStore(tmp_path, _builders(), environment=env_b, on_event=lambda e, s, x: events.append(e))
    for seed in range(3):
        b.get(Spec.make("train", seed=seed))
    assert events.count("environment") == 1
    (note,) = b.environment_notes
    assert note.startswith("3 artifacts loaded from") and "cpu_capability: DEFAULT → AVX512" in note
    same = ArtifactStore(tmp_path, _builders(), environment=env_a)
    same.get(Spec.make("train", seed=1))
    assert same.environment_notes == []
