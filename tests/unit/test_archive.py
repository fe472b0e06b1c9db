"""Code archive checks: what an upload must pass before it is stored or unpacked."""

import io
import stat
import zipfile

import pytest
from nanogrid_protocol import limits
from nanogrid_protocol.archive import ArchiveError, build_single_file_archive, check_archive, extract_archive


def make_zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_check_accepts_good_archive():
    data = make_zip({"main.py": b"print(1)\n", "lib/util.py": b"X = 1\n"})

    names = [entry.filename for entry in check_archive(data)]

    assert names == ["main.py", "lib/util.py"]


def test_check_rejects_parent_path():
    data = make_zip({"main.py": b"", "../evil.py": b"x"})

    with pytest.raises(ArchiveError) as excinfo:
        check_archive(data)

    assert "../evil.py" in str(excinfo.value)
    assert ".." in str(excinfo.value)


def test_check_rejects_nested_parent_path():
    data = make_zip({"main.py": b"", "lib/../../evil.py": b"x"})

    with pytest.raises(ArchiveError) as excinfo:
        check_archive(data)

    assert "lib/../../evil.py" in str(excinfo.value)


@pytest.mark.parametrize("name", ["/etc/cron.d/evil", "C:/evil.py", "lib\\evil.py"])
def test_check_rejects_absolute_path(name):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", b"")
        # ZipInfo keeps the name as given; writestr(str) would strip a leading slash.
        archive.writestr(zipfile.ZipInfo(name), b"x")

    with pytest.raises(ArchiveError) as excinfo:
        check_archive(buffer.getvalue())

    assert "absolute path" in str(excinfo.value)


def test_check_rejects_symlink():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", b"")
        link = zipfile.ZipInfo("secrets")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/shadow")

    with pytest.raises(ArchiveError) as excinfo:
        check_archive(buffer.getvalue())

    assert "symbolic link" in str(excinfo.value)
    assert "secrets" in str(excinfo.value)


def test_check_rejects_zip_bomb():
    # Zeros deflate about 1000:1, so this archive is small but unpacks past the limit.
    zeros = bytes(limits.MAX_CODE_UNPACKED_BYTES // 2 + 1)
    data = make_zip({"main.py": b"", "a.bin": zeros, "b.bin": zeros})
    assert len(data) < limits.MAX_CODE_ZIP_BYTES

    with pytest.raises(ArchiveError) as excinfo:
        check_archive(data)

    assert f"more than {limits.MAX_CODE_UNPACKED_BYTES} bytes" in str(excinfo.value)


def test_check_rejects_oversized_archive():
    data = bytes(limits.MAX_CODE_ZIP_BYTES + 1)

    with pytest.raises(ArchiveError) as excinfo:
        check_archive(data)

    assert str(limits.MAX_CODE_ZIP_BYTES) in str(excinfo.value)


def test_check_rejects_missing_main():
    data = make_zip({"lib/main.py": b"", "handler.py": b""})

    with pytest.raises(ArchiveError) as excinfo:
        check_archive(data)

    assert "main.py" in str(excinfo.value)


def test_check_rejects_non_zip():
    with pytest.raises(ArchiveError) as excinfo:
        check_archive(b"print('not a zip')")

    assert "not a valid zip archive" in str(excinfo.value)


def test_extract_writes_files(tmp_path):
    data = make_zip({"main.py": b"print(1)\n", "lib/util.py": b"X = 1\n"})

    extract_archive(data, tmp_path)

    assert (tmp_path / "main.py").read_bytes() == b"print(1)\n"
    assert (tmp_path / "lib" / "util.py").read_bytes() == b"X = 1\n"
    assert stat.S_IMODE((tmp_path / "main.py").stat().st_mode) == 0o644


def test_extract_writes_nothing_for_bad_archive(tmp_path):
    data = make_zip({"main.py": b"", "../evil.py": b"x"})

    with pytest.raises(ArchiveError):
        extract_archive(data, tmp_path / "code")

    assert not (tmp_path / "evil.py").exists()
    assert not (tmp_path / "code").exists()


def test_single_file_archive_passes_check():
    data = build_single_file_archive("print('hi')\n")

    entries = check_archive(data)

    assert [entry.filename for entry in entries] == ["main.py"]
