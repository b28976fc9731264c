"""Content-addressed artifact store: specs in, trained artifacts out, each built once.

A :class:`Spec` is a frozen description of an artifact ("ResNet-18 on digits,
seed 2, 30 epochs"); it names its parent specs, so artifacts form a DAG, and
its :attr:`Spec.key` (a SHA-256 of its canonical JSON, including the parents'
keys and :data:`STORE_FORMAT_VERSION`) is the cache key.

:class:`ArtifactStore` maps a spec to its payload, building it (parents first)
with the builder registered for its ``kind`` when it is not on disk. Several
processes (pytest-xdist workers) may share one store:

- one file lock per spec: a spec is built by one process; the others wait on
  the lock and then load what it wrote;
- atomic writes (temporary file in the same directory, fsync, ``os.replace``,
  fsync of the directory): a crash or kill leaves either no artifact or a
  complete one;
- every file carries metadata and a SHA-256 of its payload; a truncated,
  corrupt or incompatible file raises an :class:`ArtifactWarning` and is
  rebuilt, never silently used.

Layout under ``root``::

    objects/<key[:2]>/<key>.pt     artifacts
    objects/<key[:2]>/.tmp-*.partial   writes in progress (or left by a crash)
    locks/<key>.lock               one lock file per spec
    store.log                      one JSON line per built/loaded/rebuilt event

Deadlock freedom: a process takes a spec's lock only after its parents are
present (``get`` builds the parents first, outside the child's lock), and a
builder may only ``get`` specs that are not its descendants; so no process
ever holds a parent's lock while waiting for a child's.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import io
import json
import logging
import math
import os
import random
import re
import secrets
import socket
import shutil
import struct
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import torch

from ._validation import InvalidParameterError, invalid

__all__ = ["STORE_FORMAT_VERSION", "ArtifactStore", "ArtifactWarning", "BuildContext", "LockTimeout", "Spec",
           "StoreError", "check_store_root"]

#: Bump when the on-disk format or the meaning of a spec changes; part of every key.
STORE_FORMAT_VERSION = 1

_logger = logging.getLogger(__name__)

_MAGIC = b"compress-store\n"
_HEADER_LENGTH = struct.Struct(">Q")
_MAX_HEADER_BYTES = 16 * 2**20
_CHUNK = 2**20
_TEMP_PREFIX = ".tmp-"
_TEMP_SUFFIX = ".partial"
# A temporary file this old cannot belong to a write still in progress.
_STALE_TEMP_SECONDS = 24 * 3600.0
_MISSING = "missing"
_HOST = re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname()) or "host"
_NO_DEFAULT = object()

Builder = Callable[["Spec", list[Any], "BuildContext"], Any]


class ArtifactWarning(UserWarning):
    """A stored artifact was unusable (truncated, corrupt, incompatible) and is rebuilt."""


class StoreError(OSError):
    """The store's directory cannot be used, or an artifact cannot be written; the message names both."""


class LockTimeout(StoreError):
    """Waited longer than the store's ``lock_timeout`` for an artifact another process is building."""


