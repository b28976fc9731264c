"""The artifact store's files: artifact format, atomic writes, temporary files, store.log, lock owners.

Private helpers of :mod:`compress.store.artifacts`, kept apart so that the store reads as
specs → lock → build → write. Nothing here knows about specs or torch.

An artifact file is a magic line, an 8-byte big-endian header length, a JSON
header (format version, key, spec, environment, payload SHA-256 and length)
and the payload.

Temporary files are named ``.tmp-<stem>-<pid>@<host>-<token>.partial``, where
``<host>`` is the sanitised hostname plus ``~`` and a short hash of the boot id
and PID namespace (Linux), so that two machines or containers that share a
hostname do not take each other's process ids for their own. A temporary file
is an orphan, and may be deleted, when

* it was written on this host and its process is gone (``os.kill(pid, 0)``
  raises ``ProcessLookupError``), or
* it is older than a stale age measured on the *file system's* clock: a probe
  file is created in the same directory and the two modification times are
  compared. The machine's clock is never compared with file times (a clock
  24 h ahead once deleted a live writer's file).

Names without ``@<host>`` (written by older code) are judged by age only.
"""
from __future__ import annotations

import datetime
import errno
import hashlib
import io
import json
import os
import re
import secrets
import socket
import struct
from pathlib import Path

TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".partial"
#: A temporary file this old (by the file system's clock) cannot belong to a write in progress.
STALE_TEMP_SECONDS = 24 * 3600.0
_CLOCK_STEM = "clock"

_MAGIC = b"compress-store\n"
_HEADER_LENGTH = struct.Struct(">Q")
_MAX_HEADER_BYTES = 16 * 2**20
_CHUNK = 2**20
_REQUIRED_FIELDS = ("format_version", "key", "payload_sha256", "payload_bytes")


# --------------------------------------------------------------------------- artifact files


def artifact_parts(header: bytes, payload: bytes) -> list[bytes]:
    """The bytes of an artifact file: magic line, 8-byte big-endian header length, JSON header, payload."""
    return [_MAGIC, _HEADER_LENGTH.pack(len(header)), header, payload]


def _read_header(f: io.BufferedReader) -> tuple[str | None, dict]:
    """``(None, header)`` if ``f`` starts with a well-formed header, else ``(reason, {})``."""
    magic = f.read(len(_MAGIC))
    if magic != _MAGIC:
        if len(magic) < len(_MAGIC):
            return "truncated (no header)", {}
        return "not a store artifact (bad magic)", {}
    raw_length = f.read(_HEADER_LENGTH.size)
    if len(raw_length) < _HEADER_LENGTH.size:
        return "truncated header", {}
    (length,) = _HEADER_LENGTH.unpack(raw_length)
    if length > _MAX_HEADER_BYTES:
        return f"corrupt header (length {length})", {}
    raw_header = f.read(length)
    if len(raw_header) < length:
        return "truncated header", {}
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError included
        return f"corrupt header ({type(exc).__name__}: {exc})", {}
    if not isinstance(header, dict):
        return "corrupt header (not a JSON object)", {}
    missing = [name for name in _REQUIRED_FIELDS if name not in header]
    if missing:
        return f"corrupt header (no {', '.join(missing)})", {}
    try:
        int(header["payload_bytes"])
    except (ValueError, TypeError):
        return f"corrupt header (payload_bytes {header['payload_bytes']!r})", {}
    return None, header


def read_artifact_header(path: Path, format_version: int) -> dict | None:
    """The header of the artifact at ``path`` if it is well formed and of ``format_version``."""
    try:
        with open(path, "rb") as f:
            reason, header = _read_header(f)
    except OSError:
        return None
    if reason is not None or header["format_version"] != format_version:
        return None
    return header


def check_artifact(
    f: io.BufferedReader, key: str, format_version: int, *, keep_payload: bool
) -> tuple[str | None, dict, bytes | None]:
    """``(None, header, payload bytes or None)`` for a valid artifact of ``key``; else ``(reason, {}, None)``.

    The payload bytes are kept only with ``keep_payload``.
    """
    reason, header = _read_header(f)
    if reason is not None:
        return reason, {}, None
    version = header["format_version"]
    stored_key = header["key"]
    expected_sha = header["payload_sha256"]
    expected_bytes = int(header["payload_bytes"])
    if version != format_version:
        return f"format version {version!r}, this store reads version {format_version}", {}, None
    if stored_key != key:
        return f"key mismatch: file holds {str(stored_key)[:12]}…, expected {key[:12]}…", {}, None
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    while chunk := f.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if keep_payload:
            chunks.append(chunk)
    if size < expected_bytes:
        return f"truncated payload ({size} of {expected_bytes} bytes)", {}, None
    if size > expected_bytes:
        return f"trailing bytes after payload ({size} bytes, expected {expected_bytes})", {}, None
    if digest.hexdigest() != expected_sha:
        return "checksum mismatch", {}, None
    return None, header, (b"".join(chunks) if keep_payload else None)


# --------------------------------------------------------------------------- temporary files, atomic writes


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _compute_host_identity() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "unknown-host"
    # Hostnames repeat (containers, "localhost"); pids are only comparable within one
    # boot of one machine and one PID namespace, so those go into the identity too.
    parts = [_read_text("/proc/sys/kernel/random/boot_id")]
    try:
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        parts.append("")
    if any(parts):
        name += "~" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]
    return name


_HOST_IDENTITY: str | None = None


