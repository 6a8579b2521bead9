"""A small on-disk cache."""

import json
import os


class DiskCache:
    """Keeps JSON values in one file per key under a directory."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def get(self, key: str, default: object = None) -> object:
        """The value stored under ``key``, or ``default`` when there is none."""
        path = os.path.join(self.root, key + ".json")
        if not os.path.exists(path):
            return default
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)


def clamp(value: float, low: float, high: float) -> float:
    """``value`` limited to the range [low, high]."""
    if low > high:
        raise ValueError("low must not exceed high")
    return max(low, min(value, high))
