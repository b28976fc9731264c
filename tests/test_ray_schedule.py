"""The Ray driver's order of starting tasks (compress.build.ray_build._Schedule); no Ray needed.

Ray starts queued tasks in arrival order, so the driver keeps one task per slot
in flight and picks, among the specs whose parents are built, the one heading
the longest chain of estimated work.
"""
from __future__ import annotations

from compress.build.ray_build import _Schedule
from compress.store.spec import Spec


def _chain(name: str, n: int, root: Spec) -> list[Spec]:
    out, parent = [], root
    for i in range(n):
        parent = Spec.make("step", parents=(parent,), chain=name, i=i)
        out.append(parent)
    return out


def test_the_longest_chain_starts_first_and_children_wait_for_their_parents():
    root = Spec.make("train", seed=0)
    long = _chain("long", 4, root)  # 4 serial steps of 10 s
    leaves = [Spec.make("eval", parents=(root,), i=i) for i in range(6)]  # 6 independent 12 s jobs
    todo = [root, *long, *leaves]
    cost = {s.key: 10.0 for s in long} | {s.key: 12.0 for s in leaves} | {root.key: 1.0}
    sched = _Schedule(todo, cost)
    assert sched.rank[root.key] == 41.0 and sched.rank[long[0].key] == 40.0
    assert sched.pop() == root and not sched.ready  # nothing else is ready before the root is built
    sched.finished(root)
    assert sched.pop() == long[0]  # rank 40 beats every 12 s leaf
    assert {sched.pop() for _ in range(6)} == set(leaves) and not sched.ready  # long[1] waits for long[0]
    sched.finished(long[0])
    assert sched.pop() == long[1] and not sched.ready


def test_specs_without_an_estimate_count_as_the_median_and_present_parents_are_not_waited_for():
    present = Spec.make("train", seed=1)  # already in the store: not in todo
    a, b = Spec.make("prune", parents=(present,), r=0.5), Spec.make("prune", parents=(present,), r=0.9)
    c = Spec.make("eval", parents=(b,))
    sched = _Schedule([a, b, c], {a.key: 4.0, b.key: 2.0})  # c has no estimate: the median, 4 s
    assert sched.rank == {a.key: 4.0, b.key: 6.0, c.key: 4.0}
    assert [sched.pop(), sched.pop()] == [b, a] and not sched.ready
    sched.finished(b)
    assert sched.pop() == c
