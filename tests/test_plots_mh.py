"""Tests for the weight-vs-channel pruning figures (Malihi & Heidemann, Figs. 3-5) in :mod:`analysis.plots`.

Each figure is a PNG written through the Agg canvas alone (pyplot's figure list
stays empty), and each test asserts a relation: NaN points are skipped exactly
as if absent, a breakpoint changes the picture, the same input gives the same
bytes, the layer figure grows with its layers up to a cap, and bad input is
refused with the argument's name before anything is written.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

import analysis.plots as plots
import analysis.plots.charts as charts
from analysis._validation import InvalidParameterError
from analysis.plots.style import series_colours

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PARAMETERS = [11.2e6, 5.6e6, 2.2e6, 1.1e6, 2.2e5]


def _png_shape(path: Path) -> tuple[int, ...]:
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    return imread(path).shape


def _panels(n: int = 2, channel_accuracy: list[float] | None = None) -> dict:
    channel = channel_accuracy or [93.0, 91.5, 89.0, 80.0, 55.0]
    pairs = ["resnet34 → resnet18", "resnet50 → resnet18", "vgg16 → vgg11", "wrn40-2 → wrn16-2"][:n]
    return {pair: {"weight": (PARAMETERS, [93.0, 93.0, 92.6, 91.8, 70.0]),
                   "channel": (PARAMETERS, channel),
                   "teacher (weight)": ([2 * p for p in PARAMETERS], [95.0, 95.0, 94.8, 94.0, 85.0])}
            for pair in pairs}


GROUPS = {"resnet34 → resnet18": {"weight at breakpoint": 92.0, "channel at breakpoint": 89.5, "unpruned student": 93.1},
          "vgg16 → vgg11": {"weight at breakpoint": 91.0, "channel at breakpoint": 90.1, "unpruned student": 92.0}}
LAYERS = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "fc"]


def test_each_figure_is_a_png_drawn_without_pyplot(tmp_path):
    paths = [
        plots.plot_pruning_curves(_panels(), tmp_path / "curves.png", "Fig. 3",
                                  breakpoints={"resnet34 → resnet18": {"weight": 3, "channel": 2}}),
        plots.plot_pruning_curves(_panels(1), tmp_path / "linear.png", "linear x", log_x=False,
                                  xlabel="retained fraction", ylabel="top-1 (%)"),
        plots.plot_grouped_bars(GROUPS, tmp_path / "bars.png", "Fig. 5", "test accuracy (%)",
                                errors={g: dict.fromkeys(bars, 0.4) for g, bars in GROUPS.items()}, reference=95.0),
        plots.plot_layer_sparsity(LAYERS, {"weight 50 %": [0.1, 0.5, 0.6, 0.9], "channel 50 %": [0.0, 0.5, 0.5, 1.0]},
                                  tmp_path / "nested" / "layers.png", "where the zeros go"),
    ]
    for path in paths:
        height, width = _png_shape(path)[:2]
        assert 200 <= height <= 1600 and 200 <= width <= 1600  # ~100 dpi, small
    assert paths[-1] == tmp_path / "nested" / "layers.png"
    assert plt.get_fignums() == []


def test_nan_points_are_skipped_as_if_absent(tmp_path):
    with_nan = _panels(1, channel_accuracy=[93.0, float("nan"), 89.0, 80.0, 55.0])
    pair = next(iter(with_nan))
    without = {pair: dict(with_nan[pair], channel=([p for i, p in enumerate(PARAMETERS) if i != 1],
                                                   [93.0, 89.0, 80.0, 55.0]))}
    a = plots.plot_pruning_curves(with_nan, tmp_path / "nan.png", "t").read_bytes()
    b = plots.plot_pruning_curves(without, tmp_path / "dropped.png", "t").read_bytes()
    assert a == b
    # NaN bars and NaN sparsities draw nothing but still give a figure.
    groups = {g: dict(bars, **{"channel at breakpoint": float("nan")}) for g, bars in GROUPS.items()}
    errors = {g: dict.fromkeys(bars, float("nan")) for g, bars in GROUPS.items()}
    assert _png_shape(plots.plot_grouped_bars(groups, tmp_path / "bars.png", "t", "y", errors=errors))
    assert _png_shape(plots.plot_layer_sparsity(LAYERS, {"weight": [0.2, np.nan, 0.4, 0.1]},
                                                tmp_path / "layers.png", "t"))
    assert plt.get_fignums() == []


def test_breakpoints_change_the_figure_and_output_is_deterministic(tmp_path):
    plain = plots.plot_pruning_curves(_panels(3), tmp_path / "plain.png", "t").read_bytes()
    again = plots.plot_pruning_curves(_panels(3), tmp_path / "again.png", "t").read_bytes()
    marked = plots.plot_pruning_curves(_panels(3), tmp_path / "marked.png", "t",
                                       breakpoints={"vgg16 → vgg11": {}, "resnet50 → resnet18": {"weight": 3}})
    assert plain == again
    assert marked.read_bytes() != plain


def test_pruning_panels_wrap_into_rows_of_three(tmp_path):
    (h1, w1), (h3, w3), (h4, w4) = (
        _png_shape(plots.plot_pruning_curves(_panels(n), tmp_path / f"{n}.png", "t"))[:2] for n in (1, 3, 4))
    assert w3 > w1 and w4 == w3  # a fourth panel opens a second row, not a fourth column
    assert h4 > h3 == h1


def test_series_keep_one_colour_in_every_panel():
    colours = series_colours(["weight", "channel", "weight", "teacher (weight)", "channel"])
    assert colours == {"weight": "C0", "channel": "C1", "teacher (weight)": "C2"}


def test_layer_figure_grows_with_layers_up_to_a_cap(tmp_path):
    def height(n_layers: int) -> int:
        layers = [f"layer{i}.conv" for i in range(n_layers)]
        values = np.linspace(0.0, 1.0, n_layers)
        return _png_shape(plots.plot_layer_sparsity(layers, {"weight 50 %": values}, tmp_path / f"{n_layers}.png",
                                                    "t"))[0]

    few, some, many, more = height(4), height(30), height(75), height(120)  # one series: capped from 71 on
    assert few < some < many
    assert many == more == int(charts._MAX_LAYER_FIGURE_HEIGHT * plots.DPI)


def _bad_curves(path):
    return [
        (lambda: plots.plot_pruning_curves({}, path, "t"), r"'panels'"),
        (lambda: plots.plot_pruning_curves({"p": {}}, path, "t"), r"panels\['p'\]"),
        (lambda: plots.plot_pruning_curves({"p": {"weight": ([1, 2, 3], [90.0, 80.0])}}, path, "t"),
         r"panels\['p'\]\['weight'\].*lengths 3 and 2"),
        (lambda: plots.plot_pruning_curves({"p": {"weight": ([1.0, 2.0],)}}, path, "t"),
         r"panels\['p'\]\['weight'\]"),
        (lambda: plots.plot_pruning_curves({"p": {"weight": ([[1.0], [2.0]], [90.0, 80.0])}}, path, "t"),
         r"panels\['p'\]\['weight'\].*shape \(2, 1\)"),
        (lambda: plots.plot_pruning_curves({"p": {"weight": ([0.0, 2.0], [90.0, 80.0])}}, path, "t"),
         r"panels\['p'\]\['weight'\].*\[0\.0\]"),
        (lambda: plots.plot_pruning_curves(_panels(1), path, "t", breakpoints={"q": {"weight": 0}}),
         r"'breakpoints'.*'q'"),
        (lambda: plots.plot_pruning_curves(_panels(1), path, "t", breakpoints={"resnet34 → resnet18": {"x": 0}}),
         r"breakpoints\['resnet34 → resnet18'\]\['x'\]"),
        (lambda: plots.plot_pruning_curves(_panels(1), path, "t",
                                           breakpoints={"resnet34 → resnet18": {"weight": 5}}),
         r"breakpoints\['resnet34 → resnet18'\]\['weight'\].*Got 5"),
        (lambda: plots.plot_pruning_curves(_panels(1, [93.0, np.nan, 89.0, 80.0, 55.0]), path, "t",
                                           breakpoints={"resnet34 → resnet18": {"channel": 1}}),
         r"breakpoints\['resnet34 → resnet18'\]\['channel'\].*not NaN"),
    ]


def _bad_bars(path):
    uneven = {"a": {"weight": 1.0, "channel": 2.0}, "b": {"weight": 1.0}}
    return [
        (lambda: plots.plot_grouped_bars({}, path, "t", "y"), r"'groups'"),
        (lambda: plots.plot_grouped_bars({"a": {}}, path, "t", "y"), r"groups\['a'\]"),
        (lambda: plots.plot_grouped_bars(uneven, path, "t", "y"), r"groups\['b'\].*\['weight'\]"),
        (lambda: plots.plot_grouped_bars({"a": {"weight": "high"}}, path, "t", "y"), r"groups\['a'\]\['weight'\]"),
        (lambda: plots.plot_grouped_bars(GROUPS, path, "t", "y", errors={"resnet34 → resnet18": {}}), r"'errors'"),
        (lambda: plots.plot_grouped_bars({"a": {"w": 1.0}}, path, "t", "y", errors={"a": {"w": -0.5}}),
         r"errors\['a'\]\['w'\].*-0\.5"),
        (lambda: plots.plot_grouped_bars({"a": {"w": 1.0}}, path, "t", "y", reference=float("inf")),
         r"'reference'.*inf"),
    ]


def _bad_layers(path):
    return [
        (lambda: plots.plot_layer_sparsity([], {"w": []}, path, "t"), r"'layers'"),
        (lambda: plots.plot_layer_sparsity("conv1", {"w": [0.1]}, path, "t"), r"'layers'"),
        (lambda: plots.plot_layer_sparsity(LAYERS, {}, path, "t"), r"'sparsity_by_series'"),
        (lambda: plots.plot_layer_sparsity(LAYERS, {"w": [0.1, 0.2]}, path, "t"),
         r"sparsity_by_series\['w'\].*2 values"),
        (lambda: plots.plot_layer_sparsity(LAYERS, {"w": [0.1, 1.5, 0.2, 0.3]}, path, "t"),
         r"sparsity_by_series\['w'\].*1\.5 at layer 'layer1\.0\.conv1'"),
        (lambda: plots.plot_layer_sparsity(LAYERS, {"w": [0.1, 0.2, -0.01, 0.3]}, path, "t"),
         r"sparsity_by_series\['w'\].*-0\.01"),
        (lambda: plots.plot_layer_sparsity(LAYERS, {"w": np.full((4, 1), 0.5)}, path, "t"),
         r"sparsity_by_series\['w'\].*shape \(4, 1\)"),
        (lambda: plots.plot_layer_sparsity(LAYERS, {"w": [0.1] * 4}, "", "t"), r"'path'"),
    ]


@pytest.mark.parametrize("cases", [_bad_curves, _bad_bars, _bad_layers], ids=["curves", "bars", "layers"])
def test_bad_input_is_refused_by_name_before_drawing(tmp_path, cases):
    path = tmp_path / "x.png"
    for call, fragment in cases(path):
        with pytest.raises(InvalidParameterError, match=fragment):
            call()
    assert not path.exists()
    assert plt.get_fignums() == []
