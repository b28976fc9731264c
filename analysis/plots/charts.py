"""Chart figures: heatmaps, the hybrid tree, forest plots, grouped bars, per-layer sparsity."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from analysis._validation import invalid
from analysis.plots.style import VERDICT_COLOURS, as_vector, check_path, new_figure, save, series_colours

__all__ = ["plot_forest", "plot_grouped_bars", "plot_heatmap", "plot_hybrid_tree", "plot_layer_sparsity"]


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
    check_path(path, owner)
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
    figure = new_figure(width, height)
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
    return save(figure, path)


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
    check_path(path, owner)
    if not distilled:
        raise invalid("distilled", owner, "a non-empty mapping of retained fraction to accuracy", distilled)
    figure = new_figure(6.5, 4.2)
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
    return save(figure, path)


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
    check_path(path, owner)
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) == 0:
        raise invalid("rows", owner, "a non-empty sequence of instance rows", rows)
    checked = [_check_forest_row(i, row, owner) for i, row in enumerate(rows)]
    panels: dict[str, list[dict]] = {}
    for row in checked:
        panels.setdefault(row["scale"], []).append(row)

    figure = new_figure(7.5, 1.3 + 0.32 * len(checked) + 0.55 * len(panels))
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
    return save(figure, path)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_bar_value(value: object, param: str, owner: str, *, half_width: bool) -> float:
    expected = "a non-negative number or NaN (no error bar)" if half_width else "a finite number or NaN (no bar)"
    if not _is_number(value):
        raise invalid(param, owner, expected, value)
    number = float(value)
    if math.isinf(number) or (half_width and number < 0):
        raise invalid(param, owner, expected, value)
    return number


def plot_grouped_bars(
    groups: Mapping[str, Mapping[str, float]],
    path: str | Path,
    title: str,
    ylabel: str,
    *,
    errors: Mapping[str, Mapping[str, float]] | None = None,
    reference: float | None = None,
) -> Path:
    """Grouped vertical bars: one group per teacher -> student pair, one bar per quantity.

    As in Malihi & Heidemann's Fig. 5: per pair, the accuracy of weight and
    channel pruning at their breakpoints beside the unpruned student, with
    optional error bars and a dashed reference line.

    Parameters
    ----------
    groups : mapping of str to (mapping of str to float)
        Group label (e.g. ``"resnet34 → resnet18"``) to bar name (e.g.
        ``"weight at breakpoint"``, ``"channel at breakpoint"``,
        ``"unpruned student"``) to its value. Every group has the same bar
        names; bars keep the first group's order. A NaN value draws no bar.
    path : str or Path
        Where to write the PNG.
    title : str
        Figure title.
    ylabel : str
        Y-axis label.
    errors : mapping of str to (mapping of str to float), optional
        Half-widths of the error bars, the same groups and bar names as
        ``groups``; NaN draws no error bar.
    reference : float, optional
        A y value (e.g. the teacher's accuracy) drawn as a horizontal dashed
        line across the figure, labelled "reference" in the legend.

    Returns
    -------
    Path
        ``path``.
    """
    owner = "plot_grouped_bars"
    check_path(path, owner)
    if not isinstance(groups, Mapping) or len(groups) == 0:
        raise invalid("groups", owner, "a non-empty mapping of group label to (bar name to value)", groups)
    for label, bars in groups.items():
        if not isinstance(bars, Mapping) or len(bars) == 0:
            raise invalid(f"groups[{label!r}]", owner, "a non-empty mapping of bar name to value", bars)
    bar_names = list(next(iter(groups.values())))
    for label, bars in groups.items():
        if set(bars) != set(bar_names):
            raise invalid(f"groups[{label!r}]", owner, f"the bar names of the first group, {sorted(bar_names)}",
                          sorted(bars))
    values = np.array([[_check_bar_value(groups[label][bar], f"groups[{label!r}][{bar!r}]", owner, half_width=False)
                        for bar in bar_names] for label in groups])
    half_widths = None
    if errors is not None:
        if not isinstance(errors, Mapping) or set(errors) != set(groups):
            raise invalid("errors", owner, f"a mapping with the groups of groups, {list(groups)}",
                          list(errors) if isinstance(errors, Mapping) else errors)
        for label in groups:
            if not isinstance(errors[label], Mapping) or set(errors[label]) != set(bar_names):
                raise invalid(f"errors[{label!r}]", owner, f"a mapping with the bar names {sorted(bar_names)}",
                              errors[label])
        half_widths = np.array([[_check_bar_value(errors[label][bar], f"errors[{label!r}][{bar!r}]", owner,
                                                  half_width=True) for bar in bar_names] for label in groups])
    if reference is not None and not (_is_number(reference) and math.isfinite(reference)):
        raise invalid("reference", owner, "a finite number or None", reference)

    labels = list(groups)
    n_groups, n_bars = values.shape
    colours = series_colours(bar_names)
    fig_width = min(14.0, max(5.0, n_groups * (0.3 * n_bars + 0.6) + 2.0))
    figure = new_figure(fig_width, 4.2)
    axes = figure.add_subplot()
    x = np.arange(n_groups)
    width = 0.8 / n_bars
    for k, bar in enumerate(bar_names):
        offsets = x - 0.4 + (k + 0.5) * width
        shown = ~np.isnan(values[:, k])
        yerr = None
        if half_widths is not None:
            yerr = np.where(np.isnan(half_widths[shown, k]), 0.0, half_widths[shown, k])
        axes.bar(offsets[shown], values[shown, k], width=width, color=colours[bar], edgecolor="black",
                 linewidth=0.5, yerr=yerr, capsize=3 if yerr is not None else 0,
                 error_kw={"elinewidth": 1.0}, label=bar, zorder=3)
    if reference is not None:
        axes.axhline(float(reference), color="0.25", linestyle="--", linewidth=1.0, label="reference", zorder=2)
    long_labels = max(len(label) for label in labels) > 14 or n_groups > 6
    axes.set_xticks(x, labels, rotation=25 if long_labels else 0, ha="right" if long_labels else "center",
                    fontsize=8)
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.grid(axis="y", alpha=0.3, zorder=0)
    # Outside the axes: bars of similar height leave no free corner inside.
    entries = [*bar_names, *(["reference"] if reference is not None else [])]
    ncols = min(len(entries), 4)
    # Fewer columns while a legend row would not fit the figure (~0.07 in per character at 8 pt, plus the patch).
    widest = sorted((len(e) for e in entries), reverse=True)
    while ncols > 1 and sum(widest[:ncols]) * 0.07 + ncols * 0.5 > fig_width:
        ncols -= 1
    figure.legend(loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)
    return save(figure, path)


#: Height of the layer-sparsity figure in inches, at most: ~60 layers stay legible at smaller fonts.
_MAX_LAYER_FIGURE_HEIGHT = 16.0


def plot_layer_sparsity(
    layers: Sequence[str],
    sparsity_by_series: Mapping[str, object],
    path: str | Path,
    title: str,
) -> Path:
    """Fraction of each layer's weights masked, one row per layer, bars per pruning series.

    Where weight and channel pruning put their zeros (Malihi & Heidemann):
    horizontal grouped bars, layers top to bottom in execution order, x from
    0 to 1. The figure grows with the number of layers up to
    ``_MAX_LAYER_FIGURE_HEIGHT`` inches; beyond that rows and tick labels
    shrink.

    Parameters
    ----------
    layers : sequence of str
        Layer names in execution order.
    sparsity_by_series : mapping of str to sequence of float
        Series (e.g. ``"weight 50 %"``, ``"channel 50 %"``) to one value in
        [0, 1] per layer; NaN (layer not reported) draws no bar.
    path : str or Path
        Where to write the PNG.
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    owner = "plot_layer_sparsity"
    check_path(path, owner)
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or len(layers) == 0 \
            or not all(isinstance(layer, str) for layer in layers):
        raise invalid("layers", owner, "a non-empty sequence of layer names (str)", layers)
    if not isinstance(sparsity_by_series, Mapping) or len(sparsity_by_series) == 0:
        raise invalid("sparsity_by_series", owner, "a non-empty mapping of series to one value per layer",
                      sparsity_by_series)
    n_layers = len(layers)
    series: dict[str, np.ndarray] = {}
    for name, values in sparsity_by_series.items():
        param = f"sparsity_by_series[{name!r}]"
        array = as_vector(values, param, owner, f"a 1-D sequence of {n_layers} values in [0, 1]")
        if array.size != n_layers:
            raise invalid(param, owner, f"one value per layer ({n_layers})", f"{array.size} values")
        outside = np.flatnonzero(~np.isnan(array) & ((array < 0) | (array > 1)))
        if outside.size:
            i = int(outside[0])
            raise invalid(param, owner, "values in [0, 1]", f"{array[i]} at layer {layers[i]!r}")
        series[name] = array

    n_series = len(series)
    row_height = 0.12 + 0.08 * n_series  # inches per layer when uncapped
    chrome = 1.8  # title, x-axis, legend
    height = min(_MAX_LAYER_FIGURE_HEIGHT, chrome + row_height * n_layers)
    # Tick labels fill at most ~60 % of a row: 8 pt when there is room, down to 4 pt.
    fontsize = float(np.clip(0.6 * 72.0 * (height - chrome) / n_layers, 4.0, 8.0))
    colours = series_colours(list(series))
    figure = new_figure(7.0, height)
    axes = figure.add_subplot()
    y = np.arange(n_layers)
    bar_height = 0.8 / n_series
    for k, (name, array) in enumerate(series.items()):
        shown = ~np.isnan(array)
        # The y-axis runs downward, so the first series is the top bar of each row.
        axes.barh(y[shown] - 0.4 + (k + 0.5) * bar_height, array[shown], height=bar_height,
                  color=colours[name], edgecolor="none", label=name, zorder=3)
    axes.set_ylim(n_layers - 0.5, -0.5)
    axes.set_yticks(y, list(layers), fontsize=fontsize)
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("fraction of the layer's weights masked")
    axes.tick_params(axis="x", labelsize=8)
    axes.grid(axis="x", alpha=0.3, zorder=0)
    axes.set_title(title)
    figure.legend(loc="outside lower center", ncols=min(n_series, 4), fontsize=8, frameon=False)
    return save(figure, path)
