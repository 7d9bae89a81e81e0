"""Write a file so that a reader sees the old content or the new, never a torn one.

A crash, a full disk or a kill halfway through leaves the old file as it was: the new content goes
to a temporary file in the same folder (the same file system, so the rename is atomic), is flushed
to disk with ``fsync``, and only then replaces the target with ``os.replace``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then move it over ``path``.

    Args:
        path: the file to create or replace; its folder is created if missing.
        write: writes the whole new content to the binary handle it is given.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the folder is not writable or the disk is full; ``path`` is then unchanged and no
            temporary file is left behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)
    return target


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable where the platform allows opening a folder."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


class NotWritableError(ValueError):
    """A file path that could not be written: the message says why and how to fix it."""


def check_writable(path: str | os.PathLike[str], *, create_folders: bool = True) -> Path:
    """Refuse, before any long work, a file path that could not be written later; return it as a Path.

    Creates and removes a probe file in the nearest existing folder, the only test that also holds
    for read-only file systems and for root; the file itself is not created and nothing is left.

    Args:
        path: the file to be written.
        create_folders: whether the writer creates missing folders (else the folder must exist).

    Raises:
        NotWritableError: ``path`` is a folder, its folder is missing (and will not be created), a
            file stands where a folder should be, or the folder is not writable.
    """
    target = Path(path)
    if target.is_dir():
        raise NotWritableError(
            f"{str(target)!r}: it is a folder; give a file path inside it, such as {str(target / 'file')!r}."
        )
    folder = target.parent
    if not create_folders and not folder.is_dir():
        raise NotWritableError(f"{str(target)!r}: folder {str(folder)!r} does not exist; create it first.")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotWritableError(f"{str(target)!r}: {str(folder)!r} is a file, not a folder.")
    try:
        descriptor, probe = tempfile.mkstemp(dir=folder, prefix=".nlp-envs-write-check.")
    except OSError as error:
        raise NotWritableError(
            f"{str(target)!r}: the folder {str(folder)!r} is not writable ({error.strerror or error}); "
            "choose another path."
        ) from None
    os.close(descriptor)
    os.unlink(probe)
    return target
