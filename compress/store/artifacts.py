"""Content-addressed artifact store: specs in, trained artifacts out, each built once.

A :class:`~compress.store.spec.Spec` (defined in :mod:`compress.store.spec`, re-exported
here) is a frozen description of an artifact; its :attr:`Spec.key` is the
cache key.

:class:`ArtifactStore` maps a spec to its payload, building it (parents first)
with the builder registered for its ``kind`` when it is not on disk. Several
processes (pytest-xdist workers) may share one store:

- one file lock per spec: a spec is built by one process; the others wait on
  the lock and then load what it wrote. The holder writes an owner record
  (pid, host, since, spec) next to the lock, so a waiter can say whom it waits
  for (``on_event("waiting", spec, seconds)`` every ``wait_report_every``
  seconds, :attr:`ArtifactStore.waiting`, :meth:`ArtifactStore.lock_holder`);
  with ``lock_timeout`` it gives up with :class:`LockTimeout`;
- atomic writes (temporary file in the same directory, fsync, ``os.replace``,
  fsync of the directory): a crash or kill leaves either no artifact or a
  complete one. A failed write (disk full, read-only file system) raises
  :class:`StoreError` naming the artifact and the store, and leaves no
  temporary file;
- every file carries metadata and a SHA-256 of its payload; a truncated,
  corrupt or incompatible file raises an :class:`ArtifactWarning` and is
  rebuilt, never silently used;
- every file records the environment that built it (``environment``: torch
  version, CPU capability, numerics mode... from
  :func:`compress.runtime.numerics.environment`). Loading one built under another
  environment is still valid, but the store says so once per distinct
  difference: ``on_event("environment", spec, 0.0)`` and a line in
  :attr:`ArtifactStore.environment_notes` whose count grows with later loads.
  Files written before environments were recorded count as one more
  difference, "unknown environment", announced the same way;
- temporary files left by a killed writer are swept from ``objects/`` and
  ``locks/`` the first time a store object builds something (one
  ``os.scandir`` per directory: measured 15 ms for 256 directories holding
  5 000 files on local ext4, 70 ms with a cold cache; a store that only loads
  never pays it), or on :meth:`ArtifactStore.clean_orphaned_temporaries`.
  A file is deleted only when its writer (named in the
  file name: pid and host) is a dead process on this host, or when it is older
  than 24 h by the *file system's* clock (a probe file's mtime), never by
  comparing this machine's clock with file times. Old-style names without a
  host are judged by age only. Helpers: :mod:`compress.store.files`;
- ``store.log`` gets its ``built`` line after the artifact's rename, so a kill
  in between leaves a complete artifact without its line. Rather than logging
  before the rename (a line for an artifact that may never appear),
  :meth:`ArtifactStore.rebuild_log` appends the missing ``built`` lines from
  the artifacts' headers (marked ``"recovered": true``, with the artifact's
  creation time). It reads every artifact's header, so nothing calls it
  automatically.

Before a run, :func:`check_store_root` tells whether a directory can hold a
store (is a directory or can become one, is writable, has free space), with a
message naming the command-line flag that chose it.

Layout under ``root``::

    objects/<key[:2]>/<key>.pt                   artifacts
    objects/<key[:2]>/.tmp-<key>.pt-<pid>@<host>-<token>.partial
                                                 writes in progress (or left by a kill)
    locks/<key>.lock                             one lock file per spec
    locks/<key>.owner                            JSON owner record while the lock is held
    store.log                                    one JSON line per built/loaded/rebuilt event

Deadlock freedom: a process takes a spec's lock only after its parents are
present (``get`` builds the parents first, outside the child's lock), and a
builder may only ``get`` specs that are not its descendants; so no process
ever holds a parent's lock while waiting for a child's.

One module though long: build, lock, wait, write and inspect share the
store's state (its root, locks, counters, the log and the environment notes)
and its invariants (one builder per spec, nothing half-written); the file
format lives in :mod:`compress.store.files` and the spec and its key in
:mod:`compress.store.spec`. About a fifth of it is this docstring.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import math
import os
import random
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import torch

from analysis._validation import InvalidParameterError, invalid

import compress.store.files as files
import compress.runtime.numerics as numerics
from compress.runtime.progress import format_seconds
from compress.store.history import cost_class
from compress.store.spec import STORE_FORMAT_VERSION, Spec, _depths, _spec_from_dict, _topological

__all__ = [
    "STORE_FORMAT_VERSION",
    "ArtifactStore",
    "ArtifactWarning",
    "BuildContext",
    "LockTimeout",
    "Spec",
    "StoreError",
    "check_store_root",
]

# The command-line option that chooses the store directory, named in error messages.
_FLAG = "--artifact-dir"
# rebuild_log holds this many locks (open files) at a time at most.
_LOCK_BATCH = 256

_logger = logging.getLogger(__name__)

_MISSING = "missing"
_UNKNOWN_ENVIRONMENT = ("unknown environment",)

Builder = Callable[["Spec", list[Any], "BuildContext"], Any]


class ArtifactWarning(UserWarning):
    """A stored artifact was unusable (truncated, corrupt, incompatible) and is rebuilt."""


class StoreError(OSError):
    """The store's directory cannot be used, or an artifact cannot be written; the message names both."""


