"""Function code archives: the checks an upload must pass and the extraction that a worker does.

The controller rejects a bad archive before storing it, and the worker checks again before it
writes a byte to disk, so an archive placed in S3 by other means cannot escape the cache folder.
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from nanogrid_protocol import limits

ENTRY_POINT = "main.py"


class ArchiveError(ValueError):
    """The code archive is invalid; the message names the entry and the rule it breaks."""


def build_single_file_archive(source: str) -> bytes:
    """Wrap the source of a single ``main.py`` in a zip archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(ENTRY_POINT, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        archive.writestr(info, source)
    return buffer.getvalue()


def check_archive(data: bytes) -> list[zipfile.ZipInfo]:
    """Check an archive and return its file entries; raise ArchiveError on the first problem."""
    if len(data) > limits.MAX_CODE_ZIP_BYTES:
        raise ArchiveError(
            f"the code archive is {len(data)} bytes, more than the limit of "
            f"{limits.MAX_CODE_ZIP_BYTES} bytes"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ArchiveError(f"the code is not a valid zip archive: {exc}") from exc

    files = []
    unpacked_bytes = 0
    for entry in entries:
        _check_entry_name(entry.filename)
        mode = entry.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"archive entry {entry.filename!r} is a symbolic link; links are not allowed")
        if entry.is_dir():
            continue
        unpacked_bytes += entry.file_size
        if unpacked_bytes > limits.MAX_CODE_UNPACKED_BYTES:
            raise ArchiveError(
                f"the code archive unpacks to more than {limits.MAX_CODE_UNPACKED_BYTES} bytes"
            )
        files.append(entry)

    if not any(entry.filename == ENTRY_POINT for entry in files):
        raise ArchiveError(f"the code archive has no {ENTRY_POINT} at its top level")

    # The sizes in a zip header can lie, so the real unpacked total is counted by decompressing.
    _unpack(archive, files, sink_for=lambda entry: None)
    return files


def extract_archive(data: bytes, destination: Path) -> None:
    """Check the archive, then write its files below ``destination``."""
    files = check_archive(data)
    archive = zipfile.ZipFile(io.BytesIO(data))

    def sink_for(entry: zipfile.ZipInfo):
        target = destination.joinpath(*PurePosixPath(entry.filename).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "wb")

    _unpack(archive, files, sink_for)
    for entry in files:
        destination.joinpath(*PurePosixPath(entry.filename).parts).chmod(0o644)


def _unpack(archive: zipfile.ZipFile, files: list[zipfile.ZipInfo], sink_for) -> None:
    """Decompress every file, writing to ``sink_for(entry)`` (None discards), and stop as soon as
    the real total passes the unpacked limit."""
    unpacked_bytes = 0
    for entry in files:
        sink = sink_for(entry)
        try:
            with archive.open(entry) as source:
                while chunk := source.read(64 * 1024):
                    unpacked_bytes += len(chunk)
                    if unpacked_bytes > limits.MAX_CODE_UNPACKED_BYTES:
                        raise ArchiveError(
                            f"the code archive unpacks to more than {limits.MAX_CODE_UNPACKED_BYTES} bytes"
                        )
                    if sink is not None:
                        sink.write(chunk)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError) as exc:
            raise ArchiveError(f"archive entry {entry.filename!r} cannot be unpacked: {exc}") from exc
        finally:
            if sink is not None:
                sink.close()


def _check_entry_name(name: str) -> None:
    path = PurePosixPath(name)
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"archive entry {name!r} has an absolute path; use paths relative to the archive root")
    if ".." in path.parts:
        raise ArchiveError(f"archive entry {name!r} points outside the archive with '..'")
