"""Publishing the report: one unit swapped in at once, modes from the umask, and the up-front directory check."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import evidence_factory as factory
from analysis._validation import InvalidParameterError
from analysis.report import ReportError, build_report, check_report_dir, new_staging_dir, publish_report
from analysis.report import publish as publish_module

FIGURE = "figures/landscape.png"


def _publish(report_dir: Path, verdict: str = "supported") -> dict[str, Path]:
    """One run: stage, draw a figure the way the suite's workers do (mkstemp, 0600), publish."""
    staging = new_staging_dir(report_dir)
    fd, tmp = tempfile.mkstemp(dir=staging / "figures", suffix=".png")
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + verdict.encode())
    os.replace(tmp, staging / FIGURE)
    doc = build_report([factory.evidence(verdict=verdict, figures=[FIGURE])], run=factory.run())
    return publish_report(doc, staging, report_dir)


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_publish_points_the_report_directory_at_a_complete_run(tmp_path):
    report_dir = tmp_path / "reports" / "ci"
    paths = _publish(report_dir)
    assert report_dir.is_symlink() and report_dir.resolve() == paths["run_dir"].resolve()
    assert not os.path.isabs(os.readlink(report_dir))  # the tree can be moved or mounted elsewhere
    assert set(_snapshot(report_dir)) == {"claims.json", "claims.md", "index.html", FIGURE,
                                          "figures/forest_MW-1.png"}
    assert paths["html"] == report_dir / "index.html" and paths["html"].is_file()
    # Only the link and the runs directory beside it: no temporary files left behind.
    assert sorted(p.name for p in report_dir.parent.iterdir()) == [".ci-runs", "ci"]


def test_publish_keeps_the_previous_runs_and_deletes_older_ones(tmp_path):
    report_dir = tmp_path / "ci"
    runs = [_publish(report_dir, verdict)["run_dir"] for verdict in ("supported", "refuted", "inconclusive", "error")]
    remaining = sorted(p for p in (tmp_path / ".ci-runs").iterdir())
    assert remaining == runs[1:]  # the current one and the two before it
    assert report_dir.resolve() == runs[-1].resolve()
    assert b"error" in (report_dir / FIGURE).read_bytes()


def test_publish_moves_an_old_layout_directory_aside(tmp_path):
    report_dir = tmp_path / "ci"
    (report_dir / "figures").mkdir(parents=True)
    (report_dir / "claims.md").write_text("old report\n")
    _publish(report_dir)
    assert report_dir.is_symlink()
    (moved,) = [p for p in (tmp_path / ".ci-runs").iterdir() if p.name.endswith("-previous")]
    assert (moved / "claims.md").read_text() == "old report\n"


def test_a_full_disk_while_writing_leaves_the_previous_report_intact(tmp_path, monkeypatch):
    report_dir = tmp_path / "ci"
    _publish(report_dir)
    before, target = _snapshot(report_dir), report_dir.resolve()
    entries = {p.name for p in tmp_path.iterdir()}
    runs_before = {p.name for p in (tmp_path / ".ci-runs").iterdir()}
    write_text = publish_module.write_text

    def full_disk(path, text):
        if Path(path).name == "index.html":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write_text(path, text)

    monkeypatch.setattr(publish_module, "write_text", full_disk)
    with pytest.raises(ReportError, match="disk is full") as info:
        _publish(report_dir, "refuted")
    assert report_dir.resolve() == target and _snapshot(report_dir) == before
    assert {p.name for p in tmp_path.iterdir()} == entries
    (staging,) = {p.name for p in (tmp_path / ".ci-runs").iterdir()} - runs_before
    assert staging.endswith(".staging") and staging in str(info.value)


@pytest.mark.parametrize("old_layout", [False, True])
def test_a_failed_swap_puts_everything_back(tmp_path, monkeypatch, old_layout):
    report_dir = tmp_path / "ci"
    if old_layout:
        report_dir.mkdir()
        (report_dir / "claims.md").write_text("old report\n")
    else:
        _publish(report_dir)
    before, was_link = _snapshot(report_dir), report_dir.is_symlink()
    entries = {p.name for p in tmp_path.iterdir()}
    replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == report_dir:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ReportError, match="previous report is unchanged"):
        _publish(report_dir, "refuted")
    assert _snapshot(report_dir) == before and report_dir.is_symlink() == was_link
    assert {p.name for p in tmp_path.iterdir()} == entries | {".ci-runs"}  # no link left behind
    unpublished = [p for p in (tmp_path / ".ci-runs").iterdir() if p.name.endswith(".staging")]
    assert len(unpublished) == 1  # the run's files stay where the run put them


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_everything_written_follows_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        run_dir = _publish(tmp_path / "ci")["run_dir"]
    finally:
        os.umask(previous)
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    dirs = [run_dir, *(p for p in run_dir.rglob("*") if p.is_dir())]
    assert {p.stat().st_mode & 0o777 for p in files} == {0o666 & ~umask}  # the mkstemp figure included
    assert {p.stat().st_mode & 0o777 for p in dirs} == {0o777 & ~umask}


def test_publish_rejects_a_staging_directory_it_did_not_make(tmp_path):
    doc = build_report([factory.evidence()], run=factory.run())
    with pytest.raises(InvalidParameterError, match="'staging_dir'"):
        publish_report(doc, tmp_path / "elsewhere", tmp_path / "ci")
    assert not (tmp_path / "ci").exists()


# ------------------------------------------------------------------ check_report_dir


def test_check_accepts_a_new_nested_directory_and_creates_nothing(tmp_path):
    check_report_dir(tmp_path / "a" / "b" / "ci")
    assert list(tmp_path.iterdir()) == []


def _message(path: Path, **kwargs) -> str:
    with pytest.raises(ReportError) as info:
        check_report_dir(path, flag="--report-dir", **kwargs)
    message = str(info.value)
    assert str(path) in message and "--report-dir" in message and "\n" not in message
    return message


def test_check_rejects_a_file(tmp_path):
    (tmp_path / "ci").write_text("")
    assert "is a file" in _message(tmp_path / "ci")


def test_check_rejects_a_path_under_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    assert f"cannot be created, {tmp_path / 'file'} is a file" in _message(tmp_path / "file" / "reports" / "ci")


def test_check_rejects_a_directory_it_cannot_write_in(tmp_path, monkeypatch):
    # Tests run as root, for whom mode bits deny nothing: the probe file's creation fails instead.
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT and Path(path).parent == tmp_path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    assert f"{tmp_path} is not writable (Permission denied)" in _message(tmp_path / "ci")
    assert list(tmp_path.iterdir()) == []


def test_check_rejects_too_little_free_space(tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=10 * 2**20))
    assert "only 10.0 MiB free" in _message(tmp_path / "ci", min_free_bytes=50 * 2**20)
    check_report_dir(tmp_path / "ci", min_free_bytes=5 * 2**20)
