/** A user with no model yet: the first-run notification, "Use Ollama" (detect a running
 * Ollama, list its models, write `spanlens.backends`), and the status item's menu. No runtime
 * `vscode` import: the editor is passed in, so Node's test runner exercises this file as is. */
import type { ModelPayload } from "./localModel.ts";
import { SEARCH_COMMAND } from "./search.ts";

/** Ollama's default address, as the server probes it (BackendSettings.url). */
export const OLLAMA_URL = "http://127.0.0.1:11434";

/** Where Ollama listens: `OLLAMA_HOST` as the ollama CLI reads it (`host`, `host:port` or a
 * URL; 0.0.0.0 = this machine), else its default address. */
export function ollamaUrl(env: Record<string, string | undefined>): string {
  const host = (env.OLLAMA_HOST ?? "").trim();
  if (!host) return OLLAMA_URL;
  try {
    const url = new URL(/^https?:\/\//.test(host) ? host : `http://${host}`);
    if (url.hostname === "0.0.0.0") url.hostname = "127.0.0.1";
    if (!url.port && url.protocol === "http:") url.port = "11434";
    return `${url.protocol}//${url.host}`;
  } catch {
    return OLLAMA_URL;
  }
}
/** The model suggested for Ollama: the server's default Ollama model (BackendSettings.model). */
export const OLLAMA_MODEL = "qwen2.5-coder:7b";
export const PULL_COMMAND = `ollama pull ${OLLAMA_MODEL}`;

/** The commands the guidance, the walkthrough and the menu run. */
export const COMMANDS = {
  setupLocalModel: "spanlens.setupLocalModel",
  useOllama: "spanlens.useOllama",
  configureBackends: "spanlens.configureBackends",
  showMenu: "spanlens.showMenu",
  walkthrough: "spanlens.openWalkthrough",
} as const;

/** workspaceState key: the guidance was shown in this workspace. */
export const GUIDANCE_KEY = "spanlens.localModelGuidanceShown";
export const GUIDANCE_MESSAGE = "spanlens: no model is set up, so nothing is enriched yet: hovers show parser facts. Set one up?";
export const ACTIONS = {
  builtIn: "Set Up the Local Model",
  ollama: "Use Ollama",
  backends: "Configure Backends",
} as const;

/** An Ollama model name as shown and written to settings: what `ollama list` prints, nothing
 * else (the names come from a server, so they are untrusted text). */
const MODEL_NAME = /^[\w][\w.:/@+-]{0,199}$/;

/** The models a running Ollama at `url` has pulled (`GET /api/tags`), or undefined when none
 * answers in `timeoutMs`. */
export async function ollamaModels(fetchFn: typeof fetch, url = OLLAMA_URL, timeoutMs = 1500): Promise<string[] | undefined> {
  try {
    const response = await fetchFn(`${url}/api/tags`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) return undefined;
    const body = (await response.json()) as { models?: Array<{ name?: unknown }> } | null;
    if (!body || !Array.isArray(body.models)) return undefined;
    const names = body.models.map((m) => m?.name).filter((n): n is string => typeof n === "string" && MODEL_NAME.test(n));
    return [...new Set(names)];
  } catch {
    return undefined;
  }
}

/** The `spanlens.backends` value that makes Ollama's `model` enrich. */
export function ollamaBackends(model: string, url = OLLAMA_URL): Array<Record<string, string>> {
  return [{ name: "ollama", tier: "small", provider: "ollama", url, model }];
}

/** The slice of the editor the guidance needs. */
export interface GuidanceHost {
  /** The workspace's memento (`context.workspaceState`). */
  state: { get<T>(key: string): T | undefined; update(key: string, value: unknown): PromiseLike<void> };
  showInformation(message: string, ...actions: string[]): PromiseLike<string | undefined>;
  runCommand(command: string): PromiseLike<unknown>;
  /** Whether the server can run the built-in model (it has the engine: the bundled server
   * does, a spanlens installed without the [local] extra does not). */
  builtInAvailable(): boolean;
  /** Ollama's models, or undefined when it does not run. */
  ollamaModels(): Promise<string[] | undefined>;
}

/** Once per workspace, when a status says nothing can enrich: the ways to get a model. */
export class FirstRunGuidance {
  private readonly host: GuidanceHost;
  private offered = false;

  constructor(host: GuidanceHost) {
    this.host = host;
  }

  /** Called with every status payload; resolves when the user answered (or at once). */
  async onStatus(payload: ModelPayload): Promise<void> {
    if (payload.modelSource !== "none" || this.offered || this.host.state.get<boolean>(GUIDANCE_KEY)) return;
    this.offered = true; // before any await: the next payload must not offer it again
    await this.host.state.update(GUIDANCE_KEY, true);
    const actions: Array<[string, string]> = [];
    if (this.host.builtInAvailable()) actions.push([ACTIONS.builtIn, COMMANDS.setupLocalModel]);
    if ((await this.host.ollamaModels()) !== undefined) actions.push([ACTIONS.ollama, COMMANDS.useOllama]);
    actions.push([ACTIONS.backends, COMMANDS.configureBackends]);
    const pick = await this.host.showInformation(GUIDANCE_MESSAGE, ...actions.map(([label]) => label));
    const command = actions.find(([label]) => label === pick)?.[1];
    if (command) await this.host.runCommand(command);
  }
}

export interface PickItem {
  label: string;
  description?: string;
  detail?: string;
}

/** The slice of the editor "Use Ollama" needs. */
export interface OllamaHost {
  /** Where Ollama listens (ollamaUrl). */
  url: string;
  ollamaModels(): Promise<string[] | undefined>;
  /** A quick pick; the label picked, or undefined. */
  pick(items: PickItem[], placeholder: string): PromiseLike<string | undefined>;
  /** Write `spanlens.backends` (the user's settings). */
  setBackends(backends: Array<Record<string, string>>): PromiseLike<void>;
  showInformation(message: string, ...actions: string[]): PromiseLike<string | undefined>;
  copy(text: string): PromiseLike<void>;
}

const PULL_LABEL = `Pull ${OLLAMA_MODEL}…`;
export const COPY_ACTION = "Copy Command";

/** "Use Ollama": pick one of its models and write it to `spanlens.backends`; with none pulled,
 * or on request, the `ollama pull` command to run. Resolves to the model now in use, if any. */
export async function useOllama(host: OllamaHost): Promise<string | undefined> {
  const models = await host.ollamaModels();
  if (models === undefined) {
    await host.showInformation(
      `spanlens: Ollama does not answer at ${host.url}: install it from ollama.com and start it, then run "spanlens: Use Ollama" again.`,
    );
    return undefined;
  }
  const offerPull = async (why: string) => {
    const pick = await host.showInformation(`spanlens: ${why}: run "${PULL_COMMAND}" in a terminal, then "spanlens: Use Ollama" again.`, COPY_ACTION);
    if (pick === COPY_ACTION) await host.copy(PULL_COMMAND);
  };
  if (!models.length) {
    await offerPull("Ollama runs but has no model yet");
    return undefined;
  }
  const ordered = [...models].sort((a, b) => Number(b === OLLAMA_MODEL) - Number(a === OLLAMA_MODEL));
  const items: PickItem[] = ordered.map((model) => ({ label: model, description: model === OLLAMA_MODEL ? "suggested" : undefined }));
  if (!models.includes(OLLAMA_MODEL)) items.push({ label: PULL_LABEL, description: PULL_COMMAND, detail: "a code model that fits an 8 GB GPU" });
  const picked = await host.pick(items, "The Ollama model spanlens enriches with");
  if (picked === undefined) return undefined;
  if (picked === PULL_LABEL) {
    await offerPull(`${OLLAMA_MODEL} is not pulled yet`);
    return undefined;
  }
  await host.setBackends(ollamaBackends(picked, host.url));
  void host.showInformation(`spanlens: enriching with Ollama's ${picked} (spanlens.backends in your user settings).`);
  return picked;
}

export interface MenuItem extends PickItem {
  command: string;
}

/** The status item's menu (as Tabby's): pause or resume, enrich this file, the status report,
 * the logs, restart; and the ways to a model while none is set up. */
export function menuItems(payload: ModelPayload & { paused?: string | null }): MenuItem[] {
  const items: MenuItem[] = [];
  if (payload.modelSource === "none") {
    items.push({ label: "$(sparkle) Set up a model…", description: "built-in, Ollama or a backend", command: COMMANDS.walkthrough });
  }
  items.push(
    payload.paused
      ? { label: "$(debug-start) Resume", description: `paused (${payload.paused})`, command: "spanlens.client.resume" }
      : { label: "$(debug-pause) Pause background work", command: "spanlens.client.pause" },
    { label: "$(sync) Enrich this file", command: "spanlens.client.enrichFile" },
    { label: "$(search) Search by meaning…", command: SEARCH_COMMAND },
    { label: "$(info) Show status report", command: "spanlens.client.statusReport" },
    { label: "$(output) Show logs", command: "spanlens.showLogs" },
    { label: "$(debug-restart) Restart server", command: "spanlens.restartServer" },
  );
  return items;
}