def host_identity() -> str:
    """This machine (and PID namespace) as it appears in temporary-file names and owner records."""
    global _HOST_IDENTITY
    if _HOST_IDENTITY is None:
        _HOST_IDENTITY = _compute_host_identity()
    return _HOST_IDENTITY


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (True when in doubt)."""
    if pid <= 0:
        return True  # os.kill(0, ...) would address our process group; claim nothing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists but belongs to another user
    return True


def temp_name(stem: str) -> str:
    """A fresh temporary-file name for ``stem`` carrying this process's pid and host."""
    return f"{TEMP_PREFIX}{stem}-{os.getpid()}@{host_identity()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def parse_temp_name(name: str) -> tuple[int | None, str | None] | None:
    """``(pid, host)`` of a temporary-file name; ``(None, None)`` for the old format; None if not one."""
    if not (name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)):
        return None
    body = name[len(TEMP_PREFIX) : -len(TEMP_SUFFIX)]
    head, _, _token = body.rpartition("-")
    if "@" not in head:
        return None, None
    stem_pid, _, host = head.rpartition("@")
    _stem, _, pid = stem_pid.rpartition("-")
    if not pid.isdigit() or not host:
        return None, None
    return int(pid), host


def fs_now(directory: Path) -> float | None:
    """The file system's clock in ``directory``: the mtime of a fresh probe file (None if unwritable)."""
    probe = directory / temp_name(_CLOCK_STEM)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError:
        return None
    try:
        return os.fstat(fd).st_mtime
    except OSError:
        return None
    finally:
        os.close(fd)
        try:
            os.unlink(probe)
        except OSError:
            pass


def sweep_orphans(directories: list[Path], *, stale_seconds: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete orphaned temporary files directly in ``directories``; return what was deleted.

    An orphan is a temporary file of a dead process on this host, or one older
    than ``stale_seconds`` by the file system's clock (module docstring).
    """
    me = host_identity()
    removed: list[Path] = []
    for directory in directories:
        try:
            entries = [e for e in os.scandir(directory) if parse_temp_name(e.name) is not None]
        except OSError:
            continue
        clock: float | None = None
        clock_read = False
        for entry in entries:
            pid, host = parse_temp_name(entry.name)
            orphan = host == me and pid is not None and not pid_alive(pid)
            if not orphan:
                if not clock_read:  # one probe per directory, and only where a file needs the age rule
                    clock, clock_read = fs_now(Path(directory)), True
                try:
                    orphan = clock is not None and clock - entry.stat().st_mtime > stale_seconds
                except OSError:
                    continue  # gone already
            if orphan:
                try:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
                except OSError:
                    pass  # another process removed it first, or we may not
    return removed


def fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open directories; os.replace is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, parts: list[bytes], *, durable: bool = True) -> None:
    """Write ``parts`` to ``path`` so that readers see no file or the whole file.

    With ``durable`` the data and the rename are also fsync'ed, so the file
    survives a crash of the machine. On any failure the temporary file is
    removed and the error re-raised.
    """
    directory = path.parent
    temp = directory / temp_name(path.name)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    if durable:
        fsync_directory(directory)


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


# --------------------------------------------------------------------------- store.log


def logged_keys(log: Path) -> set[str]:
    """12-character keys that have a ``built`` or ``rebuilt`` line in the log."""
    keys: set[str] = set()
    try:
        with open(log, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a torn line
                if isinstance(row, dict) and row.get("event") in ("built", "rebuilt"):
                    keys.add(str(row.get("key")))
    except FileNotFoundError:
        pass
    return keys


def append_line(log: Path, line: dict) -> None:
    """Append one JSON line with one ``write`` in append mode: lines of several processes never interleave."""
    data = (json.dumps(line) + "\n").encode("utf-8")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def recovered_log_line(header: dict, description: str) -> dict:
    """The ``built`` line an artifact should have had, from its header; unknowns are None."""
    spec = header.get("spec")
    return {
        "time": header.get("created"),
        "pid": None,
        "worker": None,
        "event": "built",
        "key": str(header["key"])[:12],
        "kind": spec.get("kind") if isinstance(spec, dict) else None,
        "spec": description,
        "seconds": None,
        "recovered": True,
    }


# --------------------------------------------------------------------------- lock owners


def owner_record(description: str, key: str) -> dict:
    """Who holds a spec's lock: pid, host, since (local ISO time), spec description and key."""
    now = datetime.datetime.now().astimezone()
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "host_id": host_identity(),
        "since": now.isoformat(timespec="seconds"),
        "spec": description,
        "key": key,
    }


def write_owner(path: Path, record: dict) -> None:
    """Write an owner record next to a lock (atomic, not fsync'ed: it is only informational)."""
    write_atomic(path, [json.dumps(record).encode("utf-8")], durable=False)


def read_owner(path: Path) -> dict | None:
    """The owner record at ``path``; None if absent, unreadable, or left by a dead process on this host."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        pid = int(record["pid"]) if isinstance(record, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, or caught between the holder's write and its rename
    if pid is None:
        return None
    if record.get("host_id") == host_identity() and not pid_alive(pid):
        return None  # a killed holder's record; its lock is already free
    return record


def remove_owner(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def since_text(since: str | None) -> str:
    """``11:02:03`` for a time today (local), ``2026-11-21 11:02:03`` otherwise, from an ISO time."""
    try:
        when = datetime.datetime.fromisoformat(str(since)).astimezone()
    except (TypeError, ValueError):
        return str(since)
    if when.date() == datetime.datetime.now().astimezone().date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M:%S")


def holder_text(holder: dict | None) -> str:
    """``pid 1234 on host h (since 11:02:03)``, or a phrase for an unknown holder."""
    if not holder:
        return "another process (it left no owner record)"
    return f"pid {holder.get('pid')} on host {holder.get('host')} (since {since_text(holder.get('since'))})"