class LockTimeout(StoreError):
    """Waited longer than the store's ``lock_timeout`` for a spec another process is building."""


def _unusable(path: Path, problem: str, flag: str | None) -> StoreError:
    """The one message format for a store directory that cannot be used."""
    if flag:
        return StoreError(
            f"The artifact store {flag} {path} is not usable: {problem}. Choose another {flag}."
        )
    return StoreError(f"The artifact store {path} is not usable: {problem}. Choose another directory.")


def check_store_root(
    path: str | os.PathLike[str],
    *,
    min_free_bytes: int = 100 * 2**20,
    flag: str | None = _FLAG,
) -> None:
    """Raise :class:`StoreError` unless ``path`` is, or can become, a usable store directory.

    Checked by doing, not by reading mode bits (root ignores them; a read-only
    mount does not): a probe file is created and removed in ``path``, or in its
    nearest existing ancestor when ``path`` does not exist yet. Nothing is
    left behind and no directory is created.

    Parameters
    ----------
    path : path-like
        The intended store root.
    min_free_bytes : int
        Least free space on its file system (default 100 MiB).
    flag : str or None
        The command-line option that chose ``path``, named in the message
        ("Choose another --artifact-dir."); None for a plain directory.

    Raises
    ------
    StoreError
        ``path`` (or an ancestor) is a file; the directory that would hold it
        is not writable; or its file system has less than ``min_free_bytes``
        free. The message names the path and the problem.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise invalid("path", "check_store_root", "a path", path)
    if isinstance(min_free_bytes, bool) or not isinstance(min_free_bytes, int) or min_free_bytes < 0:
        raise invalid("min_free_bytes", "check_store_root", "an int >= 0", min_free_bytes)
    if flag is not None and not isinstance(flag, str):
        raise invalid("flag", "check_store_root", "a str or None", flag)
    path = Path(path)
    existing = path
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        is_dir = existing.is_dir()
    except OSError as exc:  # e.g. a parent that may not be searched
        problem = f"cannot look at {exc.filename or existing}: {exc.strerror or exc}"
        raise _unusable(path, problem, flag) from exc
    if not is_dir:
        if existing == path:
            raise _unusable(path, f"{path} is a file, not a directory", flag)
        raise _unusable(path, f"{existing} is a file, so {path} cannot be created under it", flag)
    where = "" if existing == path else " (its nearest existing parent, where it would be created)"
    probe = existing / files.temp_name("probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _unusable(path, f"cannot write in {existing}{where}: {exc.strerror or exc}", flag) from exc
    try:
        free = shutil.disk_usage(existing).free
    except OSError as exc:
        problem = f"cannot read the free space of {existing}: {exc.strerror or exc}"
        raise _unusable(path, problem, flag) from exc
    if free < min_free_bytes:
        problem = (
            f"only {_mib(free)} free on the file system of {existing}{where}, "
            f"at least {_mib(min_free_bytes)} needed"
        )
        raise _unusable(path, problem, flag)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


# --------------------------------------------------------------------------- store


@dataclass
class BuildContext:
    """What a builder gets besides its spec and parent payloads.

    Attributes
    ----------
    store : ArtifactStore
        The store building the artifact; a builder may ``store.get`` extra
        specs (never one of its own descendants).
    spec : Spec
        The spec being built.
    """

    store: ArtifactStore
    spec: Spec

    def report(self, message: str) -> None:
        """Report build progress: logged, and forwarded as ``on_event('progress', spec, 0.0)``."""
        _logger.info("%s: %s", self.spec.describe(), message)
        if self.store.on_event is not None:
            self.store.on_event("progress", self.spec, 0.0)


@dataclass
class _Inspection:
    reason: str | None  # None: valid; _MISSING: no file; else why it is unusable
    payload: Any = None


_SKIPPED = object()


class ArtifactStore:
    """Build each spec once, store it on disk, share it between processes.

    Parameters
    ----------
    root : path-like
        Store directory (created if missing; :func:`check_store_root` checks
        it more thoroughly beforehand).
    builders : mapping of str to callable
        ``builders[spec.kind](spec, parent_payloads, context)`` returns the
        payload: anything ``torch.save`` writes and
        ``torch.load(weights_only=True)`` reads back (nested dicts/lists/tuples
        of tensors, str, int, float, bool, None). Payloads are stored and
        returned on the CPU.
    memory_cache : bool
        Keep loaded payloads in this process, keyed by spec key. Cached
        payloads are shared: callers must not modify them in place.
    on_event : callable, optional
        ``on_event(event, spec, seconds)`` with event one of ``"building"``
        (before a build), ``"built"``, ``"rebuilt"``, ``"loaded"``,
        ``"progress"`` (from :meth:`BuildContext.report`), ``"waiting"``
        (blocked on another process's lock: once at 0 s, then every
        ``wait_report_every`` seconds with the seconds waited so far; see
        :attr:`waiting`) and ``"environment"`` (a loaded artifact was built
        under another environment; once per distinct difference, see
        :attr:`environment_notes`).
    lock_timeout : float, optional
        Seconds to wait for a spec another process is building before raising
        :class:`LockTimeout`; None (default) waits as long as it takes.
    environment : mapping, optional
        What decides an artifact's bytes, written into every artifact's
        metadata; default ``compress.runtime.numerics.environment("cpu")``. Callers
        building on a GPU pass ``numerics.environment(device)``.
    wait_report_every : float
        Seconds between two ``"waiting"`` events while blocked on a lock.

    Attributes
    ----------
    environment : dict
        The environment recorded in artifacts this store writes.
    environment_notes : list of str
        One line per distinct environment difference found among loaded
        artifacts, e.g. "3 artifacts loaded from /s were built under another
        environment: torch: 2.11 → 2.14.1". Counts are updated in place.
    waiting : dict or None
        While blocked on another process's lock: ``{"spec", "key", "waited_s",
        "holder", "text"}``, where ``holder`` is :meth:`lock_holder`'s record
        (or None) and ``text`` a ready line ("waiting 0:40 for train(…) built
        by pid 1234 on host h (since 11:02:03)"). None otherwise.

    Examples
    --------
    >>> import tempfile, torch
    >>> def train(spec, parents, ctx):
    ...     return {"w": torch.full((2,), float(spec.param("seed")))}
    >>> store = ArtifactStore(tempfile.mkdtemp(), {"train": train})
    >>> store.get(Spec.make("train", seed=3))["w"]
    tensor([3., 3.])
    >>> store.stats
    {'built': 1, 'loaded': 0, 'rebuilt': 0}
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        builders: Mapping[str, Builder],
        *,
        memory_cache: bool = True,
        on_event: Callable[[str, Spec, float], None] | None = None,
        lock_timeout: float | None = None,
        environment: Mapping[str, object] | None = None,
        wait_report_every: float = 10.0,
    ):
        if not isinstance(root, (str, os.PathLike)):
            raise invalid("root", "ArtifactStore", "a path", root)
        if not isinstance(builders, Mapping) or not all(
            isinstance(k, str) and callable(v) for k, v in builders.items()
        ):
            raise invalid("builders", "ArtifactStore", "a mapping of kind names to callables", builders)
        if on_event is not None and not callable(on_event):
            raise invalid("on_event", "ArtifactStore", "a callable or None", on_event)
        if lock_timeout is not None and not _positive_number(lock_timeout):
            raise invalid("lock_timeout", "ArtifactStore", "a number of seconds > 0 or None", lock_timeout)
        if not _positive_number(wait_report_every):
            raise invalid("wait_report_every", "ArtifactStore", "a number of seconds > 0", wait_report_every)
        if environment is None:
            environment = numerics.environment("cpu")
        if not isinstance(environment, Mapping) or not _json_object(environment):
            expected = "a JSON-able mapping (numerics.environment(device))"
            raise invalid("environment", "ArtifactStore", expected, environment)
        self.root = Path(root)
        self.builders: dict[str, Builder] = dict(builders)
        self.memory_cache = bool(memory_cache)
        self.on_event = on_event
        self.lock_timeout = None if lock_timeout is None else float(lock_timeout)
        self.wait_report_every = float(wait_report_every)
        self.environment: dict[str, object] = dict(environment)
        self.environment_notes: list[str] = []
        self.waiting: dict[str, object] | None = None
        self._objects = self.root / "objects"
        self._locks_dir = self.root / "locks"
        self._log_path = self.root / "store.log"
        for directory in (self._objects, self._locks_dir):
            self._make_directory(directory)
        self._cache: dict[str, Any] = {}
        self._valid_files: dict[str, tuple[int, int, int, int]] = {}
        self._locks: dict[str, filelock.FileLock] = {}
        self._building: set[str] = set()
        self._checked_kinds: set[str] = set()
        self._stats = {"built": 0, "loaded": 0, "rebuilt": 0}
        # Environment difference -> (index of its note, artifacts counted).
        self._environment_seen: dict[tuple[str, ...], tuple[int, int]] = {}
        self._swept = False

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r}, kinds={sorted(self.builders)})"

    # ------------------------------------------------------------------ public

    @property
    def stats(self) -> dict[str, int]:
        """Counts of ``built``, ``loaded`` (from disk) and ``rebuilt`` artifacts in this process."""
        return dict(self._stats)

    def path_for(self, spec: Spec) -> Path:
        """Where the artifact of ``spec`` lives: ``root/objects/<key[:2]>/<key>.pt``."""
        self._check_spec(spec, "path_for")
        return self._objects / spec.key[:2] / f"{spec.key}.pt"

    def contains(self, spec: Spec) -> bool:
        """Whether a valid artifact for ``spec`` is on disk.

        Checks the metadata (format version, key, length) and the payload's
        checksum, but does not unpickle the payload; :meth:`get` does, and
        rebuilds with an :class:`ArtifactWarning` if that fails.
        """
        self._check_spec(spec, "contains")
        return self._inspect(spec, load=False).reason is None

    def build_history(self) -> dict[str, list[float]]:
        """``{cost class: [build seconds, …]}`` measured in this store (:mod:`compress.store.history`)."""
        from compress.store.history import build_history

        return build_history(self._log_path)

    def plan(self, specs: Iterable[Spec]) -> list[tuple[Spec, bool]]:
        """All ancestors of ``specs``, deduplicated, parents first, each with "present in store"."""
        specs = self._check_specs(specs, "plan")
        return [(spec, self.contains(spec)) for spec in _topological(specs)]

    def get(self, spec: Spec) -> Any:
        """Payload of ``spec``: from memory, else from disk, else built (parents first).

        Raises
        ------
        InvalidParameterError
            If ``spec`` or one of its ancestors has a kind with no builder;
            raised before anything is built.
        LockTimeout
            If another process held the lock of ``spec`` (or of an ancestor)
            longer than ``lock_timeout``.
        StoreError
            If the artifact could not be written (disk full, read-only file
            system); nothing is left half-written.
        """
        self._check_spec(spec, "get")
        self._check_kinds([spec])
        return self._get(spec)

    def build_all(self, specs: Iterable[Spec], *, order_seed: int | None = None) -> None:
        """Make sure every spec in ``specs`` (and its ancestors) is on disk, cooperating with other processes.

        Passes over the ancestors (shuffled within each depth by ``order_seed``
        so that workers start at different places) build every spec that is
        absent, whose parents are present and whose lock is free, skipping
        specs another process is building. When a pass makes no progress, it
        waits for one spec held by another process, then passes again. Two
        processes on one DAG thus build disjoint sets of artifacts in parallel.
        Raises like :meth:`get`.
        """
        specs = self._check_specs(specs, "build_all")
        if order_seed is not None and (isinstance(order_seed, bool) or not isinstance(order_seed, int)):
            raise invalid("order_seed", "ArtifactStore.build_all", "an int or None", order_seed)
        self._check_kinds(specs)
        order = _topological(specs)
        depth = _depths(order)
        if order_seed is not None:
            random.Random(order_seed).shuffle(order)
        order.sort(key=lambda s: depth[s.key])  # stable: shuffled within a depth, parents first
        pending = [s for s in order if not self.contains(s)]
        while pending:
            remaining = []
            for spec in pending:
                if self.contains(spec):
                    continue
                if not all(self.contains(p) for p in spec.parents):
                    remaining.append(spec)
                    continue
                if self._build(spec, mode="try", want_payload=False) is _SKIPPED:
                    remaining.append(spec)
            if len(remaining) == len(pending):
                # No progress: everything left is being built elsewhere (or waits on that).
                self._build(remaining[0], mode="wait", want_payload=False)
                remaining = remaining[1:]
            pending = remaining

    def lock_holder(self, spec: Spec) -> dict[str, object] | None:
        """Who is building ``spec`` now: ``{"pid", "host", "host_id", "since", "spec", "key"}``, or None.

        Read from the owner record the holder of the spec's lock writes next
        to it. None when nobody holds it, when the holder left no record (it
        runs older code, or is between taking the lock and writing it), or
        when the record belongs to a process on this host that no longer
        exists. ``since`` is a local ISO-8601 time.
        """
        self._check_spec(spec, "lock_holder")
        return files.read_owner(self._owner_path(spec.key))

    def clean_orphaned_temporaries(self) -> list[Path]:
        """Delete temporary files left by killed writers in ``objects/`` and ``locks/``; return them.

        Runs by itself the first time this store object builds something. A
        file is deleted only if its writer is a dead process on this host or
        it is older than 24 h by the file system's clock (module docstring).
        """
        try:
            directories = [Path(e.path) for e in os.scandir(self._objects) if e.is_dir(follow_symlinks=False)]
        except OSError:
            directories = []
        return files.sweep_orphans([*directories, self._locks_dir])

    def rebuild_log(self) -> int:
        """Append the ``built`` lines ``store.log`` lacks, from the artifacts' own headers.

        A process killed between an artifact's rename and its log append
        leaves the artifact without its line. For every artifact whose key has
        no ``built`` or ``rebuilt`` line, this appends one with the artifact's
        creation time, kind and spec description and ``"recovered": true``
        (``pid``, ``worker`` and ``seconds`` are null: unknown). Artifacts
        whose lock is held are skipped (their builder is about to log them),
        and so are files whose header is unreadable. Reads every artifact's
        header (not its payload), so it is not run automatically.

        Returns
        -------
        int
            Number of lines appended.
        """
        logged = files.logged_keys(self._log_path)
        candidates = []
        for path in sorted(self._objects.glob("??/*.pt")):
            if path.stem[:12] in logged:
                continue
            header = files.read_artifact_header(path, STORE_FORMAT_VERSION)
            if header is not None and header.get("key") == path.stem:
                candidates.append(header)
        appended = 0
        for start in range(0, len(candidates), _LOCK_BATCH):
            appended += self._recover_log_lines(candidates[start : start + _LOCK_BATCH])
        return appended

    # ------------------------------------------------------------------ internals

    def _recover_log_lines(self, headers: list[dict]) -> int:
        """Append recovered lines for ``headers`` whose lock is free and whose line is still missing."""
        held = []
        try:
            for header in headers:
                lock = self._lock_for_key(header["key"])
                try:
                    lock.acquire(timeout=0)
                except filelock.Timeout:
                    continue  # being (re)built right now: its builder writes the line
                held.append((lock, header))
            logged = files.logged_keys(self._log_path)  # again, now that no builder of these can append
            lines = [
                files.recovered_log_line(header, _describe_header_spec(header))
                for _, header in held
                if header["key"][:12] not in logged
            ]
            for line in sorted(lines, key=lambda line: str(line["time"])):
                files.append_line(self._log_path, line)
        finally:
            for lock, _ in held:
                lock.release()
        return len(lines)

    def _make_directory(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise _unusable(self.root, f"{directory} exists and is not a directory", _FLAG) from exc
        except NotADirectoryError as exc:
            problem = f"{self.root} or one of its parents is a file, not a directory"
            raise _unusable(self.root, problem, _FLAG) from exc
        except OSError as exc:  # PermissionError, read-only file system, ...
            raise _unusable(self.root, f"cannot create {directory}: {exc.strerror or exc}", _FLAG) from exc

    def _check_spec(self, spec: object, method: str) -> None:
        if not isinstance(spec, Spec):
            raise invalid("spec", f"ArtifactStore.{method}", "a Spec", spec)

    def _check_specs(self, specs: Iterable[Spec], method: str) -> list[Spec]:
        if isinstance(specs, Spec):
            specs = [specs]
        specs = list(specs)
        for spec in specs:
            if not isinstance(spec, Spec):
                raise invalid("specs", f"ArtifactStore.{method}", "an iterable of Spec", spec)
        return specs

    def _check_kinds(self, specs: list[Spec]) -> None:
        """Fail on the first unknown kind anywhere in the DAG, before anything is built."""
        unchecked = [s for s in specs if s.key not in self._checked_kinds]
        if not unchecked:
            return
        for spec in _topological(unchecked):
            if spec.kind not in self.builders:
                known = ", ".join(repr(k) for k in sorted(self.builders)) or "none"
                raise InvalidParameterError(
                    f"The 'kind' parameter of Spec must be one of the store's builders ({known}). "
                    f"Got {spec.kind!r} instead (in {spec.describe()})."
                )
            self._checked_kinds.add(spec.key)

    def _lock_for_key(self, key: str) -> filelock.FileLock:
        # One lock object per key and store, so re-entry in this process cannot self-deadlock.
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = filelock.FileLock(str(self._locks_dir / f"{key}.lock"))
        return lock

    def _owner_path(self, key: str) -> Path:
        return self._locks_dir / f"{key}.owner"

    def _get(self, spec: Spec) -> Any:
        if self.memory_cache and spec.key in self._cache:
            return self._cache[spec.key]
        found = self._inspect(spec, load=True)
        if found.reason is None:
            return found.payload
        return self._build(spec, mode="get", want_payload=True)

    def _build(self, spec: Spec, *, mode: str, want_payload: bool) -> Any:
        """Build ``spec`` under its lock unless another process did; ``_SKIPPED`` if the lock is busy.

        ``mode``: ``"get"`` loads the parents first, outside this spec's lock,
        then waits for the lock; ``"wait"`` waits for the lock, then loads the
        parents if it has to build; ``"try"`` gives up at once if the lock is
        busy. Holding a child's lock while waiting for a parent's cannot
        deadlock: nobody waits for a child's lock while holding a parent's.
        """
        if spec.key in self._building:
            raise RuntimeError(f"Cycle: {spec.describe()} was requested while it is being built.")
        parents = [self._get(p) for p in spec.parents] if mode == "get" else None
        lock = self._lock_for_key(spec.key)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            if mode == "try":
                return _SKIPPED
            self._wait_for(lock, spec)
        owner = self._owner_path(spec.key)
        wrote_owner = False
        try:
            found = self._inspect(spec, load=want_payload)
            if found.reason is None:  # another process built it while we waited
                return found.payload
            wrote_owner = self._write_owner(owner, spec)
            if parents is None:
                parents = [self._get(p) for p in spec.parents]
            return self._build_locked(spec, parents, previous=found.reason)
        finally:
            if wrote_owner:  # before the release: the next holder writes its own
                files.remove_owner(owner)
            lock.release()

    def _wait_for(self, lock: filelock.FileLock, spec: Spec) -> None:
        """Acquire ``lock`` from another process, reporting every ``wait_report_every`` s.

        Raises :class:`LockTimeout` past ``lock_timeout``, which also bounds
        each poll, so it is kept even when shorter than the report interval.
        """
        start = time.monotonic()
        waited = 0.0
        try:
            while True:
                self._report_wait(spec, waited)
                budget = self.wait_report_every
                if self.lock_timeout is not None:
                    if waited >= self.lock_timeout:
                        raise self._lock_timeout_error(lock, spec, waited)
                    budget = min(budget, self.lock_timeout - waited)
                try:
                    lock.acquire(timeout=budget)
                    return
                except filelock.Timeout:
                    waited = time.monotonic() - start
        finally:
            self.waiting = None

    def _report_wait(self, spec: Spec, waited: float) -> None:
        holder = files.read_owner(self._owner_path(spec.key))
        who = f"built by {files.holder_text(holder)}" if holder else "held by another process"
        self.waiting = {
            "spec": spec.describe(),
            "key": spec.key,
            "waited_s": waited,
            "holder": holder,
            "text": f"waiting {format_seconds(waited)} for {spec.describe()} {who}",
        }
        _logger.info("%s", self.waiting["text"])
        self._emit("waiting", spec, waited)

    def _lock_timeout_error(self, lock: filelock.FileLock, spec: Spec, waited: float) -> LockTimeout:
        holder = files.read_owner(self._owner_path(spec.key))
        return LockTimeout(
            f"Gave up waiting for {spec.describe()} after {format_seconds(waited)} "
            f"(lock_timeout={self.lock_timeout:g} s): it is being built by {files.holder_text(holder)}, "
            f"which holds {lock.lock_file}. Nothing was built here; wait longer (a larger lock_timeout) "
            "or stop that process."
        )

    def _write_owner(self, owner: Path, spec: Spec) -> bool:
        try:
            files.write_owner(owner, files.owner_record(spec.describe(), spec.key))
        except OSError as exc:  # only informational: a full disk must not stop the build here
            _logger.debug("could not write %s: %s", owner, exc)
            return False
        return True

    def _build_locked(self, spec: Spec, parents: list[Any], previous: str) -> Any:
        path = self.path_for(spec)
        event = "built" if previous == _MISSING else "rebuilt"
        if event == "rebuilt":
            warnings.warn(
                ArtifactWarning(
                    f"Artifact {path} of {spec.describe()} is unusable ({previous}); rebuilding it."
                ),
                stacklevel=4,
            )
        if not self._swept:
            self._swept = True
            self.clean_orphaned_temporaries()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # before the build: fail before hours of training
        except OSError as exc:
            raise self._write_error(spec, path, exc) from exc
        self._emit("building", spec, 0.0)
        start = time.perf_counter()
        self._building.add(spec.key)
        try:
            raw = self.builders[spec.kind](spec, parents, BuildContext(self, spec))
        finally:
            self._building.discard(spec.key)
        data, payload = _serialize(spec, raw)
        metadata = {
            "format_version": STORE_FORMAT_VERSION,
            "key": spec.key,
            "spec": spec.as_dict(),
            "created": _now(),
            "torch_version": torch.__version__,
            "environment": self.environment,
            "payload_sha256": hashlib.sha256(data).hexdigest(),
            "payload_bytes": len(data),
        }
        header = json.dumps(metadata, sort_keys=True).encode("utf-8")
        parts = files.artifact_parts(header, data)
        try:
            files.write_atomic(path, parts)
        except OSError as exc:
            raise self._write_error(spec, path, exc, sum(map(len, parts))) from exc
        seconds = time.perf_counter() - start
        self._remember_valid(spec.key, path)
        if self.memory_cache:
            self._cache[spec.key] = payload
        self._stats[event] += 1
        self._record(event, spec, seconds)
        return payload

    def _write_error(self, spec: Spec, path: Path, exc: OSError, size: int | None = None) -> StoreError:
        if files.is_disk_full(exc):
            try:
                free = f"{_mib(shutil.disk_usage(path.parent).free)} free"
            except OSError:
                free = "free space unknown"
            needed = f"{_mib(size)} to write, " if size is not None else ""
            problem = f"no space left on its file system ({needed}{free})"
            advice = f"Free some space or choose another {_FLAG}"
        else:
            problem = exc.strerror or str(exc)
            advice = f"Check {self.root} or choose another {_FLAG}"
        return StoreError(
            f"Could not write the artifact of {spec.describe()} to the artifact store {self.root}: "
            f"{problem}. Nothing was stored for it. {advice}."
        )

    def _inspect(self, spec: Spec, *, load: bool) -> _Inspection:
        """Validate the file of ``spec`` (and load its payload when ``load``)."""
        path = self.path_for(spec)
        try:
            st = path.stat()
        except FileNotFoundError:
            return _Inspection(_MISSING)
        except OSError as exc:
            return _Inspection(f"unreadable: {exc}")
        if not load and self._valid_files.get(spec.key) == _stat_id(st):
            return _Inspection(None)
        start = time.perf_counter()
        try:
            with open(path, "rb") as f:
                reason, header, payload_bytes = files.check_artifact(
                    f, spec.key, STORE_FORMAT_VERSION, keep_payload=load
                )
        except FileNotFoundError:
            return _Inspection(_MISSING)
        except OSError as exc:
            return _Inspection(f"unreadable: {exc}")
        if reason is not None:
            return _Inspection(reason)
        payload = None
        if load:
            try:
                payload = torch.load(io.BytesIO(payload_bytes), map_location="cpu", weights_only=True)
            except Exception as exc:  # any failure to unpickle means the file is unusable
                return _Inspection(f"unreadable payload: {type(exc).__name__}: {exc}")
        self._valid_files[spec.key] = _stat_id(st)
        if load:
            if self.memory_cache:
                self._cache[spec.key] = payload
            self._stats["loaded"] += 1
            self._record("loaded", spec, time.perf_counter() - start)
            self._note_environment(spec, header)
        return _Inspection(None, payload)

    def _note_environment(self, spec: Spec, header: dict) -> None:
        """Count a loaded artifact from another environment; announce each distinct difference once."""
        recorded = header.get("environment")
        if isinstance(recorded, Mapping):
            difference = tuple(numerics.differences(dict(recorded), self.environment))
        else:  # written before environments were recorded (or a damaged entry)
            difference = _UNKNOWN_ENVIRONMENT
        if not difference:
            return
        index, count = self._environment_seen.get(difference, (len(self.environment_notes), 0))
        count += 1
        self._environment_seen[difference] = (index, count)
        s, were = ("", "was") if count == 1 else ("s", "were")
        if difference == _UNKNOWN_ENVIRONMENT:
            note = (
                f"{count} artifact{s} loaded from {self.root} {were} built by an older store that did not "
                "record the environment (unknown environment; they may differ in bytes from builds here)"
            )
        else:
            note = (f"{count} artifact{s} loaded from {self.root} {were} built under another environment: "
                    + "; ".join(difference))
        if count == 1:
            self.environment_notes.append(note)
            _logger.warning("%s", note)
            self._emit("environment", spec, 0.0)
        else:
            self.environment_notes[index] = note

    def _remember_valid(self, key: str, path: Path) -> None:
        try:
            self._valid_files[key] = _stat_id(path.stat())
        except OSError:
            self._valid_files.pop(key, None)

    def _emit(self, event: str, spec: Spec, seconds: float) -> None:
        if self.on_event is not None:
            self.on_event(event, spec, seconds)

    def _record(self, event: str, spec: Spec, seconds: float) -> None:
        line = {
            "time": _now(),
            "pid": os.getpid(),
            "worker": os.environ.get("PYTEST_XDIST_WORKER"),
            "event": event,
            "key": spec.key[:12],
            "kind": spec.kind,
            "class": cost_class(spec),  # what its build time depends on (compress.store.history)
            "spec": spec.describe(),
            "seconds": round(seconds, 4),
        }
        try:
            files.append_line(self._log_path, line)
        except OSError as exc:
            _logger.warning("could not write %s: %s", self._log_path, exc)
        _logger.debug("%s %s in %.2f s", event, spec.describe(), seconds)
        self._emit(event, spec, seconds)


def _positive_number(value: object) -> bool:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return is_number and math.isfinite(value) and value > 0


def _json_object(value: Mapping) -> bool:
    try:
        json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _describe_header_spec(header: dict) -> str:
    """The spec description of an artifact's header (its kind alone if the spec cannot be rebuilt)."""
    document = header.get("spec")
    try:
        spec = _spec_from_dict(document)
        if spec.key == header.get("key"):
            return spec.describe()
    except (InvalidParameterError, KeyError, TypeError, AttributeError, ValueError):
        pass
    kind = document.get("kind") if isinstance(document, dict) else None
    return f"{kind}(…)"


# --------------------------------------------------------------------------- file format


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _stat_id(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _serialize(spec: Spec, payload: Any) -> tuple[bytes, Any]:
    """Bytes of ``payload`` and the payload as a later load will return it (checked now, not at load time)."""
    buffer = io.BytesIO()
    try:
        torch.save(payload, buffer)
        data = buffer.getvalue()
        reloaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TypeError(
            f"The builder for {spec.kind!r} returned a {type(payload).__name__} that "
            "torch.load(weights_only=True) cannot read back; return nested dicts/lists of tensors, "
            f"str, int, float, bool or None (e.g. a state_dict). Error: {type(exc).__name__}: {exc}"
        ) from exc
    return data, reloaded
