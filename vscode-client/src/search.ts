/** "spanlens: Search by Meaning": a query, the server's `spanlens.search` (protocol.md), a quick
 * pick of the ranked spans, and the chosen span opened. No runtime `vscode` import: the editor is
 * passed in, so Node's test runner exercises this file as is. */

/** The palette command. */
export const SEARCH_COMMAND = "spanlens.searchByMeaning";
export const SEARCH_TITLE = "spanlens: Search by Meaning";

interface Position {
  line: number;
  character: number;
}

/** One ranked span of a `spanlens.search` reply. */
export interface SearchResult {
  uri: string;
  range: { start: Position; end: Position };
  name: string;
  kind?: string;
  path: string;
  line: number;
  summary?: string | null;
  score?: number;
  why?: string[];
}

/** The reply of `spanlens.search`. */
export interface SearchReply {
  results: SearchResult[];
  meaning?: boolean;
  note?: string | null;
}

/** A quick pick item holding its span. */
export interface SearchItem {
  label: string;
  description: string;
  detail?: string;
  result: SearchResult;
}

/** The longest summary shown in a detail line (the quick pick cuts it on screen anyway). */
const SUMMARY_LIMIT = 300;
/** Codicon syntax (`$(alert)`, `$(sync~spin)`), which quick pick labels, descriptions and
 * details render as icons; `\$(name)` renders as the literal text. */
const CODICON = /\$\(([A-Za-z0-9-]+(?:~[A-Za-z]+)?)\)/g;

/** Untrusted text (a model's summary, a file's name) as one plain line: control characters and
 * line breaks become spaces, format characters (bidi overrides, zero-width) go, runs of spaces
 * collapse, codicon syntax is escaped so it shows as written. */
export function plainText(text: unknown, limit = SUMMARY_LIMIT): string {
  let line = String(text ?? "")
    .replace(/[\p{Cc}\p{Zl}\p{Zp}]/gu, " ")
    .replace(/\p{Cf}/gu, "")
    .replace(/\s+/g, " ")
    .trim();
  if (line.length > limit) line = `${line.slice(0, limit - 1).trimEnd()}…`;
  return escapeIcons(line);
}

/** ``text`` with codicon syntax escaped, so VS Code shows it as written. Quick picks and code
 * lens titles render `$(name)` as an icon: model text must never draw one. */
export function escapeIcons(text: string): string {
  return text.replace(CODICON, "\\$($1)");
}

function isPosition(value: unknown): value is Position {
  const p = value as Position | null;
  return typeof p?.line === "number" && typeof p.character === "number";
}

function isResult(value: unknown): value is SearchResult {
  const r = value as SearchResult | null;
  return typeof r?.uri === "string" && typeof r.name === "string" && isPosition(r.range?.start) && isPosition(r.range?.end);
}

/** The reply as the client reads it; anything else is one clear error. */
export function searchReply(value: unknown): SearchReply {
  const reply = value as SearchReply | null;
  if (!reply || !Array.isArray(reply.results)) throw new Error("the server's answer to spanlens.search has no results: update spanlens");
  return { results: reply.results.filter(isResult), meaning: reply.meaning === true, note: typeof reply.note === "string" ? reply.note : null };
}

/** One item per span: name; path:line; summary and why ("name · meaning"). */
export function searchItems(reply: SearchReply): SearchItem[] {
  return reply.results.map((result) => {
    const summary = result.summary ? plainText(result.summary) : "";
    const why = (result.why ?? []).map((reason) => plainText(reason, 40)).filter(Boolean).join(" · ");
    const detail = [summary, why && `(${why})`].filter(Boolean).join(" ");
    const line = Number.isInteger(result.line) ? result.line : result.range.start.line + 1;
    return {
      label: plainText(result.name, 200),
      description: `${plainText(result.path || result.uri, 300)}:${line}`,
      detail: detail || undefined,
      result,
    };
  });
}

/** The quick pick's placeholder: the server's note (e.g. keywords only) and the count. */
export function searchPlaceholder(query: string, reply: SearchReply): string {
  const count = `${reply.results.length} span${reply.results.length === 1 ? "" : "s"} for "${plainText(query, 80)}"`;
  return reply.note ? `${count}: ${plainText(reply.note, 200)}` : count;
}

/** What the search needs from the editor. */
export interface SearchHost {
  /** An input box for the query (prefilled with `value`); undefined when dismissed. */
  ask(value: string): Thenable<string | undefined>;
  /** `workspace/executeCommand` `spanlens.search` with `argument`. */
  search(argument: { query: string }): Thenable<unknown>;
  /** A quick pick; undefined when dismissed. */
  pick(items: SearchItem[], options: { title: string; placeHolder: string }): Thenable<SearchItem | undefined>;
  /** Open the span's file with its range shown. */
  open(result: SearchResult): Thenable<unknown>;
  /** An information message (nothing found). */
  inform(text: string): Thenable<unknown>;
}

/** Ask for a query, search, pick a span, open it. The query typed last is offered again. */
export class MeaningSearch {
  private readonly host: SearchHost;
  private lastQuery = "";

  constructor(host: SearchHost) {
    this.host = host;
  }

  async run(): Promise<void> {
    const query = (await this.host.ask(this.lastQuery))?.trim();
    if (!query) return;
    this.lastQuery = query;
    const reply = searchReply(await this.host.search({ query }));
    if (!reply.results.length) {
      const note = reply.note ? ` (${plainText(reply.note, 200)})` : "";
      await this.host.inform(`spanlens: nothing found for "${plainText(query, 80)}"${note}`);
      return;
    }
    const chosen = await this.host.pick(searchItems(reply), { title: `${SEARCH_TITLE}: ${plainText(query, 80)}`, placeHolder: searchPlaceholder(query, reply) });
    if (chosen) await this.host.open(chosen.result);
  }
}
