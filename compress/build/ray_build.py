"""Build a spec DAG on a Ray cluster: one task per artifact, parents passed as object references.

Every artifact is a pure function of its spec and its parents, so the DAG is
what needs distributing and Ray already knows how: each artifact still to
build becomes a task whose arguments are its parents' tasks, and Ray runs
independent branches anywhere in the cluster. Which ready task starts next is
decided here (:class:`_Schedule`, the longest chain of estimated work first,
one task per slot in flight): Ray starts queued tasks in arrival order, and
submitting the whole DAG at once left the deepest chains for the end. Each task
writes into the shared store through :class:`compress.store.artifacts.ArtifactStore`
(lock per spec, atomic rename, checksums), so a killed task leaves no partial
artifact, a re-run builds only what is missing, and a task that finds its
artifact already there (another run built it) just returns.

What the store needs from the file system all tasks see: atomic ``rename``
within a directory and working ``fcntl`` locks (local disks, NFSv4 with
locking, Lustre and GPFS have both; some FUSE mounts do not). Check a mount
with ``python -m compress.build.ray_build --check-store DIR``.

Device: a task asks Ray for a GPU only when the cluster has GPUs and the
run's device is not ``cpu`` (a task asking for a GPU on a CPU-only cluster
waits forever), and uses CUDA only when Ray assigned it one
(``ray.get_gpu_ids()``), never because ``torch.cuda.is_available()`` says a
GPU exists on its node.

Install with ``pip install -e ".[ray]"``; nothing here imports Ray until a
build is asked for.
"""
from __future__ import annotations

import heapq
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from analysis._validation import invalid

import compress.runtime.progress as progress
from compress.store.spec import Spec, _topological

__all__ = ["EXECUTORS", "RayBuildResult", "build_with_ray", "require_ray", "check_store_filesystem"]

#: Where builds run: ``local`` (this process and its xdist workers) or ``ray`` (one Ray task per artifact).
EXECUTORS = ("local", "ray")
#: One store per (root, device, data) in each Ray worker process: workers are reused, so datasets stay loaded.
_STORES: dict = {}


def require_ray():
    """The ``ray`` module, or an error that says how to get it."""
    try:
        import ray
    except ImportError:
        raise ImportError('Ray is not installed: pip install -e ".[ray]" (the optional extra), then run again') from None
    return ray


