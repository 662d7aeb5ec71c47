"""pyvi.app.output: the output folder is checked before any work and left as it was by a failed run."""

import pytest

from pyvi.app.output import check_output_folder, output_folder


def test_check_output_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    assert check_output_folder(tmp_path) == tmp_path
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    with pytest.raises(ValueError, match="--out .* exists and is not a folder"):
        check_output_folder(tmp_path / "file")
    with pytest.raises(ValueError, match="cannot be created: .* is not a folder"):
        check_output_folder(tmp_path / "file" / "sub", option="--out")
    assert list(p.name for p in tmp_path.iterdir()) == ["file"]  # checking creates nothing


def test_success_keeps_everything(tmp_path):
    with output_folder(tmp_path / "a" / "b") as out:
        (out / "result.txt").write_text("done")
    assert (tmp_path / "a" / "b" / "result.txt").read_text() == "done"


def test_failure_removes_new_files_and_folders_but_keeps_old_ones_and_kept_names(tmp_path):
    with pytest.raises(RuntimeError), output_folder(tmp_path / "new" / "run") as out:
        (out / "half.png").write_text("x")
        (out / "sub" / "deeper").mkdir(parents=True)
        (out / "sub" / "deeper" / "part.md").write_text("x")
        raise RuntimeError("failed")
    assert list(tmp_path.iterdir()) == []

    old = tmp_path / "old"
    (old / "previous").mkdir(parents=True)
    (old / "previous" / "notes.txt").write_text("mine")
    with pytest.raises(KeyboardInterrupt), output_folder(old, keep=("checkpoint.pt",)) as out:
        (out / "checkpoint.pt").write_text("epoch 3")
        (out / "previous" / "new.txt").write_text("x")
        (out / "sub").mkdir()
        (out / "sub" / "checkpoint.pt").write_text("kept too")
        raise KeyboardInterrupt
    assert sorted(str(p.relative_to(old)) for p in old.rglob("*")) == [
        "checkpoint.pt", "previous", "previous/notes.txt", "sub", "sub/checkpoint.pt"]
