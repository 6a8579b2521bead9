"""Which embedding endpoints are in force: the configured ones, else the built-in model.

``[[embeddings]]`` from the user always wins, and ``embeddings = []`` means none (search by
keywords). When nothing is configured, the built-in embedding model (``spanlens model install
all-minilm-l6-v2``) is used if it is installed, through the built-in engine; otherwise search
is by keywords and :func:`embedding_note` says how to install it.
"""

from __future__ import annotations

from spanlens_lsp.enrichment.backends.local import UNSTARTED_URL
from spanlens_lsp.localmodel.catalog import EMBEDDING_MODEL, get_model
from spanlens_lsp.localmodel.engine import LOCAL_EXTRA_HINT, engine_installed
from spanlens_lsp.localmodel.paths import installed_model_path
from spanlens_lsp.settings import EmbeddingSettings, Settings

#: The name of the built-in embedding endpoint when spanlens picks it.
BUILT_IN_EMBEDDING = "built-in"
#: What a user without any embedding endpoint is told (doctor, status).
INSTALL_EMBEDDING_HINT = (
    f"search by meaning: run `spanlens model install {EMBEDDING_MODEL}` (87 MiB) to use the "
    "built-in embedding model, or configure [[embeddings]]"
)


def builtin_embedding_settings(settings: Settings) -> EmbeddingSettings:
    """The embedding endpoint of the built-in engine with the built-in embedding model (texts
    cut at its catalog entry's ``max_text_chars``)."""
    endpoint = EmbeddingSettings(
        name=BUILT_IN_EMBEDDING,
        provider="local",
        url=UNSTARTED_URL,
        model=EMBEDDING_MODEL,
        max_parallel=1,
        timeout=settings.local.timeout,
    )
    try:
        bound = get_model(EMBEDDING_MODEL).max_text_chars
    except ValueError:  # a catalog without it (SPANLENS_MODEL_CATALOG) or one unreadable
        bound = None
    if bound:
        endpoint.max_chars = bound
    return endpoint


def builtin_installed() -> bool:
    """Whether the built-in embedding model is installed, its bytes verified (a catalog
    without it, ``SPANLENS_MODEL_CATALOG``, has it not installed)."""
    try:
        return installed_model_path(EMBEDDING_MODEL) is not None
    except ValueError:
        return False


def embedding_endpoints(settings: Settings) -> list[EmbeddingSettings]:
    """The embedding endpoints in force: the configured ones (``[]`` when the user said
    none); else the built-in model's, if it and the engine's package are installed; else
    none."""
    if settings.embeddings_configured or settings.embeddings:
        return list(settings.embeddings)
    if builtin_installed() and engine_installed():
        return [builtin_embedding_settings(settings)]
    return []


def embedding_source(settings: Settings) -> str | None:
    """Where the embedding endpoints in force come from: ``configured`` (``[[embeddings]]``),
    ``built-in`` (nothing configured, the built-in model installed) or None (none in force)."""
    if not embedding_endpoints(settings):
        return None
    return "configured" if settings.embeddings_configured or settings.embeddings else "built-in"


def embedding_note(settings: Settings) -> str | None:
    """One line for a user whose search has no embedding endpoint and could have the built-in
    one; None when an endpoint is in force or the user configured none on purpose."""
    if settings.embeddings_configured or settings.embeddings:
        return None
    if not builtin_installed():
        return INSTALL_EMBEDDING_HINT
    if not engine_installed():
        return f"the built-in embedding model is installed but not its engine: {LOCAL_EXTRA_HINT}"
    return None
