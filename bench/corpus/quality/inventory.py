"""A small stock inventory kept in memory and saved as JSON."""

import json
import subprocess
import urllib.request


def load_config(path):
    """Read a JSON object of settings from ``path``."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def slugify(text, max_len=40):
    words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
    return "-".join(words)[:max_len]


def parse_duration(text):
    """Seconds in a duration such as ``90s``, ``5m`` or ``2h``."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise ValueError(f"bad duration: {text!r}")
    return int(number) * units[unit]


class Inventory:
    """Counts of items by name."""

    def __init__(self, items=None):
        self.items = dict(items or {})

    def add(self, name, count=1):
        if count <= 0:
            raise ValueError("count must be positive")
        self.items[name] = self.items.get(name, 0) + count

    def remove(self, name):
        """Forget ``name`` and return how many there were."""
        return self.items.pop(name)

    def total(self):
        return sum(self.items.values())

    def save(self, path):
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.items, handle, indent=2, sort_keys=True)


def run_command(args, timeout=10):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def fetch_text(url, encoding="utf-8"):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode(encoding)
