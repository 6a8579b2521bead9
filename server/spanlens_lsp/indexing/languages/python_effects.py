"""Python side effects: what a span's calls, ``global``/``nonlocal`` writes and ``os.environ``
uses say it does to the world (file I/O, network, logging, environment, ...)."""

from __future__ import annotations

from tree_sitter import Node, Query, QueryCursor

from spanlens_lsp.indexing.languages.common import text_of
from spanlens_lsp.indexing.languages.python_nodes import IDENTIFIER, PYTHON_LANGUAGE, Frame

# Run only over the few bodies that declare ``global``/``nonlocal`` names.
_TARGET_QUERY = Query(
    PYTHON_LANGUAGE,
    """
    (assignment left: (_) @target)
    (augmented_assignment left: (_) @target)
    (for_statement left: (_) @target)
    (for_in_clause left: (_) @target)
    (delete_statement (_) @target)
    (named_expression name: (_) @target)
    """,
)

# Run only over the few bodies whose text mentions ``environ``.
_ENVIRON_QUERY = Query(PYTHON_LANGUAGE, '((attribute) @environ (#eq? @environ "os.environ"))')

# Fixed call names and prefixes per side-effect category. A prefix ends with ".", so
# ``socket.`` matches ``socket.create_connection`` but not ``socketserver.x``.
_EFFECT_NAMES: dict[str, str] = {
    "open": "file_io",
    "io.open": "file_io",
    "os.open": "file_io",
    "codecs.open": "file_io",
    "os.remove": "file_io",
    "os.unlink": "file_io",
    "os.rename": "file_io",
    "os.renames": "file_io",
    "os.replace": "file_io",
    "os.mkdir": "file_io",
    "os.makedirs": "file_io",
    "os.rmdir": "file_io",
    "os.removedirs": "file_io",
    "os.truncate": "file_io",
    "os.symlink": "file_io",
    "os.link": "file_io",
    "os.chmod": "file_io",
    "os.chown": "file_io",
    "os.utime": "file_io",
    "os.listdir": "file_io",
    "os.scandir": "file_io",
    "os.walk": "file_io",
    "glob.glob": "file_io",
    "glob.iglob": "file_io",
    "urlopen": "network",
    "os.kill": "subprocess",
    "os.killpg": "subprocess",
    "os.system": "subprocess",
    "os.popen": "subprocess",
    "os.fork": "subprocess",
    "os.forkpty": "subprocess",
    "Popen": "subprocess",
    "asyncio.create_subprocess_exec": "subprocess",
    "asyncio.create_subprocess_shell": "subprocess",
    "os.getenv": "environment",
    "os.getenvb": "environment",
    "os.putenv": "environment",
    "os.unsetenv": "environment",
    "getenv": "environment",
    "print": "printing",
    "pprint": "printing",
    "pprint.pprint": "printing",
}
_EFFECT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("shutil.", "file_io"),
    ("tempfile.", "file_io"),
    ("requests.", "network"),
    ("httpx.", "network"),
    ("aiohttp.", "network"),
    ("urllib.request.", "network"),
    ("urllib3.", "network"),
    ("http.client.", "network"),
    ("socket.", "network"),
    ("ftplib.", "network"),
    ("smtplib.", "network"),
    ("asyncio.open_connection", "network"),
    ("asyncio.start_server", "network"),
    ("subprocess.", "subprocess"),
    ("os.exec", "subprocess"),
    ("os.spawn", "subprocess"),
    ("os.posix_spawn", "subprocess"),
    ("os.environ.", "environment"),
    ("os.environb.", "environment"),
    ("sys.stdout.", "printing"),
    ("sys.stderr.", "printing"),
    ("logging.", "logging"),
)
# Methods that read or write files whatever the receiver (pathlib.Path and friends), and
# the writes and flushes of file-like objects (``file.write(...)``, ``stream.flush()``).
_FILE_METHODS = frozenset(
    {
        "write_text",
        "read_text",
        "write_bytes",
        "read_bytes",
        "unlink",
        "mkdir",
        "rmdir",
        "touch",
        "write",
        "writelines",
        "flush",
    }
)
# Methods only sockets have (``send`` is left out: generators have it too).
_SOCKET_METHODS = frozenset({"sendall", "sendto", "sendfile", "recv", "recv_into", "recvfrom"})
_LOG_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "log", "fatal"}
)
_NOT_LOGGING = frozenset({"logging.getLogger", "logging.getLevelName", "logging.getLoggerClass"})

_effects_cache: dict[str, tuple[str, ...]] = {}


def _call_effects(callee: str) -> tuple[str, ...]:
    """Side-effect categories a call to ``callee`` implies (by name; nothing is resolved)."""
    cached = _effects_cache.get(callee)
    if cached is not None:
        return cached
    found: set[str] = set()
    category = _EFFECT_NAMES.get(callee)
    if category is not None:
        found.add(category)
    for prefix, category in _EFFECT_PREFIXES:
        if callee.startswith(prefix):
            found.add(category)
    if callee in _NOT_LOGGING:
        found.discard("logging")
    receiver, _, method = callee.rpartition(".")
    if receiver:
        if method in _FILE_METHODS and "printing" not in found:
            # ``sys.stdout.write`` prints; any other receiver of ``.write()`` is file-like.
            found.add("file_io")
        if method in _SOCKET_METHODS:
            found.add("network")
        if method in _LOG_METHODS and _is_logger_name(receiver.rpartition(".")[2]):
            found.add("logging")
    result = tuple(sorted(found))
    if len(_effects_cache) > 65536:
        _effects_cache.clear()
    _effects_cache[callee] = result
    return result


def _is_logger_name(name: str) -> bool:
    name = name.lower().lstrip("_")
    return name in ("log", "logger", "logging") or name.endswith(("logger", "_log"))


def side_effects_of(source: bytes, frame: Frame, calls: list[str]) -> list[str]:
    found: set[str] = set()
    cache = _effects_cache
    for callee in calls:
        effects = cache.get(callee)
        if effects is None:
            effects = _call_effects(callee)
        if effects:
            found.update(effects)
    body = frame.def_node.child_by_field_name("body")
    if body is None:
        return sorted(found)
    if "environment" not in found and source.find(b"environ", frame.start, frame.end) != -1:
        hits = QueryCursor(_ENVIRON_QUERY).captures(body).get("environ", [])
        if any(_owned_directly(frame, hit) for hit in hits):
            found.add("environment")
    if frame.globals or frame.nonlocals:
        written: set[str] = set()
        for target in QueryCursor(_TARGET_QUERY).captures(body).get("target", []):
            if _owned_directly(frame, target):
                written.update(IDENTIFIER.findall(text_of(source, target)))
        if written.intersection(frame.globals):
            found.add("global_write")
        if written.intersection(frame.nonlocals):
            found.add("nonlocal_write")
    return sorted(found)


def _owned_directly(frame: Frame, node: Node) -> bool:
    """True when ``node`` is in ``frame``'s body and not in the body of a nested def/class."""
    pos = node.start_byte
    # Direct children suffice: their bodies contain all deeper definitions.
    return not any(child.start <= pos < child.end for child in frame.children)


def has_own_error(def_node: Node) -> bool:
    """True when the error is in the definition itself, not only inside a nested span."""
    body = def_node.child_by_field_name("body")
    children = def_node.children + (body.children if body is not None else [])
    return any(c.type == "ERROR" or c.is_missing for c in children)