@dataclass
class RayBuildResult:
    """What a Ray build did: built and failed specs (by key), and the specs skipped because a parent failed."""

    built: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key -> error (the task's own failure)
    skipped: dict[str, str] = field(default_factory=dict)  # key -> the failed ancestor's key
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def _store_for(root: str, device: str, data_root: str | None, download: bool, builders: Callable | None):
    from compress.build.kinds import make_builders
    from compress.build.workspace import Workspace
    from compress.store.artifacts import ArtifactStore

    key = (root, device, data_root, download, builders)
    if key not in _STORES:
        workspace = Workspace(device=device, data_root=data_root, download=download)
        _STORES[key] = ArtifactStore(root, (builders or make_builders)(workspace))
    return _STORES[key]


def _build_task(root: str, spec: Spec, device: str, data_root: str | None, download: bool,
                builders: Callable | None, *parents_done: str) -> tuple[str, float]:
    """One artifact, in a Ray worker (its parents are on disk: Ray ran their tasks first)."""
    import compress  # noqa: F401  (pins the CPU numerics before torch initialises in this worker)

    ray = require_ray()
    assigned = ray.get_gpu_ids()
    use = "cuda" if assigned and device != "cpu" else "cpu"  # what Ray gave this task, not what the node has
    store = _store_for(root, use, data_root, download, builders)
    t0 = time.time()
    store.build_all([spec])
    return spec.key, time.time() - t0


def build_with_ray(specs: Iterable[Spec], artifact_dir: str | os.PathLike[str], *, device: str = "cpu",
                   data_root: str | None = None, download: bool = False, address: str | None = None,
                   builders: Callable | None = None, max_retries: int = 3,
                   estimate: Callable[[list[Spec]], dict[str, float]] | None = None) -> RayBuildResult:
    """Build every artifact ``specs`` need (ancestors included) that the store lacks, one Ray task each.

    Connects to ``address`` (``ray.init(address=...)``) unless Ray is already initialised; without an
    address it starts a local cluster on this machine. ``builders(workspace)`` replaces the kind table
    (tests inject faults with it). A failed task is reported by spec; everything not below it still
    builds. ``max_retries``: Ray's retries of a task whose worker died (a kill mid-build leaves no
    partial artifact, so a retry starts clean). ``estimate(todo)``: estimated seconds per spec key
    (:func:`compress.build.estimate.estimate_builds`); the time left is then the estimated work left at the
    rate measured so far, else the count left at the rate so far.
    """
    ray = require_ray()
    if not isinstance(device, str) or not (device in ("cpu", "auto") or device.split(":")[0] == "cuda"):
        raise invalid("device", "build_with_ray", "'cpu', 'auto', 'cuda' or 'cuda:N'", device)
    from compress.store.artifacts import ArtifactStore

    root = str(Path(artifact_dir).resolve())
    plan = ArtifactStore(root, {}).plan(list(specs))
    todo = [s for s, present in plan if not present]
    result = RayBuildResult()
    if not todo:
        return result
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0) > 0 and device != "cpu"
    task = ray.remote(_build_task).options(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=max_retries)
    cost = estimate(todo) if estimate else {}
    sched = _Schedule(todo, cost)
    slots = max(1, int(ray.cluster_resources().get("GPU" if gpus else "CPU", 1)))
    refs: dict[str, object] = {}
    spec_of: dict[object, Spec] = {}
    t0, total, kinds_total, kinds_done = time.time(), len(todo), dict(Counter(s.kind for s in todo)), {}
    work, work_done = sum(cost.values()), 0.0
    progress.emit(f"ray: building {total} artifacts ({_kinds(kinds_total)}) on "
                  f"{int(ray.cluster_resources().get('CPU', 0))} CPUs" + (" and GPUs" if gpus else "")
                  + (f", estimated ~{progress.format_seconds(work)} of build time" if work else ""))
    errors: dict[str, str] = {}
    last, finished, pending = 0.0, 0, []
    while True:
        # At most one task per slot in flight, the ready one heading the longest chain of work first: Ray
        # starts queued tasks in arrival order, so the order is kept here (critical path first).
        while len(pending) < slots and sched.ready:
            spec = sched.pop()
            ref = task.remote(root, spec, device, data_root, download, builders,
                              *[refs[p.key] for p in spec.parents if p.key in refs])
            refs[spec.key], spec_of[ref] = ref, spec
            pending.append(ref)
        if not pending:
            break
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            spec = spec_of[ref]
            try:
                ray.get(ref)
                result.built.append(spec.key)
                sched.finished(spec)
            except Exception as e:  # noqa: BLE001 - reported by spec below; the rest of the DAG goes on
                errors[spec.key] = _error_text(e)
            kinds_done[spec.kind] = kinds_done.get(spec.kind, 0) + 1
            work_done += cost.get(spec.key, 0.0)
            finished += 1
        if time.time() - last > 5 or not (pending or sched.ready):
            elapsed = time.time() - t0
            if work and work_done:
                left = elapsed / work_done * max(0.0, work - work_done)
            else:
                left = elapsed / finished * (total - finished) if finished else 0.0
            progress.emit(f"ray: {finished}/{total} done ({_kinds(kinds_total, kinds_done)}), "
                          f"{progress.format_seconds(elapsed)} elapsed, ~{progress.format_seconds(left)} left"
                          + (f", {len(errors)} failed" if errors else ""))
            last = time.time()
    result.failed.update(errors)
    by_key = {s.key: s for s in todo}
    for spec in todo:  # never started: below a failed task
        if spec.key not in refs:
            failed_parent = next(a.key for a in _ancestors(spec) if a.key in errors)
            result.skipped[spec.key] = _root_failure(failed_parent, by_key, errors)
    result.seconds = time.time() - t0
    return result


