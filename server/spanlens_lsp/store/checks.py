"""Which database files were found sound, so an open need not run ``quick_check`` again.

This process remembers each file it checked; a writer also leaves a stamp beside the file
(``index.db.checked``: its inode, size and mtime), so the next process that finds the file
unchanged pays no check either. A rebuild forgets the old file (:func:`forget_checked`).
"""

from __future__ import annotations

import threading
from pathlib import Path

#: (path, inode, device, size, mtime): a file exactly as it was when checked.
CheckKey = tuple[str, int, int, int, int]

#: Keys of database files this process found sound, so the connections a server opens at
#: start check the file once (WAL writes leave it unchanged).
_checked: set[CheckKey] = set()
_checked_lock = threading.Lock()


def check_key(path: Path) -> CheckKey | None:
    """What identifies the file at ``path`` as it is now (None when it cannot be read)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (str(path), info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns)


def found_sound(path: Path, key: CheckKey) -> bool:
    """Whether a check passed on the file exactly as ``key`` describes it, in this process
    or (by its stamp) in another."""
    return key in _checked or _stamp_matches(path, key)


def mark_sound(path: Path, key: CheckKey, *, stamp: bool) -> None:
    """Remember that the file ``key`` describes passed the check; ``stamp`` (a writer) also
    leaves the stamp for other processes."""
    with _checked_lock:
        _checked.add(key)
    if stamp:
        _write_stamp(path, key)


def forget_checked(path: Path) -> None:
    """Make the next open of ``path`` in this process check it again (after a rebuild)."""
    with _checked_lock:
        _checked.difference_update({key for key in _checked if key[0] == str(path)})


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".checked")


def _stamp_matches(path: Path, key: CheckKey) -> bool:
    """Whether the file is exactly as it was when a check last passed (same inode, size and
    mtime, nothing pending in the WAL): a warm `spanlens index` then pays no check."""
    try:
        if Path(str(path) + "-wal").stat().st_size:
            return False
    except OSError:
        pass
    try:
        return _stamp_path(path).read_text() == " ".join(map(str, key[1:]))
    except (OSError, UnicodeDecodeError):
        return False


def _write_stamp(path: Path, key: CheckKey) -> None:
    try:
        _stamp_path(path).write_text(" ".join(map(str, key[1:])))
    except OSError:
        pass  # no stamp: the next open checks again
