"""Specs: frozen, hashable descriptions of artifacts, and their cache keys.

A :class:`Spec` is a frozen description of an artifact ("ResNet-18 on digits,
seed 2, 30 epochs"); it names its parent specs, so artifacts form a DAG, and
its :attr:`Spec.key` (a SHA-256 of its canonical JSON, including the parents'
keys and :data:`STORE_FORMAT_VERSION`) is the cache key of
:class:`compress.store.artifacts.ArtifactStore`, which re-exports both names.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from analysis._validation import invalid

__all__ = ["STORE_FORMAT_VERSION", "Spec"]

#: Bump when the on-disk format or the meaning of a spec changes; part of every key.
#: 2: portable CPU builds no longer use NNPACK (:mod:`compress.runtime.numerics`), so a spec's bytes changed and
#: no artifact built before may be reused.
STORE_FORMAT_VERSION = 2

_NO_DEFAULT = object()


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


def model_root(spec: Spec) -> Spec | None:
    """The nearest spec along first parents that makes a model from data (it names the ``dataset``), or None."""
    node = spec
    while "dataset" not in dict(node.params):
        if not node.parents:
            return None
        node = node.parents[0]
    return node


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


def _spec_from_dict(document: dict) -> Spec:
    """Inverse of :meth:`Spec.as_dict` (iterative: deep chains must not hit the recursion limit)."""
    built: dict[int, Spec] = {}
    stack = [(document, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            built[id(node)] = Spec(
                node["kind"], tuple(node["params"].items()), tuple(built[id(p)] for p in node["parents"])
            )
        else:
            stack.append((node, True))
            stack.extend((p, False) for p in node["parents"])
    return built[id(document)]
