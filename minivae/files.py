"""Files that survive interruptions: atomic writes, the leftovers of killed writes, one run per
folder.

    with atomic_write(path) as f: ...    a temporary file beside `path`, flushed to disk (fsync),
                                         then renamed over `path`: a reader sees the old file or
                                         the whole new one, never half of it
    write_json(path, obj)                obj as strict, indented JSON, written atomically
    sweep(folder, pattern, older_than)   delete what killed writes left behind (.tmp-*, *.part):
                                         a file unchanged for a minute is no live write's
    FolderLock(folder)                   one run at a time writes into a folder
    check_writable(folder)               fail before the work starts, naming the folder
    strict_json(obj)                     obj with NaN and ±Infinity as None: JSON has neither

A rename is atomic only within one file system, so temporary files sit beside their targets. They
get the mode an ordinary new file gets (0o666 less the umask: 0644 under umask 022), not the 0600
of `tempfile.mkstemp`.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import IO, Iterator

try:
    import fcntl  # POSIX
except ImportError:  # Windows
    fcntl = None
    import msvcrt

TEMP_PREFIX = ".tmp-"  # atomic_write's temporary files: `.tmp-XXXXXXXX`
STALE = 60.0  # seconds unchanged after which a temporary file is a killed write's, not a live one's


def file_mode() -> int:
    """The mode open() gives a new file: 0o666 less the process's umask (read from /proc where
    Linux shows it, so no other thread ever sees the umask changed)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; when the block completes, flush it to disk and rename
    it over `path`. If the block fails, remove it; if the process is killed, `sweep` removes it
    later."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
    try:
        os.chmod(tmp, file_mode())  # mkstemp made it private; a saved file need not be
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_folder(folder)


def write_json(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented, strict JSON, atomically (temporary file, then rename). JSON has no
    NaN or Infinity: such a number is written as null, with a warning naming where it was."""
    obj, replaced = strict_json(obj)
    if replaced:
        warnings.warn(f"{path}: non-finite numbers written as null at {', '.join(replaced)}",
                      stacklevel=2)
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, allow_nan=False)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the system allows it."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the rename itself stands
        pass
    finally:
        os.close(fd)


def sweep(folder: str | os.PathLike, pattern: str, older_than: float = 0.0) -> list[Path]:
    """Delete the files in `folder` matching the glob `pattern` whose last change is more than
    `older_than` seconds ago (0: all of them): the temporary files of writes that were killed.
    Returns the paths removed."""
    removed = []
    now = time.time()
    for path in Path(folder).glob(pattern):
        try:
            if path.is_file() and now - path.stat().st_mtime >= older_than:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # its writer finished (renamed it) or another sweep took it
            pass
    return removed


def check_writable(folder: str | os.PathLike) -> None:
    """Create `folder` if need be and make sure a file can be written into it; otherwise raise
    the OSError with the folder's path in its message."""
    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise type(e)(e.errno, f"cannot write into the folder {folder}: {e.strerror}") from e


class FolderLock:
    """An exclusive lock on a folder, so that two runs cannot write into it at once: an open
    lock file, `folder/.minivae.lock`, locked with flock (POSIX) or msvcrt.locking (Windows).
    The operating system drops the lock when the process ends, however it ends, so a killed run
    leaves no stale lock. A folder this process has locked already is taken over: a run that
    stopped on an error in this process never released it."""

    NAME = ".minivae.lock"
    _held: dict[str, "FolderLock"] = {}  # this process's locks, by real path

    def __init__(self, folder: str | os.PathLike):
        self.folder = os.path.realpath(folder)
        previous = FolderLock._held.pop(self.folder, None)
        if previous is not None:
            previous.release()
        self.path = os.path.join(self.folder, self.NAME)
        self.file = open(self.path, "a+")
        try:
            if fcntl is not None:
                fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                msvcrt.locking(self.file.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            raise BlockingIOError(
                f"another run is writing into {folder} (process {holder}, lock file "
                f"{self.path}); wait for it to finish, or choose another output folder") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()
        FolderLock._held[self.folder] = self

    @classmethod
    def release_folder(cls, folder: str | os.PathLike) -> None:
        """Release this process's lock on `folder`, if it holds one."""
        lock = cls._held.get(os.path.realpath(folder))
        if lock is not None:
            lock.release()

    def release(self) -> None:
        """Unlock (closing the lock file unlocks it); the file itself stays, empty of meaning."""
        if not self.file.closed:
            self.file.close()
        if FolderLock._held.get(self.folder) is self:
            del FolderLock._held[self.folder]


def strict_json(obj, where: str = "") -> tuple[object, list[str]]:
    """obj with every NaN and ±Infinity float replaced by None, so that json.dump can write it as
    strict JSON (null); and the places replaced, as 'key/0/key' paths."""
    replaced: list[str] = []

    def clean(value, at):
        if isinstance(value, float) and not math.isfinite(value):
            replaced.append(at or "/")
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{at}/{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v, f"{at}/{i}") for i, v in enumerate(value)]
        return value

    return clean(obj, where), replaced
