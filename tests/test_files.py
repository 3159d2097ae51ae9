"""Atomic writes: a reader sees the old file or the new one, never a part; a failed writer leaves nothing."""
import pytest

from ablate.files import atomic_path, write_atomic


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_atomic(path, "old")
    write_atomic(path, b"new")
    assert path.read_text() == "new" and [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_a_failed_writer_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    path = tmp_path / "a.npz"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temp:
            assert temp.suffix == ".npz" and temp.parent == tmp_path     # numpy keeps a name ending in .npz
            temp.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.npz"]
