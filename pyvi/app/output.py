"""The output folder of a command: checked before any work, created when the work starts, and left
as it was found when the run fails.

- :func:`check_output_folder` (before any work): ``--out`` must be a folder or a path where one can
  be created (not a file, not under a file, its nearest existing parent writable).
- :func:`output_folder` (around the work): creates the folder and its missing parents; if the run
  raises (an error or Ctrl-C), it deletes the files the run created and then the folders it created
  that are left empty, so a failed run into a new folder leaves nothing behind and one into an
  existing folder leaves the files that were there before. Files named in ``keep`` survive (``pyvi
  vae`` keeps ``checkpoint.pt``: the last finished epoch, to continue with ``--resume``). A file the
  run overwrote is not restored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["check_output_folder", "output_folder"]


def check_output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` as a Path if it is a folder or can be created as one; else a ValueError naming ``option``."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{option} {path} exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ValueError(f"{option} {path} is not writable")
        return path
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {path} cannot be created: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path} cannot be created: {parent} is not writable")
    return path


def _tree(path: Path) -> tuple[set[Path], set[Path]]:
    """(files, folders) under ``path``, recursively; empty when it does not exist."""
    files, folders = set(), set()
    for root, dirs, names in os.walk(path):
        folders.update(Path(root) / name for name in dirs)
        files.update(Path(root) / name for name in names)
    return files, folders


@contextmanager
def output_folder(path: str | os.PathLike, keep: tuple[str, ...] = ()) -> Iterator[Path]:
    """Create ``path`` (with its parents) for the work inside the ``with``; undo what a failed run created."""
    path = Path(path)
    created = []  # path and its missing parents, deepest first
    probe = path.absolute()
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    files_before, folders_before = _tree(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        files_after, folders_after = _tree(path)
        for file in files_after - files_before:
            if file.name not in keep:
                file.unlink(missing_ok=True)
        for folder in sorted(folders_after - folders_before, key=lambda p: len(p.parts), reverse=True):
            _remove_if_empty(folder)
        for folder in created:
            _remove_if_empty(folder)
        raise


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (a kept file, or files that were there before), or already gone
        pass
