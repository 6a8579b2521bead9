import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import {
  ACTIONS,
  COMMANDS,
  COPY_ACTION,
  FirstRunGuidance,
  GUIDANCE_MESSAGE,
  menuItems,
  OLLAMA_MODEL,
  ollamaBackends,
  ollamaModels,
  ollamaUrl,
  PULL_COMMAND,
  useOllama,
  type GuidanceHost,
  type OllamaHost,
  type PickItem,
} from "../src/firstRun.ts";

/** A stand-in Ollama on 127.0.0.1: `GET /api/tags` answers `body` (after `delayMs`). */
async function ollama(body: unknown, delayMs = 0): Promise<{ url: string; server: Server; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    setTimeout(() => {
      if (req.url !== "/api/tags") return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/json" }).end(typeof body === "string" ? body : JSON.stringify(body));
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, requests };
}

const close = (server: Server) => new Promise((resolve) => server.close(resolve));
const tags = (...names: string[]) => ({ models: names.map((name) => ({ name, size: 4_000_000_000 })) });

test("a running Ollama's models are read from /api/tags over HTTP", async () => {
  const running = await ollama(tags("qwen2.5-coder:7b", "llama3.2:latest", "qwen2.5-coder:7b"));
  try {
    assert.deepEqual(await ollamaModels(fetch, running.url), ["qwen2.5-coder:7b", "llama3.2:latest"]);
    assert.deepEqual(running.requests, ["GET /api/tags"]);
  } finally {
    await close(running.server);
  }
});

test("no Ollama, a slow one, a broken one: undefined, within the timeout", async () => {
  const gone = await ollama(tags());
  await close(gone.server); // its port now refuses
  assert.equal(await ollamaModels(fetch, gone.url), undefined);
  const slow = await ollama(tags("a"), 2000);
  const started = Date.now();
  try {
    assert.equal(await ollamaModels(fetch, slow.url, 200), undefined);
    assert.ok(Date.now() - started < 1500, "gives up at its timeout");
  } finally {
    slow.server.closeAllConnections();
    await close(slow.server);
  }
  for (const body of ["not json", { error: "x" }, null]) {
    const broken = await ollama(body);
    try {
      assert.equal(await ollamaModels(fetch, broken.url), undefined, JSON.stringify(body));
    } finally {
      await close(broken.server);
    }
  }
});

test("model names are untrusted: only what ollama list prints is kept", async () => {
  const hostile = await ollama({ models: [{ name: "ok:1b" }, { name: "$(alert) click [me](command:x)" }, { name: "a\nb" }, { name: 7 }, {}, { name: "x".repeat(500) }] });
  try {
    assert.deepEqual(await ollamaModels(fetch, hostile.url), ["ok:1b"]);
  } finally {
    await close(hostile.server);
  }
});

/** A recording editor for the guidance; `answer` is the button the user clicks. */
function guidanceEditor(opts: { builtIn?: boolean; models?: string[]; answer?: string; memento?: Map<string, unknown> } = {}) {
  const memento = opts.memento ?? new Map<string, unknown>();
  const shown: Array<{ message: string; actions: string[] }> = [];
  const ran: string[] = [];
  const host: GuidanceHost = {
    state: { get: <T>(key: string) => memento.get(key) as T | undefined, update: async (key, value) => void memento.set(key, value) },
    showInformation: async (message, ...actions) => {
      shown.push({ message, actions });
      return opts.answer;
    },
    runCommand: async (command) => void ran.push(command),
    builtInAvailable: () => opts.builtIn ?? true,
    ollamaModels: async () => opts.models,
  };
  return { host, shown, ran, memento };
}

test("the guidance shows once per workspace when nothing serves, with the ways to a model", async () => {
  const first = guidanceEditor({ models: ["llama3.2"], answer: ACTIONS.ollama });
  const guidance = new FirstRunGuidance(first.host);
  await guidance.onStatus({ modelSource: null });
  await guidance.onStatus({ modelSource: "none" });
  await guidance.onStatus({ modelSource: "none" });
  assert.deepEqual(first.shown, [{ message: GUIDANCE_MESSAGE, actions: [ACTIONS.builtIn, ACTIONS.ollama, ACTIONS.backends] }]);
  assert.match(GUIDANCE_MESSAGE, /^spanlens: no model is set up.*hovers show parser facts/);
  assert.deepEqual(first.ran, [COMMANDS.useOllama]);

  // The window reloads: same workspace memento, new extension instance: not again.
  const reloaded = guidanceEditor({ memento: first.memento });
  await new FirstRunGuidance(reloaded.host).onStatus({ modelSource: "none" });
  assert.equal(reloaded.shown.length, 0);
});

test("the guidance offers only what this machine can do, and each button runs its command", async () => {
  // No engine in the build, no Ollama: only the backends setting.
  const bare = guidanceEditor({ builtIn: false, models: undefined, answer: ACTIONS.backends });
  await new FirstRunGuidance(bare.host).onStatus({ modelSource: "none" });
  assert.deepEqual(bare.shown[0].actions, [ACTIONS.backends]);
  assert.deepEqual(bare.ran, [COMMANDS.configureBackends]);
  // An Ollama with no model pulled still runs: it is offered (Use Ollama then offers the pull).
  const empty = guidanceEditor({ builtIn: true, models: [], answer: ACTIONS.builtIn });
  await new FirstRunGuidance(empty.host).onStatus({ modelSource: "none" });
  assert.deepEqual(empty.shown[0].actions, [ACTIONS.builtIn, ACTIONS.ollama, ACTIONS.backends]);
  assert.deepEqual(empty.ran, [COMMANDS.setupLocalModel]);
  const dismissed = guidanceEditor({ answer: undefined });
  await new FirstRunGuidance(dismissed.host).onStatus({ modelSource: "none" });
  assert.equal(dismissed.shown.length, 1);
  assert.deepEqual(dismissed.ran, []);
});

test("no guidance when a model serves; statuses arriving while it is open do not stack a second", async () => {
  for (const modelSource of ["configured", "ollama", "built-in", null, undefined]) {
    const quiet = guidanceEditor();
    await new FirstRunGuidance(quiet.host).onStatus({ modelSource });
    assert.equal(quiet.shown.length, 0, String(modelSource));
  }
  let answer: (pick: string | undefined) => void = () => undefined;
  const slow = guidanceEditor();
  slow.host.showInformation = (message, ...actions) => {
    slow.shown.push({ message, actions });
    return new Promise((resolve) => (answer = resolve));
  };
  const guidance = new FirstRunGuidance(slow.host);
  const open = guidance.onStatus({ modelSource: "none" });
  await guidance.onStatus({ modelSource: "none" });
  await new Promise((resolve) => setTimeout(resolve, 10));
  answer(undefined);
  await open;
  assert.equal(slow.shown.length, 1);
});

/** A recording editor for "Use Ollama": `pickLabel` chooses from the quick pick. */
function ollamaEditor(models: string[] | undefined, pickLabel?: (items: PickItem[]) => string | undefined, answer?: string) {
  const picks: PickItem[][] = [];
  const messages: Array<{ message: string; actions: string[] }> = [];
  const written: unknown[] = [];
  const copied: string[] = [];
  const host: OllamaHost = {
    url: "http://127.0.0.1:11434",
    ollamaModels: async () => models,
    pick: async (items) => {
      picks.push(items);
      return pickLabel?.(items);
    },
    setBackends: async (backends) => void written.push(backends),
    showInformation: async (message, ...actions) => {
      messages.push({ message, actions });
      return answer;
    },
    copy: async (text) => void copied.push(text),
  };
  return { host, picks, messages, written, copied };
}

test("Use Ollama: the picked model becomes spanlens.backends, the suggested one listed first", async () => {
  const editor = ollamaEditor(["llama3.2:latest", OLLAMA_MODEL], (items) => items[1].label);
  assert.equal(await useOllama(editor.host), "llama3.2:latest");
  assert.deepEqual(editor.picks[0].map((i) => [i.label, i.description]), [[OLLAMA_MODEL, "suggested"], ["llama3.2:latest", undefined]]);
  assert.deepEqual(editor.written, [[{ name: "ollama", tier: "small", provider: "ollama", url: "http://127.0.0.1:11434", model: "llama3.2:latest" }]]);
  assert.match(editor.messages[0].message, /enriching with Ollama's llama3\.2:latest/);
  const cancelled = ollamaEditor([OLLAMA_MODEL], () => undefined);
  assert.equal(await useOllama(cancelled.host), undefined);
  assert.deepEqual(cancelled.written, []);
});

test("Use Ollama: without the suggested model it offers the ollama pull command to copy", async () => {
  const editor = ollamaEditor(["llama3.2:latest"], (items) => items.at(-1)?.label, COPY_ACTION);
  assert.equal(await useOllama(editor.host), undefined);
  assert.equal(editor.picks[0].at(-1)?.description, PULL_COMMAND);
  assert.equal(PULL_COMMAND, "ollama pull qwen2.5-coder:7b");
  assert.deepEqual(editor.written, []);
  assert.deepEqual(editor.copied, [PULL_COMMAND]);
  // No model at all: straight to the command.
  const empty = ollamaEditor([], undefined, COPY_ACTION);
  await useOllama(empty.host);
  assert.deepEqual(empty.picks, []);
  assert.match(empty.messages[0].message, /has no model yet: run "ollama pull qwen2\.5-coder:7b"/);
  assert.deepEqual(empty.copied, [PULL_COMMAND]);
});

test("Use Ollama with no Ollama running: one line saying where it looked and what to do", async () => {
  const editor = ollamaEditor(undefined);
  assert.equal(await useOllama(editor.host), undefined);
  assert.equal(editor.messages.length, 1);
  assert.match(editor.messages[0].message, /Ollama does not answer at http:\/\/127\.0\.0\.1:11434: install it/);
  assert.ok(!editor.messages[0].message.includes("\n"));
});

test("the written backend is one the server accepts (same fields as its defaults)", () => {
  assert.deepEqual(Object.keys(ollamaBackends("m")[0]).sort(), ["model", "name", "provider", "tier", "url"]);
});

test("the status menu: pause or resume, enrich, search, report, logs, restart; a model step while none", () => {
  const running = menuItems({ modelSource: "ollama" });
  assert.deepEqual(running.map((i) => i.command), ["spanlens.client.pause", "spanlens.client.enrichFile", "spanlens.searchByMeaning", "spanlens.client.statusReport", "spanlens.showLogs", "spanlens.restartServer"]);
  const paused = menuItems({ modelSource: "ollama", paused: "by user" });
  assert.equal(paused[0].command, "spanlens.client.resume");
  assert.match(paused[0].description ?? "", /by user/);
  assert.equal(menuItems({ modelSource: "none" })[0].command, COMMANDS.walkthrough);
});

test("the walkthrough has the notification's steps, each a command the extension contributes", () => {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    contributes: { commands: Array<{ command: string }>; walkthroughs: Array<{ id: string; steps: Array<{ id: string; description: string; when?: string; media: { image: string } }> }> };
  };
  const contributed = new Set(manifest.contributes.commands.map((c) => c.command));
  for (const command of Object.values(COMMANDS)) assert.ok(contributed.has(command), command);
  const [walkthrough] = manifest.contributes.walkthroughs;
  assert.equal(walkthrough.id, "spanlens.firstRun"); // COMMANDS.walkthrough opens it by this id
  const linked = walkthrough.steps.flatMap((step) => [...step.description.matchAll(/\(command:([\w.]+)\)/g)].map((m) => m[1]));
  for (const command of linked) assert.ok(contributed.has(command), command);
  assert.deepEqual(linked.slice(0, 3), [COMMANDS.setupLocalModel, COMMANDS.useOllama, COMMANDS.configureBackends]);
  // The built-in step shows only where the engine is (the context key the extension sets).
  assert.equal(walkthrough.steps[0].when, "spanlens.builtInModel");
  const extension = readFileSync(new URL("../src/extension.ts", import.meta.url), "utf8");
  assert.ok(extension.includes('"spanlens.builtInModel"'));
});

test("OLLAMA_HOST moves Ollama as the ollama CLI reads it", () => {
  assert.equal(ollamaUrl({}), "http://127.0.0.1:11434");
  assert.equal(ollamaUrl({ OLLAMA_HOST: "" }), "http://127.0.0.1:11434");
  assert.equal(ollamaUrl({ OLLAMA_HOST: "127.0.0.1:43127" }), "http://127.0.0.1:43127");
  assert.equal(ollamaUrl({ OLLAMA_HOST: "0.0.0.0" }), "http://127.0.0.1:11434");
  assert.equal(ollamaUrl({ OLLAMA_HOST: "http://gpu-box:8080/" }), "http://gpu-box:8080");
  assert.equal(ollamaUrl({ OLLAMA_HOST: "https://ollama.example" }), "https://ollama.example");
  assert.equal(ollamaUrl({ OLLAMA_HOST: "::bad::" }), "http://127.0.0.1:11434");
});
