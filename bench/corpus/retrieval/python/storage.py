"""Files on disk: settings, checksums, rotation of logs and an on-disk cache."""

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def load_settings(path, defaults=None):
    """Read configuration values from a JSON file, falling back to defaults for missing keys."""
    merged = dict(defaults or {})
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object")
    merged.update(data)
    return merged


def atomic_write(path, data):
    """Write bytes to a file so that readers never see it half written."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def file_digest(path, chunk_size=1 << 16):
    """Compute the SHA-256 checksum of a file without reading it all into memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def rotate_logs(path, keep=5):
    """Rename app.log to app.log.1 and shift older copies up, deleting the oldest."""
    for index in range(keep - 1, 0, -1):
        older = f"{path}.{index}"
        if os.path.exists(older):
            os.replace(older, f"{path}.{index + 1}")
    if os.path.exists(path):
        os.replace(path, f"{path}.1")
    oldest = f"{path}.{keep + 1}"
    if os.path.exists(oldest):
        os.remove(oldest)


def find_files(root, suffix):
    """Walk a directory tree and list every file whose name ends with a given extension."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(os.path.join(dirpath, f) for f in filenames if f.endswith(suffix))
    return sorted(found)


def disk_usage(root):
    """Add up the sizes in bytes of all files below a folder."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                continue
    return total


def remove_older_than(root, seconds):
    """Delete files that have not been modified for a given number of seconds."""
    cutoff = time.time() - seconds
    removed = 0
    for entry in Path(root).iterdir():
        if entry.is_file() and entry.stat().st_mtime < cutoff:
            entry.unlink()
            removed += 1
    return removed


def copy_tree_safely(source, dest):
    """Copy a directory to a new location, refusing to overwrite one that exists."""
    if os.path.exists(dest):
        raise FileExistsError(dest)
    shutil.copytree(source, dest, symlinks=True)


class DiskCache:
    """A key-value cache that keeps each entry in its own file with an expiry time."""

    def __init__(self, folder, ttl=3600):
        self.folder = Path(folder)
        self.ttl = ttl
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key):
        return self.folder / hashlib.sha1(key.encode()).hexdigest()

    def get(self, key):
        """Return the stored value for a key, or None when it is absent or has expired."""
        path = self._path(key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if record["expires"] < time.time():
            path.unlink(missing_ok=True)
            return None
        return record["value"]

    def set(self, key, value):
        """Store a value under a key until the cache's time to live runs out."""
        record = {"expires": time.time() + self.ttl, "value": value}
        atomic_write(self._path(key), json.dumps(record).encode())

    def clear(self):
        """Delete every entry of the cache."""
        for entry in self.folder.iterdir():
            entry.unlink()
