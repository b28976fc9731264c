"""What every figure shares: the Agg canvas, deterministic PNGs, colours and markers, natural ordering.

Computing and drawing are apart (rliable's ``plot_utils``): every figure
function takes plain numbers (coordinates, deviations, per-seed values,
matrices) and writes one PNG. Figures are built with
:class:`matplotlib.figure.Figure` and its Agg canvas directly, never through
``pyplot``: nothing is registered in pyplot's global figure list, no GUI
backend is touched, and a figure is released as soon as the function returns,
so these are safe in xdist workers and headless CI. PNGs are written at 100
dpi to keep the self-contained HTML report small.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis._validation import invalid

__all__ = ["DPI", "KINDS", "OTHER", "VERDICT_COLOURS", "as_vector", "check_path", "kind_of", "natural_key", "new_figure", "save", "series_colours"]


DPI = 100

#: Verdict -> colour, shared by the forest plots and the HTML report's badges.
VERDICT_COLOURS = {"supported": "#1a7f37", "refuted": "#cf222e", "inconclusive": "#9a6700", "error": "#6e7781"}

# Group kind (leading word of a group label, case-insensitive) -> marker and
# colour map; groups of one kind get shades of that map in their natural order
# ("pruned 10%" before "pruned 70%").
KINDS: dict[str, tuple[str, str]] = {
    "base": ("*", "Greys"),
    "teacher": ("*", "Greys"),
    "independent": ("o", "Greys"),
    "student": ("^", "Blues"),
    "same-init": ("v", "Purples"),
    "quantized": ("s", "Greens"),
    "pruned": ("D", "Oranges"),
}
OTHER = ("P", "copper")


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No timestamp or software tag: the same figure gives the same bytes.
    figure.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    figure.clear()
    return path


def natural_key(text: str) -> list[object]:
    return [float(part) if re.fullmatch(r"\d+(?:\.\d+)?", part) else part.lower()
            for part in re.split(r"(\d+(?:\.\d+)?)", text)]


def kind_of(group: str) -> str:
    lowered = group.strip().lower()
    for kind in KINDS:
        if lowered.startswith(kind):
            return kind
    return "other"


def check_path(path: object, owner: str) -> None:
    if not isinstance(path, (str, Path)) or str(path) == "":
        raise invalid("path", owner, "a file path (str or Path)", path)


def series_colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per series name, in order of first appearance, the same in every panel."""
    colours: dict[str, str] = {}
    for name in names:
        colours.setdefault(name, f"C{len(colours) % 10}")
    return colours


def as_vector(value: object, param: str, owner: str, expected: str) -> np.ndarray:
    """``value`` as a 1-D float array, or the module's error naming ``param``."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise invalid(param, owner, expected, value) from None
    if array.ndim != 1:
        raise invalid(param, owner, expected, f"shape {array.shape}")
    return array
