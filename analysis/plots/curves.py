"""Curve figures: functional landscapes, accuracy deviations, trends, pruning curves of distilled students."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from analysis._validation import invalid
from analysis.plots.style import (KINDS, OTHER, as_vector, series_colours, check_path, kind_of, natural_key,
                                  new_figure, save)

__all__ = ["plot_accuracy_deviation", "plot_landscape", "plot_pruning_curves", "plot_trend"]


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
        :func:`analysis.measure.landscape.functional_landscape`).
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
    check_path(path, owner)
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

    labels = sorted({groups[name] for name in coords}, key=natural_key)
    by_kind: dict[str, list[str]] = {}
    for label in labels:
        by_kind.setdefault(kind_of(label), []).append(label)
    style: dict[str, tuple[str, object, float]] = {}
    from matplotlib import colormaps

    for kind, kind_labels in by_kind.items():
        marker, cmap_name = KINDS.get(kind, OTHER)
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

    figure = new_figure(7.0, 5.5)
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
    return save(figure, path)


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
    check_path(path, owner)
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

    figure = new_figure(max(5.0, 0.8 * len(conditions) + 2.0), 4.0)
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
    return save(figure, path)


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
    check_path(path, owner)
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

    figure = new_figure(6.0, 4.0)
    axes = figure.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(series))]
    # Beyond ten series the colours repeat: every further ten get another line style, so no two series look alike.
    styles = ["-", "--", ":", "-."]
    for i, (colour, (name, array)) in enumerate(zip(colours, series.items())):
        present = ~np.isnan(array)
        mean = np.where(present.any(0), np.nansum(array, axis=0) / np.maximum(present.sum(0), 1), np.nan)
        axes.plot(levels, mean, color=colour, marker="o", label=name, zorder=3, linestyle=styles[(i // 10) % 4])
        for row in array:
            axes.scatter(levels, row, color=colour, alpha=0.4, s=12, zorder=2)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return save(figure, path)


# ------------------------------------------------ pruning of distilled students
# Figures in the manner of Malihi & Heidemann's Figs. 3-5: accuracy against
# parameters for weight vs channel pruning, accuracy at the breakpoint per
# teacher -> student pair, and where each pruning method puts its zeros.


def _is_index(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_pruning_series(panel: str, name: str, pair: object, log_x: bool, owner: str) -> tuple[np.ndarray, ...]:
    param = f"panels[{panel!r}][{name!r}]"
    expected = "a (parameters, accuracy) pair of equal-length 1-D sequences"
    if isinstance(pair, (str, bytes)) or not isinstance(pair, (Sequence, np.ndarray)) or len(pair) != 2:
        raise invalid(param, owner, expected, pair)
    parameters = as_vector(pair[0], param, owner, expected)
    accuracy = as_vector(pair[1], param, owner, expected)
    if parameters.size == 0 or parameters.size != accuracy.size:
        raise invalid(param, owner, expected, f"lengths {parameters.size} and {accuracy.size}")
    if np.any(np.isinf(parameters)) or np.any(np.isinf(accuracy)):
        raise invalid(param, owner, "finite numbers or NaN (skipped)", pair)
    if log_x and np.any(parameters <= 0):
        # NaN <= 0 is False: only real non-positive counts are refused.
        raise invalid(param, owner, "positive parameter counts on a log x-axis",
                      parameters[parameters <= 0].tolist())
    return parameters, accuracy


def plot_pruning_curves(
    panels: Mapping[str, Mapping[str, object]],
    path: str | Path,
    title: str,
    *,
    breakpoints: Mapping[str, Mapping[str, int]] | None = None,
    xlabel: str = "parameters after pruning",
    ylabel: str = "test accuracy (%)",
    log_x: bool = True,
) -> Path:
    """Accuracy against remaining parameters, one panel per teacher -> student pair.

    Weight vs channel pruning of distilled students as Malihi & Heidemann
    draw it (their Figs. 3-4): in each panel a line with markers per series,
    the same colour for a series name in every panel (a name starting with
    "teacher" is dashed), one legend for the figure. A breakpoint (the last
    level before accuracy falls off) is ringed with a larger hollow marker on
    a vertical dotted line.

    Parameters
    ----------
    panels : mapping of str to (mapping of str to (parameters, accuracy))
        Panel title (e.g. ``"resnet34 → resnet18"``) to series name (e.g.
        ``"weight"``, ``"channel"``, ``"teacher (weight)"``) to two
        equal-length 1-D sequences: parameter count and accuracy, one point
        per pruning level (mean over seeds). Points where either is NaN are
        skipped and the line joins their neighbours. Panels are laid out in a
        grid of at most 3 columns, in the given order.
    path : str or Path
        Where to write the PNG (parent folders are created).
    title : str
        Figure title.
    breakpoints : mapping of str to (mapping of str to int), optional
        Panel to series to the index, into that series' points as given, of
        its breakpoint; the point there must not be NaN.
    xlabel, ylabel : str
        Axis labels.
    log_x : bool, default True
        Draw parameters on a log scale (then every non-NaN count must be
        positive).

    Returns
    -------
    Path
        ``path``.
    """
    owner = "plot_pruning_curves"
    check_path(path, owner)
    if not isinstance(panels, Mapping) or len(panels) == 0:
        raise invalid("panels", owner, "a non-empty mapping of panel title to series", panels)
    checked: dict[str, dict[str, tuple[np.ndarray, ...]]] = {}
    for panel, series in panels.items():
        if not isinstance(series, Mapping) or len(series) == 0:
            raise invalid(f"panels[{panel!r}]", owner,
                          "a non-empty mapping of series name to (parameters, accuracy)", series)
        checked[panel] = {name: _check_pruning_series(panel, name, pair, log_x, owner)
                          for name, pair in series.items()}
    if breakpoints is not None and not isinstance(breakpoints, Mapping):
        raise invalid("breakpoints", owner, "a mapping of panel to (series to point index)", breakpoints)
    marks: dict[str, dict[str, int]] = {}
    for panel, by_series in (breakpoints or {}).items():
        if panel not in checked:
            raise invalid("breakpoints", owner, "panel titles that are in panels", panel)
        if not isinstance(by_series, Mapping):
            raise invalid(f"breakpoints[{panel!r}]", owner, "a mapping of series name to point index", by_series)
        for name, index in by_series.items():
            param = f"breakpoints[{panel!r}][{name!r}]"
            if name not in checked[panel]:
                raise invalid(param, owner, f"a series of panel {panel!r}", name)
            parameters, accuracy = checked[panel][name]
            if not _is_index(index) or not 0 <= index < parameters.size:
                raise invalid(param, owner, f"a point index in [0, {parameters.size - 1}]", index)
            if np.isnan(parameters[index]) or np.isnan(accuracy[index]):
                raise invalid(param, owner, "the index of a point that is not NaN", int(index))
            marks.setdefault(panel, {})[name] = int(index)

    colours = series_colours([name for series in checked.values() for name in series])
    styles = {name: "--" if name.strip().lower().startswith("teacher") else "-" for name in colours}
    n_cols = min(3, len(checked))
    n_rows = math.ceil(len(checked) / n_cols)
    figure = new_figure(4.2 * n_cols + 0.4, 3.3 * n_rows + 0.9)
    axes_grid = figure.subplots(n_rows, n_cols, squeeze=False)
    for axes, (panel, series) in zip(axes_grid.flat, checked.items()):
        for name, (parameters, accuracy) in series.items():
            kept = ~(np.isnan(parameters) | np.isnan(accuracy))
            axes.plot(parameters[kept], accuracy[kept], color=colours[name], linestyle=styles[name],
                      marker="o", markersize=4, linewidth=1.5, zorder=3)
        for name, index in marks.get(panel, {}).items():
            x, y = series[name][0][index], series[name][1][index]
            axes.axvline(x, color=colours[name], linestyle=":", linewidth=1.2, alpha=0.8, zorder=2)
            axes.plot([x], [y], linestyle="none", marker="o", markersize=12, markerfacecolor="none",
                      markeredgecolor=colours[name], markeredgewidth=1.8, zorder=4)
        if log_x:
            axes.set_xscale("log")
            # Labelled minor ticks (2×10⁴, 3×10⁴, …) overlap on narrow panels: label the decades only.
            axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_title(panel, fontsize=10)
        axes.set_xlabel(xlabel, fontsize=9)
        axes.set_ylabel(ylabel, fontsize=9)
        axes.grid(alpha=0.3, which="both" if log_x else "major")
    for axes in axes_grid.flat[len(checked):]:
        axes.set_visible(False)
    handles = [Line2D([], [], color=colour, linestyle=styles[name], marker="o", markersize=4, label=name)
               for name, colour in colours.items()]
    if marks:
        handles.append(Line2D([], [], color="0.3", linestyle=":", marker="o", markersize=10,
                              markerfacecolor="none", markeredgewidth=1.8, label="breakpoint"))
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=8,
                  frameon=False)
    figure.suptitle(title, fontsize=11)
    return save(figure, path)
