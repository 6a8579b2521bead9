/** The built-in local model in the editor: which model serves (status text) and the install
 * with its cancellable notification (the first-run guidance is in firstRun.ts). No runtime
 * `vscode` import: the editor is passed in, so Node's test runner exercises this file as is. */
import type { Disposable } from "vscode";

/** The palette command that installs the model ("spanlens: Set up the Local Model"). */
export const SETUP_COMMAND = "spanlens.setupLocalModel";

/** The `localEngine` object of the status payload (protocol.md). */
export interface LocalEngine {
  model?: string;
  state?: string;
  memory_mb?: number | null;
  tokens_per_s?: number;
}

/** The `embeddings` object of the status payload (protocol.md). */
export interface EmbeddingsStatus {
  model?: string;
  source?: string;
  embedded?: number | null;
  pending?: number | null;
  running?: boolean;
  last_error?: string | null;
  engine?: LocalEngine | null;
}

/** What the model text reads from the `spanlens/status` payload. */
export interface ModelPayload {
  modelSource?: string | null;
  localEngine?: LocalEngine | null;
  embeddings?: EmbeddingsStatus | null;
  backends?: { endpoints?: Array<{ model?: string }> };
}

function engineText(engine: LocalEngine | null | undefined): string {
  if (!engine) return "";
  const parts = [engine.state, engine.tokens_per_s ? `${engine.tokens_per_s} tokens/s` : "", engine.memory_mb ? `${Math.round(engine.memory_mb)} MiB` : ""];
  const text = parts.filter(Boolean).join(", ");
  return text ? ` (${text})` : "";
}

/** Which model serves this workspace, in a few words: "model: built-in qwen2.5-coder-1.5b (running, 11.2 tokens/s)". */
export function modelText(payload: ModelPayload): string {
  const model = payload.backends?.endpoints?.[0]?.model;
  switch (payload.modelSource) {
    case "configured":
      return `model: ${model ?? "configured"} (configured)`;
    case "ollama":
      return `model: Ollama ${model ?? ""}`.trimEnd();
    case "built-in":
      return `model: built-in ${payload.localEngine?.model ?? model ?? ""}`.trimEnd() + engineText(payload.localEngine);
    case "none":
      return "model: none (facts only)";
    default:
      return "model: not known yet";
  }
}

/** The embedding model and its spans, in a line: "search by meaning: built-in all-minilm-l6-v2
 * (running): 1180 embedded, 20 pending, embedding now". */
export function embeddingText(payload: ModelPayload): string {
  const embeddings = payload.embeddings;
  if (!embeddings) return "search: keywords only (no embedding model; Set Up the Local Model adds one)";
  const who = embeddings.source === "built-in" ? `built-in ${embeddings.model ?? ""}`.trimEnd() + engineText(embeddings.engine) : `${embeddings.model ?? "?"} (${embeddings.source ?? "configured"})`;
  const counts = typeof embeddings.embedded === "number" ? `${embeddings.embedded} embedded, ${embeddings.pending ?? 0} pending` : "not counted yet";
  const parts = [`search by meaning: ${who}: ${counts}`];
  if (embeddings.running) parts.push("embedding now");
  const text = parts.join(", ");
  return embeddings.last_error ? `${text}; last error: ${embeddings.last_error}` : text;
}

/** LSP work-done progress values ($/progress). */
export type WorkDoneValue =
  | { kind: "begin"; title: string; message?: string; percentage?: number; cancellable?: boolean }
  | { kind: "report"; message?: string; percentage?: number }
  | { kind: "end"; message?: string };

/** A cancellable notification: `vscode.window.withProgress` with ProgressLocation.Notification. */
export type NotificationProgress = <R>(
  title: string,
  task: (
    progress: { report(value: { message?: string; increment?: number }): void },
    cancel: { onCancellationRequested(listener: () => void): Disposable },
  ) => Promise<R>,
) => PromiseLike<R>;

