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

/** What the model text reads from the `spanlens/status` payload. */
export interface ModelPayload {
  modelSource?: string | null;
  localEngine?: LocalEngine | null;
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
  installed?: boolean;
  path?: string;
  source?: string | null;
  /** Why the server still cannot use the model (e.g. no engine package there), or null. */
  note?: string | null;
}

/** The message after an install: a warning when the server says it cannot use the model. */
export function installOutcome(result: InstallResult): { text: string; warning: boolean } {
  const label = result.label ?? result.name ?? "the local model";
  if (result.note) return { text: `spanlens: ${label} is installed, but not in use: ${result.note}`, warning: true };
  return { text: result.installed ? `spanlens: ${label} is installed.` : `spanlens: ${label} was already installed.`, warning: false };
}

let tokens = 0;

/** Run `spanlens.installModel` with a client-made work-done token: the server's progress
 * fills a cancellable notification, and cancelling it cancels the token (protocol.md). */
export async function installModel(host: InstallHost, name?: string): Promise<InstallResult> {
  const token = `spanlens-vscode-install-${process.pid}-${++tokens}`;
  return host.withProgress("spanlens: setting up the local model", async (progress, cancel) => {
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
