/** The language status items and the status bar item, fed by `spanlens/status`. */
import * as vscode from "vscode";
import { embeddingText, modelText, type ModelPayload } from "./localModel.ts";

/** The `spanlens/status` payload (protocol.md), as far as the client reads it. */
export interface StatusPayload extends ModelPayload {
  state?: string;
  indexing?: { done: number; total: number } | null;
  queue?: Record<string, number>;
  inFlight?: number;
  calls?: number;
  paused?: string | null;
  lastError?: string | null;
  backends?: { endpoints?: Array<{ name?: string; model?: string; breaker?: string; last_error?: string | null }>; unreachable?: boolean };
  gpu?: { available?: boolean; waiting?: string | null } | null;
  docgen?: Record<string, unknown> | null;
}

const LANES = ["saved", "requested", "open", "backlog"] as const;
const BUSY = new Set(["starting", "indexing", "enriching"]);

/** "saved 1 · requested 0 · open 3 · backlog 64" */
export function queueText(payload: StatusPayload): string {
  const queue = payload.queue ?? {};
  return LANES.map((lane) => `${lane} ${queue[lane] ?? 0}`).join(" · ");
}

function queuedTotal(payload: StatusPayload): number {
  const queue = payload.queue ?? {};
  return LANES.reduce((sum, lane) => sum + (queue[lane] ?? 0), 0);
}

function backendText(payload: StatusPayload): string {
  const endpoints = payload.backends?.endpoints ?? [];
  if (!endpoints.length) return "no backend (facts only)";
  if (payload.backends?.unreachable) return "unreachable";
  const open = endpoints.filter((e) => e.breaker && e.breaker !== "closed").map((e) => e.name);
  return open.length ? `breaker open: ${open.join(", ")}` : `${endpoints.length} ok`;
}

function docgenText(docgen: Record<string, unknown> | null | undefined): string | undefined {
  if (!docgen) return undefined;
  const parts = ["fresh", "stale", "missing", "waiting"]
    .filter((key) => typeof docgen[key] === "number")
    .map((key) => `${key} ${String(docgen[key])}`);
  return parts.length ? parts.join(" · ") : undefined;
}

/** One line per fact, for the language status item's detail and the status bar tooltip. */
export function statusLines(payload: StatusPayload): string[] {
  const lines = [`state: ${payload.state ?? "unknown"}`];
  if (payload.indexing) lines.push(`indexing: ${payload.indexing.done}/${payload.indexing.total} files`);
  lines.push(`queue: ${queueText(payload)}`);
  lines.push(`in flight: ${payload.inFlight ?? 0} spans in ${payload.calls ?? 0} calls`);
  lines.push(`backends: ${backendText(payload)}`);
  if (payload.gpu) lines.push(`GPU: ${payload.gpu.available ? "available" : "not available"}${payload.gpu.waiting ? `, waiting: ${payload.gpu.waiting}` : ""}`);
  const docs = docgenText(payload.docgen);
  if (docs) lines.push(`docs: ${docs}`);
  if (payload.lastError) lines.push(`last error: ${payload.lastError}`);
  return lines;
}

export class StatusView implements vscode.Disposable {
  private readonly main: vscode.LanguageStatusItem;
  private readonly control: vscode.LanguageStatusItem;
  private readonly model: vscode.LanguageStatusItem;
  private readonly bar: vscode.StatusBarItem;
  private last: StatusPayload = {};

  constructor(selector: vscode.DocumentSelector) {
    this.main = vscode.languages.createLanguageStatusItem("spanlens.status", selector);
    this.main.name = "spanlens";
    this.main.command = { title: "Menu", command: "spanlens.showMenu" };
    this.control = vscode.languages.createLanguageStatusItem("spanlens.control", selector);
    this.control.name = "spanlens background work";
    this.model = vscode.languages.createLanguageStatusItem("spanlens.model", selector);
    this.model.name = "spanlens model";
    this.bar = vscode.window.createStatusBarItem("spanlens.statusBar", vscode.StatusBarAlignment.Right, 100);
    this.bar.name = "spanlens";
    this.bar.command = "spanlens.showMenu";
    this.update({ state: "starting" });
    this.bar.show();
  }

  /** Show the latest payload of the active folder's server. */
  update(payload: StatusPayload): void {
    this.last = payload;
    const state = payload.state ?? "starting";
    const busy = BUSY.has(state);
    const queued = queuedTotal(payload);
    this.main.busy = busy;
    this.main.text = `spanlens: ${state}${queued ? `, ${queued} queued` : ""}`;
    this.main.detail = queueText(payload);
    this.main.severity = payload.lastError || payload.backends?.unreachable
      ? vscode.LanguageStatusSeverity.Warning
      : vscode.LanguageStatusSeverity.Information;
    const paused = Boolean(payload.paused);
    this.control.text = paused ? `paused (${payload.paused})` : `backends: ${backendText(payload)}`;
    this.control.detail = statusLines(payload).slice(3).join("; ");
    this.control.command = paused
      ? { title: "Resume", command: "spanlens.client.resume" }
      : { title: "Pause", command: "spanlens.client.pause" };
    this.model.text = modelText(payload);
    this.model.detail = payload.modelSource === "none" ? `hovers show parser facts; ${embeddingText(payload)}` : embeddingText(payload);
    this.model.command = payload.modelSource === "none" ? { title: "Set up a model", command: "spanlens.openWalkthrough" } : undefined;
    const icon = busy ? "$(sync~spin)" : payload.lastError ? "$(warning)" : paused ? "$(debug-pause)" : "$(check)";
    this.bar.text = `${icon} spanlens ${state}${queued ? ` · ${queued} queued` : ""}${payload.inFlight ? ` · ${payload.inFlight} in flight` : ""}`;
    this.bar.tooltip = [modelText(payload), embeddingText(payload), ...statusLines(payload)].join("\n");
  }

  /** A message instead of a payload (server not running, no Python...). */
  problem(text: string): void {
    this.main.busy = false;
    this.main.text = "spanlens: not running";
    this.main.detail = text;
    this.main.severity = vscode.LanguageStatusSeverity.Error;
    this.bar.text = "$(error) spanlens not running";
    this.bar.tooltip = text;
  }

  get payload(): StatusPayload {
    return this.last;
  }

  dispose(): void {
    this.main.dispose();
    this.control.dispose();
    this.model.dispose();
    this.bar.dispose();
  }
}
