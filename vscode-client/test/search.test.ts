import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { MeaningSearch, plainText, SEARCH_COMMAND, searchItems, searchReply, type SearchHost, type SearchItem, type SearchResult } from "../src/search.ts";

function result(name: string, line: number, summary: string | null, why: string[]): SearchResult {
  return {
    uri: `file:///repo/src/${name}.py`,
    range: { start: { line: line - 1, character: 0 }, end: { line: line + 4, character: 10 } },
    name,
    kind: "function",
    path: `src/${name}.py`,
    line,
    summary,
    score: 0.5,
    why,
  };
}

const REPLY = {
  results: [result("load_settings", 12, "Reads the settings file from disk.", ["meaning"]), result("parse_config", 3, null, ["name", "keywords"])],
  meaning: true,
  note: null,
};

/** An editor that answers the input box with `query`, the server with `reply`, and picks the
 * item `choose` selects; it records what the user is shown. */
function editor(query: string | undefined, reply: unknown, choose: (items: SearchItem[]) => SearchItem | undefined = (items) => items[0]) {
  const seen = { asked: [] as string[], sent: [] as unknown[], picks: [] as Array<{ items: SearchItem[]; title: string; placeHolder: string }>, opened: [] as SearchResult[], info: [] as string[] };
  const host: SearchHost = {
    ask: async (value) => (seen.asked.push(value), query),
    search: async (argument) => (seen.sent.push(argument), reply),
    pick: async (items, options) => (seen.picks.push({ items, ...options }), choose(items)),
    open: async (opened) => void seen.opened.push(opened),
    inform: async (text) => void seen.info.push(text),
  };
  return { host, seen };
}

test("a query is sent as spanlens.search, the ranked spans are picked from, the chosen one opens", async () => {
  const { host, seen } = editor("  read settings from disk ", REPLY, (items) => items[1]);
  await new MeaningSearch(host).run();
  assert.deepEqual(seen.sent, [{ query: "read settings from disk" }]);
  const [pick] = seen.picks;
  assert.equal(pick.title, "spanlens: Search by Meaning: read settings from disk");
  assert.equal(pick.placeHolder, '2 spans for "read settings from disk"');
  assert.deepEqual(
    pick.items.map(({ label, description, detail }) => ({ label, description, detail })),
    [
      { label: "load_settings", description: "src/load_settings.py:12", detail: "Reads the settings file from disk. (meaning)" },
      { label: "parse_config", description: "src/parse_config.py:3", detail: "(name · keywords)" },
    ],
  );
  assert.deepEqual(seen.opened, [REPLY.results[1]]);
  assert.deepEqual(seen.info, []);
});

test("the server's note (keywords only) is the quick pick's placeholder", async () => {
  const note = "keywords only: no embedding endpoint configured";
  const { host, seen } = editor("parse", { ...REPLY, meaning: false, note });
  await new MeaningSearch(host).run();
  assert.equal(seen.picks[0].placeHolder, `2 spans for "parse": ${note}`);
});

test("nothing found is one message with the note; nothing is picked or opened", async () => {
  const { host, seen } = editor("frobnicate", { results: [], meaning: false, note: "keywords only: no embedding endpoint configured" });
  await new MeaningSearch(host).run();
  assert.deepEqual(seen.info, ['spanlens: nothing found for "frobnicate" (keywords only: no embedding endpoint configured)']);
  assert.deepEqual([seen.picks, seen.opened], [[], []]);
});

test("a dismissed input box or quick pick does nothing more; the last query is offered again", async () => {
  const dismissed = editor(undefined, REPLY);
  await new MeaningSearch(dismissed.host).run();
  assert.deepEqual(dismissed.seen.sent, []);
  const blank = editor("   ", REPLY);
  await new MeaningSearch(blank.host).run();
  assert.deepEqual(blank.seen.sent, []);
  const { host, seen } = editor("parse config", REPLY, () => undefined);
  const search = new MeaningSearch(host);
  await search.run();
  await search.run();
  assert.deepEqual(seen.asked, ["", "parse config"]);
  assert.deepEqual(seen.opened, []);
});

test("an answer without results is one clear error; malformed entries are left out", async () => {
  await assert.rejects(new MeaningSearch(editor("x", { message: "no" }).host).run(), /no results: update spanlens$/);
  await assert.rejects(new MeaningSearch(editor("x", null).host).run(), /no results/);
  const reply = searchReply({ results: [{ name: "no_uri" }, REPLY.results[0], { ...REPLY.results[1], range: { start: {} } }], note: 3 });
  assert.deepEqual(reply, { results: [REPLY.results[0]], meaning: false, note: null });
});

test("model text is shown as one plain line: no control, bidi or zero-width characters, no icons", () => {
  const summary = "Reads\tthe\r\nfile\u0007 \u001b[31mred\u001b[0m \u202Egnp.exe\u202C\u2066x\u2069 zero\u200Bwidth \u0085next\u2028line $(alert) $(sync~spin) $(not an icon)";
  const [item] = searchItems({ results: [{ ...result("f", 1, summary, ["meaning", "$(check)\n"]), name: "$(warning) f", path: "src/$(bug)\u202E.py" }] });
  assert.equal(item.label, "\\$(warning) f");
  assert.equal(item.description, "src/\\$(bug).py:1");
  assert.equal(item.detail, "Reads the file [31mred [0m gnp.exex zerowidth next line \\$(alert) \\$(sync~spin) $(not an icon) (meaning · \\$(check))");
  for (const text of [item.label, item.description, item.detail ?? ""]) {
    assert.doesNotMatch(text, /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069]/);
    assert.doesNotMatch(text, /(^|[^\\])\$\([A-Za-z0-9-]+(~[A-Za-z]+)?\)/, "an unescaped codicon");
  }
  assert.equal(plainText("x".repeat(400)).length, 300);
  assert.ok(plainText("x".repeat(400)).endsWith("…"));
});

test("the palette contributes the command as spanlens: Search by Meaning", () => {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { contributes: { commands: Array<{ command: string; title: string; category: string }> } };
  const command = manifest.contributes.commands.find((c) => c.command === SEARCH_COMMAND);
  assert.deepEqual(command && `${command.category}: ${command.title}`, "spanlens: Search by Meaning");
});
