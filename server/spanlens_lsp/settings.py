"""The settings' types and defaults: a dataclass per spanlens.toml table (see
spanlens_lsp.config)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A configuration problem; the message names the key and the source."""


@dataclass(slots=True)
class IndexSettings:
    """How the workspace is walked and parsed."""

    max_file_size: int = 1024 * 1024
    #: Extra ignore patterns (gitignore syntax), on top of .gitignore and .spanlensignore.
    exclude: list[str] = field(default_factory=list)
    #: Worker processes for parsing; 0 = one per core.
    workers: int = 0


@dataclass(slots=True)
class RouterSettings:
    """Thresholds that pick a span's starting tier from its facts."""

    small_max_lines: int = 60
    small_max_nesting: int = 4
    small_max_tokens: int = 900
    large_max_tokens: int = 6000


@dataclass(slots=True)
class EnrichmentSettings:
    """How spans are turned into enrichments."""

    #: Escalation order of tiers.
    tiers: list[str] = field(default_factory=lambda: ["small", "large", "remote"])
    batch: bool = True
    batch_token_budget: int = 2000
    batch_window_lines: int = 100
    batch_max_spans: int = 8
    #: Failures after which a span is shown as failed until retried or changed.
    max_failures: int = 3
    #: Retries of one backend before failing over to the next.
    retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    #: Invalid replies in one tier before escalating early.
    max_invalid_per_tier: int = 2
    breaker_threshold: int = 5
    breaker_reset: float = 30.0
    #: Retry delay of a failed span: base * 2**(failures-1) seconds, capped.
    failure_retry_base: float = 60.0
    failure_retry_max: float = 3600.0
    #: `spanlens enrich` waits out rate limits and open breakers; it stops when nothing
    #: could make progress for this many seconds.
    give_up_after: float = 300.0
    router: RouterSettings = field(default_factory=RouterSettings)


@dataclass(slots=True)
class BackendSettings:
    """One model endpoint. Several in one tier = failover and load spreading."""

    name: str = "local"
    tier: str = "small"
    provider: str = "ollama"
    url: str = "http://127.0.0.1:11434"
    model: str = "qwen2.5-coder:7b"
    max_parallel: int = 2
    timeout: float = 120.0
    #: Name of the environment variable that holds the API key (never the key itself).
    api_key_env: str | None = None
    #: Ollama keep_alive: how long the model stays resident after a call.
    keep_alive: str = "30m"
    #: Context window in tokens (Ollama num_ctx; also used to route oversized spans up).
    context_tokens: int = 8192
    temperature: float = 0.1
    #: Repetition penalty for engines that take one (llama.cpp, llama-cpp-python, Ollama):
    #: llama-server's default is off, and small models loop without it. None = not sent.
    repeat_penalty: float | None = 1.1
    #: The engine behind an OpenAI-compatible URL, when detection cannot see it (a LiteLLM
    #: proxy in front of llama.cpp servers): "llama.cpp", "llama-cpp-python" or
    #: "openai-compatible". None = detected from the server.
    engine: str | None = None
    #: OpenAI-style ``frequency_penalty``, sent to servers without ``repeat_penalty`` when set.
    frequency_penalty: float | None = None
    #: Prices in currency units per million tokens, for `spanlens stats`; local = 0.
    price_in: float = 0.0
    price_out: float = 0.0
    #: Whether the endpoint is remote. None = decided from the URL (see :func:`url_is_local`).
    remote: bool | None = None

    @property
    def is_remote(self) -> bool:
        """True unless the endpoint is on this machine (or declared local)."""
        return endpoint_is_remote(self.remote, self.url)


@dataclass(slots=True)
class EmbeddingSettings:
    """One embedding endpoint (``[[embeddings]]``): spans' vectors for search by meaning."""

    name: str = "embed"
    #: ``ollama`` (``/api/embed``) or ``openai`` (any OpenAI-compatible ``/v1/embeddings``).
    provider: str = "ollama"
    url: str = "http://127.0.0.1:11434"
    model: str = "nomic-embed-text"
    max_parallel: int = 2
    timeout: float = 60.0
    #: Name of the environment variable that holds the API key (never the key itself).
    api_key_env: str | None = None
    #: Texts sent in one request.
    batch_size: int = 32
    #: Characters of a text sent at most (the tail is cut): an endpoint refuses a whole request
    #: when one text is longer than its model's context. 2000 fits a 2,048-token context even
    #: for code; a llama.cpp server started with its default 512-token batch wants ~750.
    max_chars: int = 2000
    #: Whether the endpoint is remote. None = decided from the URL (see :func:`url_is_local`).
    remote: bool | None = None

    @property
    def is_remote(self) -> bool:
        """True unless the endpoint is on this machine (or declared local)."""
        return endpoint_is_remote(self.remote, self.url)


