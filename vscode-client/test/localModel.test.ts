import assert from "node:assert/strict";
import { test } from "node:test";
import { installModel, installOutcome, isCancelled, modelText, type InstallHost, type WorkDoneValue } from "../src/localModel.ts";

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
