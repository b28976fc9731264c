"""Writing the report to disk and publishing a run's report as one unit.

Layout: ``report_dir`` (e.g. ``reports/ci``) is a symbolic link to one run's
directory beside it, ``reports/.ci-runs/<stamp>-<token>``. A run draws its
figures into a staging directory (``reports/.ci-runs/<stamp>-<token>.staging``,
from :func:`new_staging_dir`); :func:`publish_report` writes the report
there, renames it to its final name and replaces the link with
``os.replace``, so a reader sees either the previous run or this one, never
parts of both. The previous runs' directories are kept (two by default, for
readers that have them open); older ones are deleted.

Every file and directory written follows the process umask (files
``0o666 & ~umask``, directories ``0o777 & ~umask``), including figures other
processes wrote into the staging directory through ``mkstemp`` (``0600``).
"""
from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from analysis._files import write_text
from analysis._validation import invalid
from analysis.stats.evidence import jsonable

from .document import ReportError, by_claim, check_document, forest_rows
from .html import render_html
from .markdown import render_markdown

__all__ = ["check_report_dir", "new_staging_dir", "publish_report", "write_report", "write_text"]

STAGING_SUFFIX = ".staging"
#: Free space :func:`check_report_dir` asks for by default: a report with its figures is a few MiB.
MIN_FREE_BYTES = 50 * 2**20
#: Finished runs kept besides the published one.
KEEP_PREVIOUS = 2


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _dump_json(doc: Mapping) -> str:
    return json.dumps(jsonable(doc), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_views(doc: Mapping, out_dir: Path) -> dict[str, Path]:
    """Write ``claims.md`` and ``index.html`` for ``doc`` into ``out_dir`` (figures read from there)."""
    return {"markdown": write_text(out_dir / "claims.md", render_markdown(doc)),
            "html": write_text(out_dir / "index.html", render_html(doc, out_dir))}


def _draw_forest_plots(doc: Mapping, out_dir: Path) -> None:
    from analysis.plots import plot_forest

    claims = by_claim(doc["claims"])
    for figure in doc["figures"]:
        if figure["kind"] == "forest":
            shown = set(figure["instances"])
            rows = forest_rows([r for r in claims[figure["claim_id"]] if r["instance_id"] in shown])
            plot_forest(rows, out_dir / figure["path"], figure["title"])


def write_report(doc: Mapping, out_dir: str | Path) -> dict[str, Path]:
    """Write the report into ``out_dir``: forest plots, ``claims.json``, ``claims.md``, ``index.html``.

    Each file is written atomically, but the set is not: use
    :func:`publish_report` for a directory that readers are looking at.
    The Markdown and HTML are rendered from the JSON as written, so
    rebuilding them from ``claims.json`` (the CLI) gives the same bytes.

    Returns
    -------
    dict of str to Path
        ``{"json": ..., "markdown": ..., "html": ...}``.
    """
    out_dir = Path(out_dir)
    check_document(doc, "the report document")
    text = _dump_json(doc)
    doc = json.loads(text)
    _draw_forest_plots(doc, out_dir)
    return {"json": write_text(out_dir / "claims.json", text), **write_views(doc, out_dir)}


def runs_dir(report_dir: Path) -> Path:
    """Where a report directory's runs live: ``reports/ci`` → ``reports/.ci-runs``."""
    return report_dir.parent / f".{report_dir.name}-runs"


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def new_staging_dir(report_dir: str | Path) -> Path:
    """Create a fresh staging directory for this run's report, with an empty ``figures/`` in it.

    The run draws its figures into ``<staging>/figures`` and hands the
    directory to :func:`publish_report` at the end.
    """
    runs = runs_dir(Path(report_dir))
    runs.mkdir(parents=True, exist_ok=True)
    staging = runs / f"{_stamp()}-{secrets.token_hex(4)}{STAGING_SUFFIX}"
    staging.mkdir()
    (staging / "figures").mkdir()
    return staging


def _apply_umask(top: Path) -> None:
    """Give everything under ``top`` the modes the umask implies (figures may come from ``mkstemp``)."""
    mask = _umask()
    os.chmod(top, 0o777 & ~mask)
    for root, dirs, files in os.walk(top):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                os.chmod(os.path.join(root, name), 0o666 & ~mask)


def _swap_in(run_dir: Path, report_dir: Path) -> None:
    """Point ``report_dir`` at ``run_dir`` in one step; an old-layout real directory is moved aside first.

    On failure everything is put back as it was, and the error is raised.
    """
    parent = report_dir.parent
    link = parent / f".{report_dir.name}.{secrets.token_hex(4)}.link"
    moved = None
    try:
        os.symlink(os.path.relpath(run_dir, parent), link)
        if report_dir.is_dir() and not report_dir.is_symlink():
            # A real directory cannot be replaced by a link in one step: this
            # one-time move leaves report_dir absent until the replace below.
            mtime = datetime.fromtimestamp(report_dir.stat().st_mtime, timezone.utc)
            moved = runs_dir(report_dir) / f"{mtime:%Y%m%dT%H%M%S%fZ}-previous"
            os.rename(report_dir, moved)
        os.replace(link, report_dir)
        _fsync_dir(parent)
    except BaseException:
        link.unlink(missing_ok=True)
        if moved is not None and not report_dir.exists():
            os.rename(moved, report_dir)
        raise


def _prune(runs: Path, current: Path, previous: Path | None, keep: int) -> None:
    """Delete finished runs older than the ``keep`` newest (never the current one or the one just replaced)."""
    finished = sorted((d.resolve() for d in runs.iterdir() if d.is_dir() and not d.is_symlink()
                       and not d.name.endswith(STAGING_SUFFIX)), reverse=True)
    finished.remove(current.resolve())
    kept = set(finished[:keep]) | {previous}
    for old in finished:
        if old not in kept:
            # A reader may still hold files open there; failing to delete is not worth failing the run.
            shutil.rmtree(old, ignore_errors=True)


def publish_report(doc: Mapping, staging_dir: str | Path | None, report_dir: str | Path, *,
                   keep: int = KEEP_PREVIOUS) -> dict[str, Path]:
    """Write the report into its staging directory and swap it in as ``report_dir`` at once.

    Parameters
    ----------
    doc : dict
        The report document (:func:`build_report`).
    staging_dir : str or Path or None
        This run's directory from :func:`new_staging_dir` (its ``figures/``
        holds the figures the records name); None makes one now.
    report_dir : str or Path
        What readers open, e.g. ``reports/ci``: afterwards a symbolic link to
        this run's directory. A real directory there (the old layout) is
        moved into the runs directory first.
    keep : int, default 2
        Finished runs to keep besides this one; older ones are deleted.

    Returns
    -------
    dict of str to Path
        ``{"json", "markdown", "html"}`` under ``report_dir``, and
        ``"run_dir"``, the directory ``report_dir`` now points to.

    Raises
    ------
    ReportError
        If writing or swapping fails (a full disk, say): the previous report
        is left as it was, and this run's files stay in ``staging_dir``.
    """
    report_dir = Path(report_dir)
    runs = runs_dir(report_dir)
    staging = new_staging_dir(report_dir) if staging_dir is None else Path(staging_dir)
    if staging.parent.resolve() != runs.resolve() or not staging.name.endswith(STAGING_SUFFIX):
        raise invalid("staging_dir", "publish_report", f"a directory from new_staging_dir({str(report_dir)!r})",
                      str(staging))
    if report_dir.exists() and not report_dir.is_dir():
        raise ReportError(f"{report_dir} is a file, not a report directory: nothing was published; "
                          f"this run's report is in {staging}.")
    previous = report_dir.resolve() if report_dir.is_symlink() else None
    run_dir = runs / staging.name.removesuffix(STAGING_SUFFIX)
    try:
        write_report(doc, staging)
        _apply_umask(staging)
        _fsync_dir(staging)
        os.rename(staging, run_dir)
        try:
            _swap_in(run_dir, report_dir)
        except BaseException:
            os.rename(run_dir, staging)
            raise
    except OSError as error:
        hint = " (the disk is full)" if error.errno == errno.ENOSPC else ""
        raise ReportError(f"Could not publish the report to {report_dir}{hint}: {error}. The previous report is "
                          f"unchanged; this run's files are in {staging}.") from error
    _prune(runs, run_dir, previous, keep)
    return {"json": report_dir / "claims.json", "markdown": report_dir / "claims.md",
            "html": report_dir / "index.html", "run_dir": run_dir}


def check_report_dir(path: str | Path, *, flag: str = "--report-dir", min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Check, before any work, that a report can be published at ``path``.

    ``path`` must be a directory (or a link to one) or not exist yet; the
    nearest existing directory at or above its parent must take a new file (a
    probe file is created and removed: permission bits say nothing for root
    or on read-only mounts) and have ``min_free_bytes`` free.

    Raises
    ------
    ReportError
        One line naming the path, the problem and ``flag``.
    """
    path = Path(path)

    def fail(problem: str) -> ReportError:
        return ReportError(f"{flag} {path}: {problem}. Pass {flag} a directory that can be written.")

    if path.exists() and not path.is_dir():
        raise fail("is a file, not a directory")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise fail(f"cannot be created, {existing} is a file")
    probe = existing / f".report-probe-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as error:
        raise fail(f"{existing} is not writable ({error.strerror or error})") from None
    free = shutil.disk_usage(existing).free
    if free < min_free_bytes:
        raise fail(f"only {free / 2**20:.1f} MiB free in {existing}, {min_free_bytes / 2**20:.0f} MiB needed")