def check_store_root(path: str | os.PathLike[str], *, flag: str = "--artifact-dir",
                     min_free_bytes: int = 100 * 2**20) -> None:
    """Raise :class:`StoreError` unless ``path`` is (or can become) a writable directory with free space.

    Checked by doing, not by mode bits: a probe file is created and removed
    (root ignores mode bits; a read-only mount does not).
    """
    path = Path(path)

    def fail(problem: str) -> StoreError:
        return StoreError(f"The artifact store {flag} {path} is not usable: {problem}. Choose another {flag}.")

    if path.exists() and not path.is_dir():
        raise fail(f"{path} is a file, not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise fail(f"{existing} is a file, so {path} cannot be created")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise fail(f"{existing} is not writable ({exc.strerror or exc})") from None
    free = shutil.disk_usage(existing).free
    if free < min_free_bytes:
        raise fail(f"only {free / 2**20:.0f} MiB free on its file system (at least {min_free_bytes / 2**20:.0f} MiB needed)")


# --------------------------------------------------------------------------- specs


def _normalize_value(value: object, name: str, kind: str) -> object:
    """Return ``value`` with lists turned into tuples; reject what JSON cannot hold exactly."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise invalid(name, f"Spec {kind!r}", "a finite number", value)
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_normalize_value(v, name, kind) for v in value)
    if isinstance(value, Mapping):
        raise invalid(
            name,
            f"Spec {kind!r}",
            "a JSON scalar (str, int, float, bool, None) or a tuple/list of them, not a dict "
            "(give each entry its own parameter)",
            value,
        )
    raise invalid(
        name,
        f"Spec {kind!r}",
        "a JSON scalar (str, int, float, bool, None) or a tuple/list of them",
        value,
    )


def _jsonable(value: object) -> object:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _canonical_json(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _short(value: object, limit: int = 24) -> str:
    if isinstance(value, tuple):
        text = "(" + ", ".join(_short(v, limit) for v in value) + ")"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, eq=False)
class Spec:
    """Frozen, hashable description of an artifact; its :attr:`key` is the cache key.

    Parameters
    ----------
    kind : str
        Name of the builder that makes the artifact (``"train"``, ``"prune"``...).
    params : tuple of (str, value) pairs
        Parameters of the build. Values are JSON scalars (str, int, float, bool,
        None) or tuples of them; lists are converted to tuples; dicts are
        rejected. Pairs are sorted by name on construction.
    parents : tuple of Spec
        Specs whose payloads the builder receives, in this order.

    Notes
    -----
    Two specs are equal exactly when their keys are equal. ``1``, ``1.0`` and
    ``True`` are different parameter values (their JSON differs).

    Examples
    --------
    >>> base = Spec.make("train", arch="resnet18", seed=2, epochs=30)
    >>> pruned = Spec.make("prune", parents=(base,), method="global_l1", ratio=0.3)
    >>> pruned.param("ratio")
    0.3
    >>> [s.kind for s in pruned.ancestors()]
    ['train', 'prune']
    """

    kind: str
    params: tuple[tuple[str, object], ...] = ()
    parents: tuple[Spec, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise invalid("kind", "Spec", "a non-empty str", self.kind)
        if isinstance(self.params, Mapping) or not isinstance(self.params, (tuple, list)):
            raise invalid("params", f"Spec {self.kind!r}", "a tuple of (name, value) pairs", self.params)
        normalized: dict[str, object] = {}
        for pair in self.params:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[0], str)):
                raise invalid("params", f"Spec {self.kind!r}", "a tuple of (name, value) pairs", pair)
            name, value = pair
            if name in normalized:
                raise invalid("params", f"Spec {self.kind!r}", "pairs with distinct names", name)
            normalized[name] = _normalize_value(value, name, self.kind)
        parents = self.parents
        if isinstance(parents, Spec) or not isinstance(parents, (tuple, list)):
            raise invalid("parents", f"Spec {self.kind!r}", "a tuple of Spec", parents)
        for parent in parents:
            if not isinstance(parent, Spec):
                raise invalid("parents", f"Spec {self.kind!r}", "a tuple of Spec", parent)
        object.__setattr__(self, "params", tuple(sorted(normalized.items())))
        object.__setattr__(self, "parents", tuple(parents))

    @classmethod
    def make(cls, kind: str, *, parents: Iterable[Spec] = (), **params: object) -> Spec:
        """Build a spec from keyword parameters: ``Spec.make("train", seed=2, parents=(data,))``."""
        if isinstance(parents, Spec):
            raise invalid("parents", f"Spec {kind!r}", "a tuple of Spec", parents)
        return cls(kind, tuple(params.items()), tuple(parents))

    @functools.cached_property
    def key(self) -> str:
        """SHA-256 hex digest of the canonical JSON of kind, params, parent keys and format version."""
        document = {
            "format": STORE_FORMAT_VERSION,
            "kind": self.kind,
            "params": [[name, _jsonable(value)] for name, value in self.params],
            "parents": [parent.key for parent in self.parents],
        }
        return hashlib.sha256(_canonical_json(document).encode("ascii")).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Spec):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def param(self, name: str, default: object = _NO_DEFAULT) -> object:
        """Value of parameter ``name``; ``default`` if absent (``KeyError`` if no default is given)."""
        for key, value in self.params:
            if key == name:
                return value
        if default is _NO_DEFAULT:
            known = ", ".join(k for k, _ in self.params) or "none"
            raise KeyError(f"Spec {self.kind!r} has no parameter {name!r}; it has: {known}.")
        return default

    def as_dict(self) -> dict[str, object]:
        """JSON-able description, parents included recursively."""
        return {
            "kind": self.kind,
            "key": self.key,
            "params": {name: _jsonable(value) for name, value in self.params},
            "parents": [parent.as_dict() for parent in self.parents],
        }

    def describe(self, max_length: int = 80) -> str:
        """Short human-readable form, e.g. ``train(arch=resnet18, seed=2, …) <- data``."""
        head = f"{self.kind}("
        parts = [f"{name}={_short(value)}" for name, value in self.params]
        body = ""
        for i, part in enumerate(parts):
            candidate = part if not body else f"{body}, {part}"
            if len(head) + len(candidate) + 1 > max_length and i > 0:
                body += ", …"
                break
            body = candidate
        text = f"{head}{body})"
        if self.parents:
            text += " <- " + "+".join(parent.kind for parent in self.parents)
        return text

    def ancestors(self) -> list[Spec]:
        """Unique specs this one depends on, parents before children, ending with ``self``."""
        return _topological([self])

    def __repr__(self) -> str:
        return f"Spec<{self.key[:12]} {self.describe()}>"


def _topological(specs: Iterable[Spec]) -> list[Spec]:
    """All ancestors of ``specs`` (inclusive), deduplicated by key, parents first (DFS post-order)."""
    seen: set[str] = set()
    order: list[Spec] = []
    for root in specs:
        # Iterative DFS: deep fine-tune chains must not hit the recursion limit.
        stack: list[tuple[Spec, int]] = [(root, 0)]
        while stack:
            spec, index = stack.pop()
            if spec.key in seen:
                continue
            if index < len(spec.parents):
                stack.append((spec, index + 1))
                parent = spec.parents[index]
                if parent.key not in seen:
                    stack.append((parent, 0))
                continue
            seen.add(spec.key)
            order.append(spec)
    return order


def _depths(order: list[Spec]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for spec in order:  # parents come first
        depth[spec.key] = 1 + max((depth[p.key] for p in spec.parents), default=-1)
    return depth


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
        Store directory (created if missing).
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
        ``"waiting"`` (blocked on another process's lock) and ``"progress"``
        (from :meth:`BuildContext.report`).

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
        environment: Mapping | None = None,
        lock_timeout: float | None = None,
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
        self.root = Path(root)
        self.builders: dict[str, Builder] = dict(builders)
        self.memory_cache = bool(memory_cache)
        self.on_event = on_event
        self._objects = self.root / "objects"
        self._locks_dir = self.root / "locks"
        self._log_path = self.root / "store.log"
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._locks_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"The artifact store {self.root} cannot be created: {exc}.") from exc
        if environment is None:
            from .numerics import environment as current

            environment = current("cpu")
        self.environment = dict(environment)
        #: One line per distinct way in which loaded artifacts' build environments differ from this one.
        self.environment_notes: list[str] = []
        self._foreign: dict[tuple, int] = {}
        self._cache: dict[str, Any] = {}
        self._valid_files: dict[str, tuple[int, int, int, int]] = {}
        self._locks: dict[str, filelock.FileLock] = {}
        self._building: set[str] = set()
        self._checked_kinds: set[str] = set()
        self._stats = {"built": 0, "loaded": 0, "rebuilt": 0}
        self.lock_timeout = lock_timeout
        self.wait_report_every = float(wait_report_every)
        #: While this process waits on another's lock: {"spec", "waited_s", "holder": {pid, host, since}}.
        self.waiting: dict | None = None
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

    # ------------------------------------------------------------------ internals

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

    def _lock(self, spec: Spec) -> filelock.FileLock:
        # One lock object per key and store, so re-entry in this process cannot self-deadlock.
        lock = self._locks.get(spec.key)
        if lock is None:
            lock = self._locks[spec.key] = filelock.FileLock(str(self._locks_dir / f"{spec.key}.lock"))
        return lock

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
        lock = self._lock(spec)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            if mode == "try":
                return _SKIPPED
            self._wait_for(lock, spec)
        self._write_owner(spec)
        try:
            found = self._inspect(spec, load=want_payload)
            if found.reason is None:  # another process built it while we waited
                return found.payload
            if parents is None:
                parents = [self._get(p) for p in spec.parents]
            return self._build_locked(spec, parents, previous=found.reason)
        finally:
            self._owner_path(spec).unlink(missing_ok=True)
            lock.release()

    def _owner_path(self, spec: Spec) -> Path:
        return self._locks_dir / f"{spec.key}.owner"

    def _write_owner(self, spec: Spec) -> None:
        """Say who holds a spec's lock (pid, host, since), for processes that wait on it."""
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now(), "spec": spec.describe()}
        try:
            _write_atomic(self._owner_path(spec), [json.dumps(owner).encode("utf-8")])
        except OSError:
            pass  # informational only

    def lock_holder(self, spec: Spec) -> dict | None:
        """Who is building ``spec`` now (``{"pid", "host", "since", "spec"}``), or None if nobody says."""
        try:
            return json.loads(self._owner_path(spec).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _wait_for(self, lock: filelock.FileLock, spec: Spec) -> None:
        """Wait for another process's lock, saying every ``wait_report_every`` s what for and who holds it."""
        start = time.monotonic()
        while True:
            waited = time.monotonic() - start
            holder = self.lock_holder(spec)
            self.waiting = {"spec": spec.describe(), "waited_s": waited, "holder": holder}
            self._emit("waiting", spec, waited)
            if self.lock_timeout is not None and waited >= self.lock_timeout:
                self.waiting = None
                who = (f"pid {holder['pid']} on {holder['host']}, building since {holder['since']}" if holder
                       else "a process that left no owner record")
                raise LockTimeout(f"Gave up after {waited:.0f} s waiting for {spec.describe()} in the store "
                                  f"{self.root}: it is locked by {who}. If that process is gone, its lock is "
                                  f"released automatically; if it hangs, stop it (or raise --lock-timeout).")
            step = self.wait_report_every
            if self.lock_timeout is not None:
                step = max(0.05, min(step, self.lock_timeout - waited))
            try:
                lock.acquire(timeout=step)
                self.waiting = None
                return
            except filelock.Timeout:
                continue

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
        path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temps(path.parent, spec.key)
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
        try:
            _write_atomic(path, [_MAGIC, _HEADER_LENGTH.pack(len(header)), header, data])
        except OSError as exc:  # e.g. a full disk: one clear error; _write_atomic left no temporary file
            raise StoreError(f"Could not write artifact {spec.describe()} to the store {self.root}: {exc}.") from exc
        seconds = time.perf_counter() - start
        self._remember_valid(spec.key, path)
        if self.memory_cache:
            self._cache[spec.key] = payload
        self._stats[event] += 1
        self._record(event, spec, seconds)
        return payload

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
                reason, payload_bytes, header = _check_file(f, spec.key, keep_payload=load)
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
            self._note_environment(spec, header.get("environment"))
            if self.memory_cache:
                self._cache[spec.key] = payload
            self._stats["loaded"] += 1
            self._record("loaded", spec, time.perf_counter() - start)
        return _Inspection(None, payload)

    def _note_environment(self, spec: Spec, built_under: Mapping | None) -> None:
        """Count artifacts built under another environment; say so once per distinct difference."""
        from .numerics import differences

        diff = tuple(differences(built_under, self.environment))
        if not diff:
            return
        first = diff not in self._foreign
        self._foreign[diff] = self._foreign.get(diff, 0) + 1
        self.environment_notes = [f"{n} artifact{'s' if n != 1 else ''} loaded from {self.root} were built under "
                                  f"another environment ({'; '.join(d)}): same spec, possibly other bytes."
                                  for d, n in self._foreign.items()]
        if first:
            self._emit("environment", spec, 0.0)

    def _remember_valid(self, key: str, path: Path) -> None:
        try:
            self._valid_files[key] = _stat_id(path.stat())
        except OSError:
            self._valid_files.pop(key, None)

    def _remove_stale_temps(self, directory: Path, key: str) -> None:
        """Delete temporary files no live writer owns: ``key``'s own (we hold its lock), dead owners', very old ones.

        A temporary file names its writer's host and pid: on this host a pid
        that is gone means a killed writer. Age is judged on the file system's
        own clock (the mtime of a file touched now), never against this
        machine's clock, so a clock that runs ahead cannot delete a live
        writer's file. Once per store object the whole ``objects/`` tree is
        swept; afterwards only the directory being written to.
        """
        dirs = [directory]
        if not self._swept:
            self._swept = True
            try:
                dirs = [Path(e.path) for e in os.scandir(self._objects) if e.is_dir()]
            except OSError:
                pass
        now = _fs_now(self._objects)
        for d in dirs:
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for entry in entries:
                name = entry.name
                if not (name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX)):
                    continue
                try:
                    ours = name.startswith(f"{_TEMP_PREFIX}{key}-")
                    old = now is not None and now - entry.stat().st_mtime > _STALE_TEMP_SECONDS
                    if ours or old or _dead_writer(name):
                        os.unlink(entry.path)
                except OSError:
                    pass  # another process cleaned it up first

    def rebuild_log(self) -> int:
        """Append a ``built`` line to ``store.log`` for every valid artifact it does not mention; return how many.

        The log line is written after an artifact's rename, so a kill between
        the two leaves the log short; the artifacts' headers hold what the log
        needs (key, kind, spec, creation time).
        """
        logged = set()
        try:
            for line in self._log_path.read_text(encoding="utf-8").splitlines():
                try:
                    logged.add(json.loads(line)["key"])
                except (ValueError, KeyError, TypeError):
                    continue
        except FileNotFoundError:
            pass
        added = 0
        for path in sorted(self._objects.glob("*/*.pt")):
            if path.stem[:12] in logged:
                continue
            try:
                with open(path, "rb") as f:
                    reason, _, header = _check_file(f, path.stem, keep_payload=False)
            except OSError:
                continue
            if reason is not None:
                continue
            spec = header.get("spec") or {}
            line = {"time": header.get("created"), "pid": None, "worker": None, "event": "built",
                    "key": path.stem[:12], "kind": spec.get("kind"), "spec": f"(rebuilt from {path.name})",
                    "seconds": None}
            with open(self._log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
            added += 1
        return added

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
            "spec": spec.describe(),
            "seconds": round(seconds, 4),
        }
        try:
            # One write of one line in append mode: lines from concurrent processes do not interleave.
            with open(self._log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
        except OSError as exc:
            _logger.warning("could not write %s: %s", self._log_path, exc)
        _logger.debug("%s %s in %.2f s", event, spec.describe(), seconds)
        self._emit(event, spec, seconds)


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


def _check_file(f: io.BufferedReader, key: str, *, keep_payload: bool) -> tuple[str | None, bytes | None, dict]:
    """``(None, payload bytes or None, header)`` for a valid artifact of ``key``, else ``(reason, None, {})``."""
    magic = f.read(len(_MAGIC))
    if magic != _MAGIC:
        if len(magic) < len(_MAGIC):
            return "truncated (no header)", None, {}
        return "not a store artifact (bad magic)", None, {}
    raw_length = f.read(_HEADER_LENGTH.size)
    if len(raw_length) < _HEADER_LENGTH.size:
        return "truncated header", None, {}
    (length,) = _HEADER_LENGTH.unpack(raw_length)
    if length > _MAX_HEADER_BYTES:
        return f"corrupt header (length {length})", None, {}
    raw_header = f.read(length)
    if len(raw_header) < length:
        return "truncated header", None, {}
    try:
        header = json.loads(raw_header.decode("utf-8"))
        version = header["format_version"]
        stored_key = header["key"]
        expected_sha = header["payload_sha256"]
        expected_bytes = int(header["payload_bytes"])
    except (ValueError, KeyError, TypeError) as exc:
        return f"corrupt header ({type(exc).__name__}: {exc})", None, {}
    if version != STORE_FORMAT_VERSION:
        return f"format version {version!r}, this store reads version {STORE_FORMAT_VERSION}", None, {}
    if stored_key != key:
        return f"key mismatch: file holds {str(stored_key)[:12]}…, expected {key[:12]}…", None, {}
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    while chunk := f.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if keep_payload:
            chunks.append(chunk)
    if size < expected_bytes:
        return f"truncated payload ({size} of {expected_bytes} bytes)", None, {}
    if size > expected_bytes:
        return f"trailing bytes after payload ({size} bytes, expected {expected_bytes})", None, {}
    if digest.hexdigest() != expected_sha:
        return "checksum mismatch", None, {}
    return None, (b"".join(chunks) if keep_payload else None), header


def _fs_now(directory: Path) -> float | None:
    """The file system's current time: the mtime of a probe file touched now (None if it cannot be written)."""
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".clock-")
        os.close(fd)
        try:
            return os.stat(probe).st_mtime
        finally:
            os.unlink(probe)
    except OSError:
        return None


def _dead_writer(name: str) -> bool:
    """Whether a temporary file's name says it was written by a process of this host that no longer exists."""
    parts = name[len(_TEMP_PREFIX):-len(_TEMP_SUFFIX)].split("-")
    if len(parts) < 4 or parts[-3] != _HOST or not parts[-2].isdigit():
        return False  # old-style name, or another host's writer: only the age rule applies
    try:
        os.kill(int(parts[-2]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open directories; os.replace is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, parts: list[bytes]) -> None:
    """Write ``parts`` to ``path`` so that readers see no file or the whole file, even after a crash."""
    directory = path.parent
    temp = directory / f"{_TEMP_PREFIX}{path.stem}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{_TEMP_SUFFIX}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)

