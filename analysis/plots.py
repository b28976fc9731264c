"""Figures for the claim-status report, drawn from already-computed results.

Computing and drawing are apart (rliable's ``plot_utils``): every function
here takes plain numbers (coordinates, deviations, per-seed values, matrices)
and writes one PNG. Figures are built with :class:`matplotlib.figure.Figure`
and its Agg canvas directly, never through ``pyplot``: nothing is registered
in pyplot's global figure list, no GUI backend is touched, and a figure is
released as soon as the function returns, so these are safe in xdist workers
and headless CI. PNGs are written at 100 dpi to keep the self-contained HTML
report small.

One module though long: one function per figure, sharing the colours, markers
and Agg-canvas helpers.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis._validation import invalid

__all__ = [
    "DPI",
    "VERDICT_COLOURS",
    "plot_accuracy_deviation",
    "plot_forest",
    "plot_heatmap",
    "plot_hybrid_tree",
    "plot_landscape",
    "plot_trend",
]

DPI = 100

#: Verdict -> colour, shared by the forest plots and the HTML report's badges.
VERDICT_COLOURS = {"supported": "#1a7f37", "refuted": "#cf222e", "inconclusive": "#9a6700", "error": "#6e7781"}

# Group kind (leading word of a group label, case-insensitive) -> marker and
# colour map; groups of one kind get shades of that map in their natural order
# ("pruned 10%" before "pruned 70%").
_KINDS: dict[str, tuple[str, str]] = {
    "base": ("*", "Greys"),
    "teacher": ("*", "Greys"),
    "independent": ("o", "Greys"),
    "student": ("^", "Blues"),
    "same-init": ("v", "Purples"),
    "quantized": ("s", "Greens"),
    "pruned": ("D", "Oranges"),
}
_OTHER = ("P", "copper")


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No timestamp or software tag: the same figure gives the same bytes.
    figure.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    figure.clear()
    return path


def _natural_key(text: str) -> list[object]:
    return [float(part) if re.fullmatch(r"\d+(?:\.\d+)?", part) else part.lower()
            for part in re.split(r"(\d+(?:\.\d+)?)", text)]


def _kind(group: str) -> str:
    lowered = group.strip().lower()
    for kind in _KINDS:
        if lowered.startswith(kind):
            return kind
    return "other"


def _check_path(path: object, owner: str) -> None:
    if not isinstance(path, (str, Path)) or str(path) == "":
        raise invalid("path", owner, "a file path (str or Path)", path)


def plot_landscape(
    coords: Mapping[str, Sequence[float]],
    groups: Mapping[str, str],
    path: str | Path,
    title: str,
) -> Path:
    """Draw a functional landscape: one labelled point per model.

    Parameters
    ----------
    coords : mapping of str to (x, y)
        Model name to its 2-D position (e.g. from
        :func:`analysis.landscape.functional_landscape`).
    groups : mapping of str to str
        Model name to its group label, e.g. ``"base"``, ``"independent"``,
        ``"student α=0.5"``, ``"same-init control"``, ``"quantized 8-bit"``,
        ``"pruned 30%"``. The leading word picks the marker and colour family;
        every distinct label gets its own legend entry. Must cover every model
        in ``coords``.
    path : str or Path
        Where to write the PNG (parent folders are created).
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    owner = "plot_landscape"
    _check_path(path, owner)
    if not isinstance(coords, Mapping) or len(coords) == 0:
        raise invalid("coords", owner, "a non-empty mapping of model name to (x, y)", coords)
    missing = [name for name in coords if name not in groups]
    if missing:
        raise invalid("groups", owner, "a group label for every model in coords", f"no label for {missing}")
    points = {}
    for name, xy in coords.items():
        xy = np.asarray(xy, dtype=float)
        if xy.shape != (2,) or not np.all(np.isfinite(xy)):
            raise invalid(f"coords[{name!r}]", owner, "a finite (x, y) pair", coords[name])
        points[name] = xy

    labels = sorted({groups[name] for name in coords}, key=_natural_key)
    by_kind: dict[str, list[str]] = {}
    for label in labels:
        by_kind.setdefault(_kind(label), []).append(label)
    style: dict[str, tuple[str, object, float]] = {}
    from matplotlib import colormaps

    for kind, kind_labels in by_kind.items():
        marker, cmap_name = _KINDS.get(kind, _OTHER)
        cmap = colormaps[cmap_name]
        for i, label in enumerate(kind_labels):
            if kind in ("base", "teacher"):
                colour, size = "black", 260.0
            elif kind == "independent":
                colour, size = "0.55", 70.0
            else:
                shade = 0.45 + 0.5 * (i + 1) / (len(kind_labels) + 1)
                colour, size = cmap(shade), 70.0
            style[label] = (marker, colour, size)

    figure = _new_figure(7.0, 5.5)
    axes = figure.add_subplot()
    for label in labels:
        names = [name for name in coords if groups[name] == label]
        xy = np.array([points[name] for name in names])
        marker, colour, size = style[label]
        axes.scatter(xy[:, 0], xy[:, 1], marker=marker, color=colour, s=size,
                     edgecolors="black", linewidths=0.5, label=label, zorder=3)
        for name, (x, y) in zip(names, xy):
            axes.annotate(name, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
    axes.set_title(title)
    axes.set_xlabel("t-SNE 1")
    axes.set_ylabel("t-SNE 2")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best", framealpha=0.8)
    return _save(figure, path)


def plot_accuracy_deviation(
    deviations: Mapping[str, object],
    path: str | Path,
    title: str,
    *,
    paper: Mapping[str, float | None] | None = None,
    ylabel: str = "accuracy deviation from base (pp)",
) -> Path:
    """Bar chart of accuracy deviation from the base model, ours beside the paper's.

    Parameters
    ----------
    deviations : mapping of str to float or array of shape (n_seeds,)
        Condition (e.g. ``"α=0.1"``, ``"8-bit"``, ``"pruned 30%"``) to our
        deviation in percentage points, one value per seed. Bars show the
        mean, dots the seeds.
    path : str or Path
        Where to write the PNG.
    title : str
        Figure title.
    paper : mapping of str to float or None, optional
        The paper's deviation per condition (as in its Tables 3-5), drawn as
        a red cross; conditions without a paper value are left out.
    ylabel : str
        Y-axis label.

    Returns
    -------
    Path
        ``path``.
    """
    owner = "plot_accuracy_deviation"
    _check_path(path, owner)
    if not isinstance(deviations, Mapping) or len(deviations) == 0:
        raise invalid("deviations", owner, "a non-empty mapping of condition to values", deviations)
    conditions = list(deviations)
    values = []
    for condition in conditions:
        array = np.atleast_1d(np.asarray(deviations[condition], dtype=float))
        if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
            raise invalid(f"deviations[{condition!r}]", owner, "a finite number or 1-D array", deviations[condition])
        values.append(array)
    paper = dict(paper or {})

    figure = _new_figure(max(5.0, 0.8 * len(conditions) + 2.0), 4.0)
    axes = figure.add_subplot()
    x = np.arange(len(conditions))
    means = np.array([v.mean() for v in values])
    axes.bar(x, means, width=0.6, color="#8fb3d9", edgecolor="black", linewidth=0.5, label="ours (mean)")
    for i, v in enumerate(values):
        jitter = np.linspace(-0.12, 0.12, v.size) if v.size > 1 else np.zeros(1)
        axes.scatter(x[i] + jitter, v, color="#1f4e79", s=14, zorder=3,
                     label="ours (per seed)" if i == 0 else None)
    paper_x = [i for i, c in enumerate(conditions) if paper.get(c) is not None]
    if paper_x:
        axes.scatter(paper_x, [paper[conditions[i]] for i in paper_x], marker="x", color="#c0392b",
                     s=60, linewidths=2, zorder=4, label="paper")
    axes.axhline(0.0, color="black", linewidth=0.8)
    crowded = len(conditions) > 6
    axes.set_xticks(x, conditions, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def plot_trend(
    levels: Sequence[float],
    values_by_series: Mapping[str, object],
    path: str | Path,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Path:
    """Line per series over levels: the mean across seeds and every seed's point.

    Parameters
    ----------
    levels : sequence of float, length n_levels
        X positions (e.g. pruning ratios).
    values_by_series : mapping of str to array of shape (n_seeds, n_levels)
        Per-seed values; a 1-D array counts as one seed.
    path : str or Path
        Where to write the PNG.
    title, xlabel, ylabel : str
        Labels.

    Returns
    -------
    Path
        ``path``.
    """
    owner = "plot_trend"
    _check_path(path, owner)
    levels = np.asarray(levels, dtype=float)
    if levels.ndim != 1 or levels.size == 0 or not np.all(np.isfinite(levels)):
        raise invalid("levels", owner, "a non-empty 1-D sequence of finite numbers", levels.tolist())
    if not isinstance(values_by_series, Mapping) or len(values_by_series) == 0:
        raise invalid("values_by_series", owner, "a non-empty mapping of series to (n_seeds, n_levels) arrays",
                      values_by_series)
    series = {}
    for name, values in values_by_series.items():
        array = np.asarray(values, dtype=float)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != levels.size:
            raise invalid(f"values_by_series[{name!r}]", owner, f"an array of shape (n_seeds, {levels.size})",
                          f"shape {array.shape}")
        series[name] = array

    figure = _new_figure(6.0, 4.0)
    axes = figure.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(series))]
    for colour, (name, array) in zip(colours, series.items()):
        present = ~np.isnan(array)
        mean = np.where(present.any(0), np.nansum(array, axis=0) / np.maximum(present.sum(0), 1), np.nan)
        axes.plot(levels, mean, color=colour, marker="o", label=name, zorder=3)
        for row in array:
            axes.scatter(levels, row, color=colour, alpha=0.4, s=12, zorder=2)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def _format_cell(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def plot_heatmap(
    matrix: object,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | Path,
    title: str,
    annotate: bool = True,
    paper: object | None = None,
) -> Path:
    """Heatmap of a matrix (e.g. CKA between layers), beside the paper's when given.

    Parameters
    ----------
    matrix : array of shape (n_rows, n_cols)
        Our values; NaN cells are blank.
    row_labels, col_labels : sequence of str
        Tick labels, lengths ``n_rows`` and ``n_cols``.
    path : str or Path
        Where to write the PNG.
    title : str
        Figure title.
    annotate : bool, default True
        Write each cell's value in it.
    paper : array of shape (n_rows, n_cols), optional
        The paper's values (NaN where it gives none), drawn on the right with
        the same colour scale.

    Returns
    -------
    Path
        ``path``.
    """
    owner = "plot_heatmap"
    _check_path(path, owner)
    ours = np.asarray(matrix, dtype=float)
    if ours.ndim != 2 or ours.size == 0:
        raise invalid("matrix", owner, "a non-empty 2-D array", f"shape {ours.shape}")
    if len(row_labels) != ours.shape[0] or len(col_labels) != ours.shape[1]:
        raise invalid("row_labels", owner, f"{ours.shape[0]} row and {ours.shape[1]} column labels",
                      f"{len(row_labels)} and {len(col_labels)}")
    panels = [("ours", ours)]
    if paper is not None:
        theirs = np.asarray(paper, dtype=float)
        if theirs.shape != ours.shape:
            raise invalid("paper", owner, f"an array of shape {ours.shape}", f"shape {theirs.shape}")
        panels.append(("paper", theirs))
    finite = np.concatenate([p[np.isfinite(p)] for _, p in panels])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5

    n_rows, n_cols = ours.shape
    width = min(14.0, (0.55 * n_cols + 2.0) * len(panels) + 1.0)
    height = min(10.0, 0.45 * n_rows + 2.0)
    figure = _new_figure(width, height)
    axes_list = figure.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for axes, (name, values) in zip(axes_list, panels):
        image = axes.imshow(np.ma.masked_invalid(values), vmin=vmin, vmax=vmax, cmap="viridis", aspect="auto")
        axes.set_xticks(np.arange(n_cols), list(col_labels), rotation=45 if n_cols > 4 else 0,
                        ha="right" if n_cols > 4 else "center", fontsize=8)
        axes.set_yticks(np.arange(n_rows), list(row_labels), fontsize=8)
        if len(panels) > 1:
            axes.set_title(name)
        if annotate:
            middle = (vmin + vmax) / 2
            for i in range(n_rows):
                for j in range(n_cols):
                    if np.isfinite(values[i, j]):
                        axes.text(j, i, _format_cell(values[i, j]), ha="center", va="center", fontsize=7,
                                  color="black" if values[i, j] > middle else "white")
    figure.colorbar(image, ax=list(axes_list), shrink=0.8)
    figure.suptitle(title)
    return _save(figure, path)


def plot_hybrid_tree(
    pruned: Mapping[float, float],
    distilled: Mapping[float, float],
    branches: Mapping[float, Mapping[float, float]],
    path: str | Path,
    title: str,
    *,
    ylabel: str = "test accuracy (%)",
) -> Path:
    """The hybrid compression tree as the GC thesis draws it.

    Accuracy against retained fraction: the pruning path (grey, dashed), the
    distillation path (blue) and, from each distilled checkpoint, its branch of
    further pruning (red), each starting at its distilled model.

    Parameters
    ----------
    pruned, distilled : mapping retained fraction → accuracy
    branches : mapping source fraction → (mapping lower fraction → accuracy)
    """
    owner = "plot_hybrid_tree"
    _check_path(path, owner)
    if not distilled:
        raise invalid("distilled", owner, "a non-empty mapping of retained fraction to accuracy", distilled)
    figure = _new_figure(6.5, 4.2)
    axes = figure.add_subplot()
    if pruned:
        xs = sorted(pruned)
        axes.plot(xs, [pruned[x] for x in xs], color="0.5", ls="--", marker="s", label="pruned (iterative)", zorder=2)
    xs = sorted(distilled)
    axes.plot(xs, [distilled[x] for x in xs], color="C0", marker="o", lw=2, label="distilled (rewound)", zorder=4)
    first = True
    for src, branch in sorted(branches.items()):
        if not branch or src not in distilled:
            continue
        bx = [src, *sorted(branch, reverse=True)]
        by = [distilled[src], *[branch[x] for x in bx[1:]]]
        axes.plot(bx, by, color="C3", marker=".", alpha=0.8, label="mixed: distilled, then pruned" if first else None, zorder=3)
        first = False
    axes.invert_xaxis()
    axes.set_xlabel("retained fraction of parameters (→ more compression)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def _forest_lines(row: Mapping) -> tuple[float, ...]:
    """Where an instance is judged: its margin's finite bounds if it has one, else its reference."""
    margin = row.get("margin")
    if margin is not None:
        bounds = tuple(float(b) for b in margin if b is not None)
        if bounds:
            return bounds
    reference = row.get("reference")
    return () if reference is None else (float(reference),)


def _check_forest_row(i: int, row: object, owner: str) -> dict:
    if not isinstance(row, Mapping):
        raise invalid(f"rows[{i}]", owner, "a mapping with 'label', 'effect', 'ci', 'verdict' and 'scale'", row)
    label, effect, ci = row.get("label"), row.get("effect"), row.get("ci")
    if not isinstance(label, str) or not label:
        raise invalid(f"rows[{i}]['label']", owner, "a non-empty str", label)
    if isinstance(effect, bool) or not isinstance(effect, (int, float)) or not math.isfinite(effect):
        raise invalid(f"rows[{i}]['effect']", owner, "a finite number", effect)
    bounds = np.asarray(ci if ci is not None else [], dtype=float)
    if bounds.shape != (2,) or not np.all(np.isfinite(bounds)) or bounds[0] > bounds[1]:
        raise invalid(f"rows[{i}]['ci']", owner, "a finite [low, high] pair with low <= high", ci)
    if row.get("verdict") not in VERDICT_COLOURS:
        raise invalid(f"rows[{i}]['verdict']", owner, "one of " + ", ".join(map(repr, VERDICT_COLOURS)),
                      row.get("verdict"))
    if not isinstance(row.get("scale", ""), str):
        raise invalid(f"rows[{i}]['scale']", owner, "a str", row.get("scale"))
    return {"label": label, "effect": float(effect), "ci": (float(bounds[0]), float(bounds[1])),
            "verdict": row["verdict"], "asserted": bool(row.get("asserted", True)), "scale": row.get("scale") or "",
            "effect_name": str(row.get("effect_name") or ""), "lines": _forest_lines(row)}


def plot_forest(rows: Sequence[Mapping], path: str | Path, title: str) -> Path:
    """Forest plot of one claim: each instance's effect and interval against where it is judged.

    One row per instance, top to bottom in the given order: the interval as a
    horizontal line, the effect as a point coloured by verdict (filled when
    asserted, an open diamond on a dashed line when reported only), and a
    vertical dashed line at the instance's margin bounds (equivalence: both;
    non-inferiority: L) or, without a margin, at its reference (usually 0).
    The line spans the whole panel when every row shares it, else only its
    own row. Instances on different scales (log ratio, points, Kendall τ, …)
    are drawn in separate panels, each with its own x-axis.

    Parameters
    ----------
    rows : sequence of mapping
        One per instance: ``label`` (str), ``effect`` (finite float), ``ci``
        (``[low, high]`` at the level the decision used), ``verdict`` (a key
        of :data:`VERDICT_COLOURS`), ``scale`` (str, the x-axis label) and
        optionally ``asserted`` (default True), ``reference`` (float or
        None), ``margin`` (``[low, high]``, either may be None) and
        ``effect_name`` (added to the axis label when a panel's rows share it).
    path : str or Path
        Where to write the PNG.
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    owner = "plot_forest"
    _check_path(path, owner)
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) == 0:
        raise invalid("rows", owner, "a non-empty sequence of instance rows", rows)
    checked = [_check_forest_row(i, row, owner) for i, row in enumerate(rows)]
    panels: dict[str, list[dict]] = {}
    for row in checked:
        panels.setdefault(row["scale"], []).append(row)

    figure = _new_figure(7.5, 1.3 + 0.32 * len(checked) + 0.55 * len(panels))
    axes_list = figure.subplots(len(panels), 1, squeeze=False,
                                gridspec_kw={"height_ratios": [len(p) + 1 for p in panels.values()]})[:, 0]
    for axes, (scale, panel) in zip(axes_list, panels.items()):
        ys = np.arange(len(panel))
        for y, row in zip(ys, panel):
            colour = VERDICT_COLOURS[row["verdict"]]
            axes.plot(row["ci"], [y, y], color=colour, linewidth=2.2, solid_capstyle="butt",
                      linestyle="-" if row["asserted"] else (0, (3, 1.5)), zorder=3)
            axes.scatter([row["effect"]], [y], s=48, zorder=4, marker="o" if row["asserted"] else "D",
                         color=colour if row["asserted"] else "white", edgecolors=colour, linewidths=1.6)
        shared = {row["lines"] for row in panel}
        if len(shared) == 1:
            for x in shared.pop():
                axes.axvline(x, color="0.25", linestyle="--", linewidth=1, zorder=2)
        else:
            for y, row in zip(ys, panel):
                for x in row["lines"]:
                    axes.plot([x, x], [y - 0.42, y + 0.42], color="0.25", linestyle="--", linewidth=1, zorder=2)
        xs = [v for row in panel for v in (*row["ci"], *row["lines"])]
        low, high = min(xs), max(xs)
        pad = 0.08 * (high - low) if high > low else max(abs(high), 1.0) * 0.1
        axes.set_xlim(low - pad, high + pad)
        axes.set_ylim(len(panel) - 0.5, -0.5)
        axes.set_yticks(ys, [row["label"] for row in panel], fontsize=8)
        names = {row["effect_name"] for row in panel}
        name = names.pop() if len(names) == 1 else ""
        axes.set_xlabel(f"{name} ({scale})" if name and scale else (name or scale or "effect"), fontsize=9)
        axes.grid(axis="x", alpha=0.3)
    present = [v for v in VERDICT_COLOURS if any(row["verdict"] == v for row in checked)]
    handles = [Line2D([], [], color=VERDICT_COLOURS[v], marker="o", linewidth=2.2, label=v) for v in present]
    if not all(row["asserted"] for row in checked):
        handles.append(Line2D([], [], color="0.3", marker="D", markerfacecolor="white", linestyle=(0, (3, 1.5)),
                              linewidth=2.2, label="not asserted"))
    if any(row["lines"] for row in checked):
        handles.append(Line2D([], [], color="0.25", linestyle="--", linewidth=1, label="margin / reference"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    figure.suptitle(title, fontsize=11)
    return _save(figure, path)
