"""What one endpoint can do: its structured-output form, the schema bounds its grammar engine
enforces, its context per slot, its slots, its tokenizer and its repetition control.

Detected once (the first probe, or the first call) from what the server says about itself:
``/v1/models`` (``owned_by``), llama.cpp's ``/props`` (context and slots), llama-cpp-python's
``/extras/tokenize``; and corrected by what a refused request's body says, whatever its status
code (llama-cpp-python refuses ``json_schema`` with HTTP 500). Remembered for the life of the
endpoint.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

from spanlens_lsp.enrichment.prompt.schema import BOUND_KEYWORDS


class OutputForm(str, enum.Enum):
    """How the reply's JSON schema is asked for. The value is what doctor shows."""

    #: ``grammar: "%llguidance {}\nstart: %json {schema}"`` with the schema's ``x-guidance``
    #: asking for JSON on one line, one space after each separator: llama.cpp built with
    #: llguidance (the built-in engine). A small model otherwise spends a seventh of its reply
    #: tokens on line breaks and indentation (152 tokens a reply as written, 130 on one line).
    COMPACT_GRAMMAR = "llguidance-compact"
    #: ``response_format: {type: json_schema, json_schema: {schema}}`` (OpenAI, llama.cpp, vLLM).
    JSON_SCHEMA = "json_schema"
    #: ``response_format: {type: json_object, schema}`` (llama-cpp-python's own form).
    JSON_OBJECT_SCHEMA = "json_object+schema"
    #: ``response_format: {type: json_object}``: valid JSON, the schema only in the prompt.
    JSON_OBJECT = "json_object"
    #: No ``response_format`` at all: the schema only in the prompt.
    PROMPT = "prompt-only"

    def next_weaker(self) -> OutputForm | None:
        """The form to try when the server refuses this one."""
        order = list(OutputForm)
        index = order.index(self)
        return order[index + 1] if index + 1 < len(order) else None

    @property
    def schema_in_prompt(self) -> bool:
        """The server does not take the schema: the prompt must carry it."""
        return self in (OutputForm.JSON_OBJECT, OutputForm.PROMPT)


#: Bound keywords llama.cpp's JSON-schema-to-grammar conversion enforces.
LLAMA_CPP_BOUNDS = BOUND_KEYWORDS
#: llama-cpp-python 0.3.x (checked by experiment): maxLength, min/maxItems and enum are
#: enforced; minimum/maximum are ignored; a ``pattern`` makes its converter give up on the
#: whole grammar (replies then lose required keys), so it is never sent.
LLAMA_CPP_PYTHON_BOUNDS = frozenset({"maxLength", "minLength", "maxItems", "minItems", "enum"})


@dataclass(slots=True)
class Capabilities:
    """One endpoint's detected abilities (see the module docstring)."""

    form: OutputForm = OutputForm.JSON_SCHEMA
    #: "llama.cpp", "llama-cpp-python", "ollama", or "openai-compatible" (unknown engine).
    engine: str = "openai-compatible"
    #: Bound keywords the engine enforces; the others are stripped from the schema it gets
    #: (``enum`` is plain JSON Schema every structured-output mode takes, OpenAI strict too).
    bounds: frozenset[str] = field(default_factory=lambda: frozenset({"enum"}))
    #: Context tokens one request may use (the server's context divided by its slots).
    context_per_slot: int | None = None
    #: Requests the server runs at once; spanlens never sends more.
    slots: int | None = None
    #: Path of the server's tokenizer endpoint, if it has one.
    tokenizer: str | None = None
    #: The repetition control the server takes: "repeat_penalty" or "frequency_penalty".
    repetition_key: str = "frequency_penalty"
    #: Whether detection ran (a failed probe leaves the defaults and tries again later).
    detected: bool = False
    #: Whether doctor's tiny structured-output request came back valid (None: not tried).
    replies_valid: bool | None = None

    def as_json(self) -> dict[str, object]:
        """What `spanlens doctor --json` reports."""
        return {
            "engine": self.engine,
            "structured_output": self.form.value,
            "bounds": sorted(self.bounds),
            "context_per_slot": self.context_per_slot,
            "slots": self.slots,
            "tokenizer": self.tokenizer,
            "repetition": self.repetition_key,
            "replies_valid": self.replies_valid,
        }


#: llguidance's JSON options: no line breaks or indentation, one space after each separator.
#: Not tight separators: Qwen's tokenizer has one token for `","` (a string's end, a comma and
#: the next string's start), which commits a small model to another item where it meant to
#: close the list; it then filled it with a key's name ("description") or with the rest of
#: the object inside the string (run 12 of bench_quality: 10 of 44 replies rejected so).
COMPACT_JSON = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def compact_json_grammar(schema: dict[str, object]) -> str:
    """The llguidance grammar of ``schema`` written as compact JSON (form ``COMPACT_GRAMMAR``)."""
    return "%llguidance {}\nstart: %json " + json.dumps({**schema, "x-guidance": COMPACT_JSON})


def refuses_response_format(status: int | None, body: str) -> bool:
    """Whether a refused request's body says the ``response_format`` was the problem (any
    status: llama-cpp-python answers 500 for a validation error)."""
    if status is None or status < 400 or status in (401, 403, 404, 429):
        return False
    lowered = body.lower()
    return (
        "response_format" in lowered
        or "json_schema" in lowered
        or "'text' or 'json_object'" in lowered
        or ("grammar" in lowered and "schema" in lowered)
        or "llguidance" in lowered
    )


def apply_engine(caps: Capabilities, engine: str) -> None:
    """Set what an engine is known to do (form, bounds, tokenizer, repetition control)."""
    caps.engine = engine
    if engine == "llama.cpp":
        caps.form = OutputForm.JSON_SCHEMA
        caps.bounds = LLAMA_CPP_BOUNDS
        caps.tokenizer = "/tokenize"
        caps.repetition_key = "repeat_penalty"
    elif engine == "llama-cpp-python":
        caps.form = OutputForm.JSON_OBJECT_SCHEMA
        caps.bounds = LLAMA_CPP_PYTHON_BOUNDS
        caps.tokenizer = "/extras/tokenize/count"
        caps.repetition_key = "repeat_penalty"
        caps.slots = 1  # its server runs one completion at a time
