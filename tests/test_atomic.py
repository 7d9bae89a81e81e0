import pytest

from nlp_envs.atomic import atomic_write


def test_atomic_write_replaces_the_whole_file(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    atomic_write(target, lambda handle: handle.write(b"old"))
    atomic_write(target, lambda handle: handle.write(b"new content"))
    assert target.read_bytes() == b"new content"
    assert [path.name for path in target.parent.iterdir()] == ["file.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def write_then_fail(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, write_then_fail)
    assert target.read_bytes() == b"old"
    assert [path.name for path in tmp_path.iterdir()] == ["file.bin"]


def test_check_writable_names_why_a_path_cannot_be_written(tmp_path):
    from nlp_envs.atomic import NotWritableError, check_writable

    assert check_writable(tmp_path / "new" / "file.bin") == tmp_path / "new" / "file.bin"
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(NotWritableError, match="it is a folder"):
        check_writable(tmp_path)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(NotWritableError, match="is a file, not a folder"):
        check_writable(tmp_path / "plain" / "file.bin")
    with pytest.raises(NotWritableError, match="does not exist; create it first"):
        check_writable(tmp_path / "missing" / "file.bin", create_folders=False)
