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