class _Schedule:
    """Which artifact to start next: of those whose parents are built, the one heading the longest chain.

    A spec's rank is its estimated build time plus the largest rank among the
    specs that need it (the "upward rank" of list scheduling): starting the
    highest-ranked ready spec first keeps long serial chains (a GC pruning
    schedule with its rewinds and mixed descendants) from being left for the
    end, when there is too little else to run beside them. Specs without an
    estimate count as the median estimate (1 s when there is none).
    """

    def __init__(self, todo: list[Spec], cost: dict[str, float]):
        keys = {s.key for s in todo}
        known = sorted(v for v in cost.values() if v > 0)
        default = known[len(known) // 2] if known else 1.0
        self._children: dict[str, list[Spec]] = {s.key: [] for s in todo}
        self._waiting: dict[str, int] = {}
        for s in todo:
            inside = [p for p in s.parents if p.key in keys]
            self._waiting[s.key] = len({p.key for p in inside})
            for p in {p.key: p for p in inside}.values():
                self._children[p.key].append(s)
        self.rank: dict[str, float] = {}
        for s in reversed(_topological(todo)):  # children before parents
            if s.key in keys:
                below = max((self.rank[c.key] for c in self._children[s.key]), default=0.0)
                self.rank[s.key] = cost.get(s.key, default) or default
                self.rank[s.key] += below
        self._order = {s.key: i for i, s in enumerate(_topological(todo))}  # ties: the DAG's own order
        self._heap: list = []
        for s in todo:
            if self._waiting[s.key] == 0:
                self._push(s)

    def _push(self, spec: Spec) -> None:
        heapq.heappush(self._heap, (-self.rank[spec.key], self._order[spec.key], spec.key, spec))

    @property
    def ready(self) -> bool:
        return bool(self._heap)

    def pop(self) -> Spec:
        return heapq.heappop(self._heap)[-1]

    def finished(self, spec: Spec) -> None:
        """``spec`` was built: its children whose parents are now all built become ready."""
        for child in self._children[spec.key]:
            self._waiting[child.key] -= 1
            if self._waiting[child.key] == 0:
                self._push(child)


def _kinds(total: dict[str, int], done: dict[str, int] | None = None) -> str:
    return ", ".join(f"{k} {done.get(k, 0)}/{n}" if done is not None else f"{k} {n}" for k, n in total.items())


def _ancestors(spec: Spec) -> list[Spec]:
    return spec.ancestors()[:-1]  # without the spec itself


def _root_failure(key: str, by_key: dict[str, Spec], errors: dict[str, str]) -> str:
    """The failed spec at the top of the chain that made ``key`` fail."""
    while True:
        up = next((a.key for a in _ancestors(by_key[key]) if a.key in errors), None)
        if up is None:
            return key
        key = up


def _error_text(e: Exception) -> str:
    cause = getattr(e, "cause", None)
    return f"{type(cause or e).__name__}: {cause or e}".splitlines()[0][:500]


def check_store_filesystem(directory: str | os.PathLike[str]) -> list[str]:
    """Problems with ``directory`` as a shared store: atomic rename and exclusive file locks (empty: fine)."""
    import filelock

    d = Path(directory)
    problems = []
    try:
        d.mkdir(parents=True, exist_ok=True)
        a, b = d / ".check-rename-a", d / ".check-rename-b"
        a.write_bytes(b"a")
        b.write_bytes(b"b")
        os.replace(a, b)
        if b.read_bytes() != b"a" or a.exists():
            problems.append(f"{d}: os.replace did not replace the target atomically")
        b.unlink(missing_ok=True)
    except OSError as e:
        problems.append(f"{d}: rename check failed: {e}")
    lock_path = d / ".check-lock"
    try:
        first, second = filelock.FileLock(lock_path), filelock.FileLock(lock_path, is_singleton=False)
        with first:
            try:
                second.acquire(timeout=0.2)
                second.release()
                problems.append(f"{d}: a second lock on the same file was granted (locks are not exclusive here)")
            except filelock.Timeout:
                pass
    except OSError as e:
        problems.append(f"{d}: lock check failed: {e}")
    finally:
        lock_path.unlink(missing_ok=True)
    return problems


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m compress.build.ray_build",
                                 description="Check that a directory can hold a store shared by Ray tasks.")
    ap.add_argument("--check-store", required=True, metavar="DIR")
    args = ap.parse_args(argv)
    problems = check_store_filesystem(args.check_store)
    for p in problems:
        print(p)
    print("ok: atomic rename and exclusive locks work in " + args.check_store if not problems else "not usable")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