/** The slice of the language client the install needs. */
export interface InstallHost {
  withProgress: NotificationProgress;
  /** `workspace/executeCommand` with these params. */
  execute(params: { command: string; arguments: unknown[]; workDoneToken: string }): Promise<unknown>;
  /** Listen to `$/progress` for `token`. */
  onProgress(token: string, handler: (value: WorkDoneValue) => void): Disposable;
  /** `window/workDoneProgress/cancel` for `token`. */
  cancel(token: string): void;
}

export interface InstallResult {
  name?: string;
  label?: string;
  /** `chat` (enriches) or `embedding` (search by meaning). */
  kind?: string;
  installed?: boolean;
  path?: string;
  source?: string | null;
  /** Why the server still cannot use the model (e.g. no engine package there), or null. */
  note?: string | null;
}

/** The message after an install: a warning when the server says it cannot use the model. */
export function installOutcome(result: InstallResult): { text: string; warning: boolean } {
  const name = result.label ?? result.name ?? "the local model";
  const label = result.kind === "embedding" ? `${name} (search by meaning)` : name;
  if (result.note) return { text: `spanlens: ${label} is installed, but not in use: ${result.note}`, warning: true };
  return { text: result.installed ? `spanlens: ${label} is installed.` : `spanlens: ${label} was already installed.`, warning: false };
}

let tokens = 0;

/** The built-in embedding model (search by meaning): setup installs it after the model. */
export const EMBEDDING_MODEL = "all-minilm-l6-v2";

/** What "Set up the Local Model" installs, in order, each in its own notification: the
 * default model (enrichment), then the embedding model (search by meaning). */
export const SETUP_STEPS: ReadonlyArray<{ name?: string; title: string }> = [
  { title: "spanlens: setting up the local model" },
  { name: EMBEDDING_MODEL, title: "spanlens: setting up search by meaning" },
];

/** What setup did: the models installed (or already there), and the failure or cancel that
 * stopped it, if one did. */
export interface SetupRun {
  results: InstallResult[];
  error?: unknown;
}

/** Install every model of {@link SETUP_STEPS} in turn; the first failure or cancel stops the
 * rest (a model already installed is a no-op, so setup run again resumes there). */
export async function setupModels(host: InstallHost): Promise<SetupRun> {
  const results: InstallResult[] = [];
  for (const step of SETUP_STEPS) {
    try {
      results.push(await installModel(host, step.name, step.title));
    } catch (error) {
      return { results, error };
    }
  }
  return { results };
}

/** The messages after setup: one information line for what is in use, one warning per model
 * the server says it cannot use. */
export function setupOutcome(results: InstallResult[]): { info?: string; warnings: string[] } {
  const outcomes = results.map(installOutcome);
  const fine = outcomes.filter((o) => !o.warning).map((o) => o.text.replace(/^spanlens: /, ""));
  return {
    info: fine.length ? `spanlens: ${fine.join(" ")}` : undefined,
    warnings: outcomes.filter((o) => o.warning).map((o) => o.text),
  };
}

/** Run `spanlens.installModel` with a client-made work-done token: the server's progress
 * fills a cancellable notification, and cancelling it cancels the token (protocol.md). */
export async function installModel(host: InstallHost, name?: string, title = "spanlens: setting up the local model"): Promise<InstallResult> {
  const token = `spanlens-vscode-install-${process.pid}-${++tokens}`;
  return host.withProgress(title, async (progress, cancel) => {
    let reported = 0;
    const listener = host.onProgress(token, (value) => {
      if (value.kind === "end") return;
      const percentage = typeof value.percentage === "number" ? Math.max(0, Math.min(value.percentage, 100)) : undefined;
      const increment = percentage !== undefined && percentage > reported ? percentage - reported : undefined;
      if (increment !== undefined) reported += increment;
      progress.report({ message: value.message, increment });
    });
    const onCancel = cancel.onCancellationRequested(() => host.cancel(token));
    try {
      const argument = name ? { name } : {};
      return (await host.execute({ command: "spanlens.installModel", arguments: [argument], workDoneToken: token })) as InstallResult;
    } finally {
      onCancel.dispose();
      listener.dispose();
    }
  });
}

/** JSON-RPC RequestCancelled: the user cancelled the install. */
export const REQUEST_CANCELLED = -32800;

export function isCancelled(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === REQUEST_CANCELLED;
}
