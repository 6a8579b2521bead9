"""Hover Markdown and plain text. Model output is untrusted: it is made inert, never interpreted.

No link, image, HTML tag or autolink can come out of a model's text, in CommonMark or in GFM
renderers (VS Code's marked, markdown-it with linkify): :func:`inline_markdown` escapes a
character only where it would form Markdown structure where it stands, so that editors which
show the source (Neovim, Emacs) see the model's words without stray backslashes. Words that a
linkifier would turn into links (``https://…``, ``www.…``, ``a@b.c``, ``name.io``) are shown
as code spans, which no renderer links. Code (the signature, the usage snippet) goes into
fences longer than any backtick run inside it. All of it passes :func:`clean_text` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from spanlens_lsp.presentation.state import FRESH, STALE, SpanView, describe_state
from spanlens_lsp.presentation.text import clean_text

_LANG_FENCE = {"tsx": "tsx", "typescript": "typescript", "javascript": "javascript"}

#: linkify-it's two-letter country TLDs (the fuzzy links of markdown-it's linkify).
_CC_TLDS = (
    "a[cdefgilmnoqrstuwxz]|b[abdefghijmnorstvwyz]|c[acdfghiklmnoruvwxyz]|d[ejkmoz]|e[cegrstu]"
    "|f[ijkmor]|g[abdefghilmnpqrstuwy]|h[kmnrtu]|i[delmnoqrst]|j[emop]|k[eghimnprwyz]"
    "|l[abcikrstuvy]|m[acdeghklmnopqrstuvwxyz]|n[acefgilopruz]|om|p[aefghklmnrstwy]|qa"
    "|r[eosuw]|s[abcdeghijklmnortuvxyz]|t[cdfghjklmnortvwz]|u[agksyz]|v[aceginu]|w[fs]|y[et]"
    "|z[amw]"
)
#: A word some renderer would make a link of: a URL scheme, ``www.``, an e-mail address, or a
#: dotted name ending in a top-level domain linkify-it knows (it links ``example.com``).
_LINKISH = re.compile(
    r"://|www\.|[^\s@]@[^\s@]*\.[^\s@]"
    r"|\b(?:https?|ftp|mailto|xmpp|javascript|vbscript|data|file|tel|irc):[^\s]"
    r"|[^\s.]\.(?:com|net|org|edu|gov|biz|pro|web|xxx|aero|asia|coop|info|museum|name|shop|рф"
    r"|" + _CC_TLDS + r")(?![\w-])",
    re.IGNORECASE,
)
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_HEADING = re.compile(r"#{1,6}(?:\s|$)")
_ORDERED = re.compile(r"([0-9]{1,9})([.)])(?:\s|$)")
_THEMATIC = re.compile(r"([-*_])(?:\s*\1){2,}\s*$")
_BACKTICKS = re.compile(r"`+")


def inline_markdown(text: Any, *, at_line_start: bool = True, in_emphasis: bool = False) -> str:
    """Untrusted ``text`` as Markdown that renders as exactly that text, on one line.

    Escapes only what would form structure where it stands: block markers at the start of a
    line (``#``, ``>``, list markers, fences, thematic breaks, ``[`` of a definition or task
    box); ``[`` that a later ``](`` could make a link; ``<`` before a tag or autolink; ``&`` of
    an entity; backslashes before punctuation; backtick runs that could pair into a code span;
    ``*``/``_``/``~`` runs that could open emphasis or strikethrough with a later closer
    (``in_emphasis``: every ``*``, as the text sits inside ``*…*``).
    Link-like words become code spans. ``at_line_start`` says whether the text begins a line.
    """
    words = clean_text(text, one_line=True).split(" ")
    # A link-like word becomes a code span, its trailing sentence punctuation stays prose
    # ("in `config.py`." rather than "in `config.py.`").
    code = [_code_part(word) for word in words]
    # Where code spans will be, the plain text must not hold a backtick that pairs with theirs.
    shadow = " ".join(
        "x" + word[len(part) :] if part else word for word, part in zip(words, code, strict=True)
    )
    escapes = _escape_positions(shadow, at_line_start, in_emphasis, any(code))
    out: list[str] = []
    position = 0
    for word, part in zip(words, code, strict=True):
        if out:
            out.append(" ")
            position += 1
        if part:
            out.append(_code_span(part))
            position += 1
            word = word[len(part) :]
        for offset, char in enumerate(word):
            if position + offset in escapes:
                out.append("\\")
            out.append(char)
        position += len(word)
    return "".join(out)


_TRAILING_PUNCTUATION = re.compile(r"[.,;:!?)\]'\"]+$")


def _code_part(word: str) -> str:
    """The part of ``word`` to show as a code span: the link-like word without its trailing
    punctuation, or the whole word where the shorter one would no longer look like a link;
    empty when ``word`` looks like no link."""
    if not word or _LINKISH.search(word) is None:
        return ""
    core = _TRAILING_PUNCTUATION.sub("", word)
    return core if core and _LINKISH.search(core) is not None else word


def escape_markdown(text: Any) -> str:
    """Untrusted text as inert Markdown at the start of a line (see :func:`inline_markdown`)."""
    return inline_markdown(text)


def _code_span(word: str) -> str:
    longest = max((len(m) for m in _BACKTICKS.findall(word)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if word.startswith("`") or word.endswith("`") else ""
    return f"{fence}{pad}{word}{pad}{fence}"


def _escape_positions(s: str, at_line_start: bool, in_emphasis: bool, has_code: bool) -> set[int]:
    """Indexes of the characters of ``s`` that need a backslash before them."""
    escapes = {index for index in range(len(s)) if _forms_inline_structure(s, index)}
    if at_line_start and s:
        marker = _block_marker(s)
        if marker is not None:
            escapes.add(marker)
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(s)]
    lengths = [end - start for start, end in runs]
    for (start, end), length in zip(runs, lengths, strict=True):
        if has_code or lengths.count(length) > 1:
            escapes.update(range(start, end))
    for char in "*_~":
        escapes.update(_delimiter_escapes(s, char, in_emphasis and char == "*"))
    return escapes


def _block_marker(s: str) -> int | None:
    """Where ``s``, at the start of a line, begins a block construct: the index to escape."""
    first = s[0]
    if first in ">[":
        return 0  # block quote; link definition, task box or footnote definition
    if (first == "#" and _HEADING.match(s)) or _THEMATIC.match(s):
        return 0
    if first in "-+*" and (len(s) == 1 or s[1] == " "):
        return 0  # a list item
    if first in "`~" and s.startswith(first * 3):
        return 0  # a fence (other backtick runs are handled as code spans)
    ordered = _ORDERED.match(s)
    return len(ordered.group(1)) if ordered else None


def _forms_inline_structure(s: str, index: int) -> bool:
    """Whether ``s[index]`` (a backslash, ``[``, ``<`` or ``&``) needs escaping where it is."""
    char = s[index]
    after = s[index + 1] if index + 1 < len(s) else ""
    if char == "\\":
        return after == "" or after in _ASCII_PUNCT
    if char == "[":
        return "](" in s[index + 1 :]
    if char == "<":
        return after != "" and (after.isalpha() or after in "/!?")
    return char == "&" and _ENTITY.match(s, index) is not None


def _delimiter_escapes(s: str, char: str, every: bool) -> set[int]:
    """Positions of ``char`` runs that could open emphasis (or strikethrough) in ``s``."""
    runs = []
    index = 0
    while index < len(s):
        if s[index] == char:
            end = index
            while end < len(s) and s[end] == char:
                end += 1
            runs.append((index, end))
            index = end
        else:
            index += 1
    escapes: set[int] = set()
    for number, (start, end) in enumerate(runs):
        before = s[start - 1] if start else " "
        after = s[end] if end < len(s) else " "
        if every:  # inside our own *…*, where any * could end or split it
            escapes.update(range(start, end))
            continue
        if after.isspace() or (char == "_" and before.isalnum()):
            continue  # cannot open
        if any(_can_close(s, char, later) for later in runs[number + 1 :]):
            escapes.update(range(start, end))
    return escapes


def _can_close(s: str, char: str, run: tuple[int, int]) -> bool:
    start, end = run
    before = s[start - 1] if start else " "
    after = s[end] if end < len(s) else " "
    if before.isspace():
        return False
    return not (char == "_" and after.isalnum())


def fenced(code: str, language: str) -> str:
    """A fenced code block that ``code`` cannot break out of."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{_LANG_FENCE.get(language, language)}\n{code}\n{fence}"


def render_markdown(view: SpanView, now: float | None = None) -> str:
    """The hover for one span: signature, enrichment (if any), parser facts, state line."""
    span = view.span
    facts = span.facts
    parts = [fenced(clean_text(facts.get("signature") or span.name), span.language)]
    data = view.enrichment["data"] if view.enrichment else None
    if data:
        if view.state == STALE:
            parts.append("*Previous version's summary; the code has changed since.*")
        parts.append(inline_markdown(data.get("summary", "")))
        for title, key in (
            ("Inputs", "inputs"),
            ("Outputs", "outputs"),
            ("Side effects", "side_effects"),
            ("Pitfalls", "pitfalls"),
        ):
            items = data.get(key) or []
            if items:
                parts.append(
                    f"**{title}**\n" + bullet_list(items, "⚠ " if key == "pitfalls" else "")
                )
        snippet = data.get("usage_snippet")
        if snippet:
            parts.append("**Usage**\n" + fenced(clean_text(snippet), span.language))
        tags = data.get("tags") or []
        if tags:
            # Not code spans: a backslash escape inside backticks would show literally.
            joined = ", ".join(clean_text(t, one_line=True) for t in tags)
            parts.append("Tags: " + inline_markdown(joined, at_line_start=False))
    else:
        doc = facts.get("docstring") or facts.get("doc")
        if doc:
            parts.append(inline_markdown(str(doc).split("\n\n")[0]))
    for title, key, items in method_sections(view):
        prefix = "⚠ " if key == "pitfalls" else ""
        lines = [
            f"- {prefix}`{_code_name(name)}`: {inline_markdown(item, at_line_start=False)}"
            if name
            else f"- {item}"
            for name, item in items
        ]
        parts.append(f"**{title}**\n" + "\n".join(lines))
    parts.append("**Parser facts**\n" + bullet_list(fact_lines(facts), "", escape=False))
    marker = "✓" if view.state == FRESH else "…"
    state = inline_markdown(describe_state(view, now), at_line_start=False, in_emphasis=True)
    parts.append(f"---\n*{marker} {state}*")
    return "\n\n".join(parts)


def render_plaintext(view: SpanView, now: float | None = None) -> str:
    """The same content as :func:`render_markdown`, for clients that prefer plain text."""
    span = view.span
    facts = span.facts
    lines = [clean_text(facts.get("signature") or span.name), ""]
    data = view.enrichment["data"] if view.enrichment else None
    if data:
        if view.state == STALE:
            lines.append("(previous version's summary; the code has changed since)")
        lines.append(clean_text(data.get("summary", ""), one_line=True))
        for title, key in (
            ("Inputs", "inputs"),
            ("Outputs", "outputs"),
            ("Side effects", "side_effects"),
            ("Pitfalls", "pitfalls"),
        ):
            items = data.get(key) or []
            if items:
                lines.append(f"{title}:")
                lines.extend(f"  - {clean_text(i, one_line=True)}" for i in items)
        if data.get("usage_snippet"):
            lines += ["Usage:", clean_text(data["usage_snippet"])]
        tags = data.get("tags") or []
        if tags:
            lines.append("Tags: " + ", ".join(clean_text(t, one_line=True) for t in tags))
    else:
        doc = facts.get("docstring") or facts.get("doc")
        if doc:
            lines.append(clean_text(str(doc).split("\n\n")[0], one_line=True))
    for title, _, items in method_sections(view):
        lines.append(f"{title}:")
        lines.extend(
            f"  - {_code_name(name)}: {clean_text(item, one_line=True)}" if name else f"  - {item}"
            for name, item in items
        )
    lines.append("Parser facts:")
    lines.extend(f"  - {line}" for line in fact_lines(facts, markdown=False))
    marker = "✓" if view.state == FRESH else "…"
    lines += ["---", f"{marker} {clean_text(describe_state(view, now), one_line=True)}"]
    return "\n".join(lines)


#: Most entries a class's hover lists of its methods' side effects (and of their pitfalls).
MAX_METHOD_ITEMS = 10


def method_sections(view: SpanView) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """A class's or struct's side effects and pitfalls, which are its methods': (title, field,
    [(method name, entry)]) for each field some method's fresh enrichment fills, capped at
    :data:`MAX_METHOD_ITEMS` with a last ("", "(+N more)") entry. Each entry is the method's
    own model text, named by its method: nothing is written for the class."""
    sections = []
    for title, key in (
        ("Side effects of its methods", "side_effects"),
        ("Pitfalls of its methods", "pitfalls"),
    ):
        items = [
            (name, str(item))
            for name, data in view.methods
            for item in (data.get(key) or [])
            if str(item).strip()
        ]
        if not items:
            continue
        if len(items) > MAX_METHOD_ITEMS:
            extra = len(items) - MAX_METHOD_ITEMS + 1
            items = [*items[: MAX_METHOD_ITEMS - 1], ("", f"(+{extra} more)")]
        sections.append((title, key, items))
    return sections


def _code_name(name: str) -> str:
    """A parser's method name as a code span's text (one line, no backtick)."""
    return clean_text(name, one_line=True).replace("`", "'")


def fact_lines(facts: dict[str, Any], markdown: bool = True) -> list[str]:
    """Short lines describing parser facts (parameters, returns, raises, calls, size)."""

    def code(text: Any) -> str:
        text = clean_text(text, one_line=True).replace("`", "'")
        return f"`{text}`" if markdown else text

    out = []
    params = facts.get("params") or []
    if params:
        out.append("params: " + ", ".join(code(_param(p)) for p in params))
    returns = facts.get("returns")
    if returns:
        out.append("returns: " + code(returns))
    for key, title in (("raises", "raises"), ("side_effects", "side effects")):
        values = facts.get(key) or []
        if values:
            out.append(f"{title}: " + ", ".join(code(v) for v in values))
    calls = facts.get("calls") or []
    if calls:
        more = f" (+{len(calls) - 8} more)" if len(calls) > 8 else ""
        out.append("calls: " + ", ".join(code(c) for c in calls[:8]) + more)
    members = facts.get("members") or []
    if members:
        more = f" (+{len(members) - 12} more)" if len(members) > 12 else ""
        out.append("members: " + ", ".join(code(m) for m in members[:12]) + more)
    size = [f"{facts.get('lines', '?')} lines"]
    if "nesting" in facts:
        size.append(f"nesting {facts['nesting']}")
    if "branches" in facts:
        size.append(f"{facts['branches']} branches")
    if "tokens" in facts:
        size.append(f"~{facts['tokens']} tokens")
    out.append(" · ".join(size))
    return out


def _param(param: dict[str, Any]) -> str:
    text = str(param.get("name", "?"))
    kind_prefix = {"var_positional": "*", "var_keyword": "**"}.get(str(param.get("kind")), "")
    annotation = param.get("annotation") or param.get("type")
    if annotation:
        text += f": {annotation}"
    if param.get("default") is not None:
        text += f" = {param['default']}"
    return kind_prefix + text


def bullet_list(items: Iterable[Any], prefix: str, escape: bool = True) -> str:
    return "\n".join(
        f"- {prefix}{inline_markdown(item, at_line_start=not prefix) if escape else item}"
        for item in items
    )