def endpoint_is_remote(remote: bool | None, url: str) -> bool:
    """An endpoint's ``remote`` setting, or when unset whether its URL is off this machine."""
    if remote is not None:
        return remote
    return not url_is_local(url)


def url_is_local(url: str) -> bool:
    """Whether ``url`` names this machine: its host, parsed, is exactly ``localhost`` or a
    loopback IP literal (127.0.0.0/8 in dotted-quad form, ``[::1]``, ``[::ffff:127.x.x.x]``).

    Anything else is remote, including names that merely start with ``127.`` or
    ``localhost`` (``127.0.0.1.evil.example``, ``localhost.evil.com``) and the numeric forms
    a resolver may or may not accept (``2130706433``, ``0x7f.1``, ``127.1``): remote is the
    side that keeps secrets back, so a doubtful host is remote.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address) and str(address) != host:
        return False  # only the canonical dotted quad (no leading zeros)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(slots=True)
class GpuSettings:
    """GPU sampling during local calls, and limits that pause local enrichment."""

    enabled: bool = True
    sample_interval: float = 0.5
    #: Pause local enrichment while free VRAM is below this many MiB (0 = never).
    min_free_vram_mb: int = 0
    #: Pause local enrichment while the GPU is hotter than this (°C, 0 = never).
    max_temperature_c: int = 0


@dataclass(slots=True)
class LspSettings:
    """What the editor shows, and when background work runs."""

    code_lens: str = "all"  # all | top | off
    diagnostics: str = "hint"  # off | hint | information
    idle_seconds: float = 10.0
    debounce_ms: int = 300


@dataclass(slots=True)
class DocgenSettings:
    """Per-file documentation written while idle."""

    enabled: bool = True
    #: Where docs go, relative to the workspace root (never outside it).
    dir: str = ".spanlens/docs"
    #: The tier whose model writes overviews; empty = the enrichment's starting tier, so the
    #: resident model is not swapped out.
    tier: str = ""


@dataclass(slots=True)
class LocalSettings:
    """The built-in engine (``spanlens model install``; see :mod:`spanlens_lsp.localmodel`)."""

    #: The catalog name of the model it runs.
    model: str = "qwen2.5-coder-1.5b"
    #: Minutes without a request after which the engine stops (it starts again when needed).
    idle_minutes: float = 15.0
    #: Threads; 0 = all cores but one, which is left to the editor.
    threads: int = 0
    #: Context of the engine's one slot, in tokens.
    context_tokens: int = 4096
    #: Seconds one call may take (a laptop CPU writes ~10 tokens/s with the 1.5B model).
    timeout: float = 300.0


@dataclass(slots=True)
class Settings:
    """All spanlens settings for one workspace."""

    index: IndexSettings = field(default_factory=IndexSettings)
    enrichment: EnrichmentSettings = field(default_factory=EnrichmentSettings)
    backends: list[BackendSettings] = field(default_factory=lambda: [BackendSettings()])
    gpu: GpuSettings = field(default_factory=GpuSettings)
    lsp: LspSettings = field(default_factory=LspSettings)
    docgen: DocgenSettings = field(default_factory=DocgenSettings)
    local: LocalSettings = field(default_factory=LocalSettings)
    #: Embedding endpoints; none = search by keywords only (see ``embeddings_configured``).
    embeddings: list[EmbeddingSettings] = field(default_factory=list)
    #: Whether ``embeddings`` came from the user (``embeddings = []`` included); when not, the
    #: built-in embedding model is used if it is installed
    #: (:func:`spanlens_lsp.embedding.builtin.embedding_endpoints`).
    embeddings_configured: bool = False
    #: Whether ``backends`` came from the user (a file, the environment, the editor); when
    #: not, :func:`spanlens_lsp.enrichment.backends.defaults.resolve_default_backends` picks them.
    backends_configured: bool = False
    #: Whether ``enrichment.batch`` came from the user; when not and the built-in engine is
    #: picked, it enriches one span a call (see
    #: :func:`spanlens_lsp.enrichment.backends.defaults.resolve_default_backends`).
    batch_configured: bool = False
    #: Where the settings came from, for `spanlens doctor`.
    sources: list[str] = field(default_factory=list)
    #: Things the user should know about how the settings were applied (shown by doctor and
    #: logged by the server), e.g. a workspace file's remote backend that was not trusted.
    notes: list[str] = field(default_factory=list)
