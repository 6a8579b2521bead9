/** One language client per workspace folder; starts, restarts (serialized) and stops them. */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { promisify } from "node:util";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  RevealOutputChannelOn,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import { setupModels, type InstallHost, type SetupRun, type WorkDoneValue } from "./localModel.ts";
import { locateServer, type ImportStrategy, type Machine } from "./locate.ts";
import { escapeIcons } from "./search.ts";
import { effectiveValue, serverSection } from "./settings.ts";
import type { StatusPayload } from "./status.ts";

const run = promisify(execFile);

/** Editor language ids spanlens indexes: the server's table (spanlens_lsp.indexing.languages) is
 * the one list; tests/unit/test_client_languages.py checks this one and package.json against it. */
export const LANGUAGES = ["python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust", "java"];

export interface Hooks {
  log: vscode.LogOutputChannel;
  bundledDir: string;
  /** Environment variables holding the stored API keys (never logged). */
  secretEnv(): Promise<Record<string, string>>;
  onStatus(folder: vscode.WorkspaceFolder, payload: StatusPayload): void;
  onProblem(folder: vscode.WorkspaceFolder, text: string): void;
  /** Command id a resolved lens runs in the client (wraps the server's `spanlens.showSpan`). */
  showSpanCommand: string;
}

function selectedInterpreter(folder: vscode.WorkspaceFolder): string | undefined {
  // The Python extension's API is read without a hard dependency on it.
  const python = vscode.extensions.getExtension("ms-python.python");
  const api = python?.isActive ? (python.exports as { environments?: { getActiveEnvironmentPath?(r: vscode.Uri): { path?: string } } }) : undefined;
  try {
    return api?.environments?.getActiveEnvironmentPath?.(folder.uri)?.path || undefined;
  } catch {
    return undefined;
  }
}

/** This machine, for the locator: the interpreter probe runs asynchronously (10 s at most). */
function thisMachine(folder: vscode.WorkspaceFolder): Machine {
  const stat = (p: string) => {
    try {
      return fs.statSync(p);
    } catch {
      return undefined;
    }
  };
  return {
    platform: process.platform,
    env: process.env,
    selectedInterpreter: () => selectedInterpreter(folder),
    isFile: (p) => stat(p)?.isFile() ?? false,
    isExecutable: (p) => {
      if (!stat(p)?.isFile()) return false;
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    },
    exec: async (file, args) => {
      try {
        return (await run(file, args, { timeout: 10_000, encoding: "utf8", windowsHide: true })).stdout;
      } catch {
        return undefined;
      }
    },
  };
}

export class Servers implements vscode.Disposable {
  private readonly clients = new Map<string, LanguageClient>();
  /** Where each folder's server came from (locateServer's `source`). */
  private readonly located = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  private readonly hooks: Hooks;

  constructor(hooks: Hooks) {
    this.hooks = hooks;
  }

  /** The client of the folder holding `uri` (else the first folder's). */
  clientFor(uri?: vscode.Uri): LanguageClient | undefined {
    const folder = uri ? vscode.workspace.getWorkspaceFolder(uri) : undefined;
    if (folder) return this.clients.get(folder.uri.toString());
    return this.clients.values().next().value;
  }

  /** Send a `spanlens.*` command to the server of `uri`'s folder. */
  async execute(command: string, argument: unknown, uri?: vscode.Uri): Promise<unknown> {
    const client = this.clientFor(uri);
    if (!client) throw new Error("spanlens is not running for this file's folder");
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: argument === undefined ? [] : [argument] });
  }

  /** Install the built-in model, then the built-in embedding model, through the server of
   * `uri`'s folder (the models are the machine's: one install serves every folder), each in a
   * cancellable notification. */
  async setupModels(uri?: vscode.Uri): Promise<SetupRun> {
    const client = this.clientFor(uri);
    if (!client?.isRunning()) throw new Error("spanlens is not running for this file's folder");
    const host: InstallHost = {
      withProgress: (title, task) =>
        vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, task),
      execute: (params) => client.sendRequest(ExecuteCommandRequest.type, params),
      onProgress: (token, handler) => client.onProgress(WorkDoneProgress.type, token, (value) => handler(value as WorkDoneValue)),
      cancel: (token) => void client.sendNotification(WorkDoneProgressCancelNotification.type, { token }),
    };
    return setupModels(host);
  }

  /** Tell every server to pull its settings again. */
  settingsChanged(): void {
    for (const client of this.clients.values()) {
      if (client.isRunning()) void client.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
    }
  }

  /** Start, stop and restart clients so there is one per current folder; serialized. */
  sync(restartAll = false): Promise<void> {
    this.chain = this.chain.then(() => this.doSync(restartAll)).catch((error: unknown) => {
      this.hooks.log.error(`spanlens: ${String(error)}`);
    });
    return this.chain;
  }

  /** Restart every server after a quiet 300 ms (several setting changes = one restart). */
  restartSoon(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.sync(true), 300);
  }

  private async doSync(restartAll: boolean): Promise<void> {
    const folders = new Map((vscode.workspace.workspaceFolders ?? []).map((f) => [f.uri.toString(), f]));
    for (const [key, client] of [...this.clients]) {
      if (restartAll || !folders.has(key)) {
        this.clients.delete(key);
        await client.stop().catch(() => undefined);
        client.dispose().catch(() => undefined);
      }
    }
    for (const [key, folder] of folders) {
      if (!this.clients.has(key) && folder.uri.scheme === "file") await this.start(folder);
    }
  }

  private async start(folder: vscode.WorkspaceFolder): Promise<void> {
    const { log } = this.hooks;
    const trusted = vscode.workspace.isTrusted;
    const config = vscode.workspace.getConfiguration("spanlens", folder.uri);
    const inspect = (key: string) => config.inspect(key);
    const located = await locateServer(
      {
        serverPath: String(effectiveValue("server.path", inspect, trusted) ?? ""),
        interpreter: String(effectiveValue("interpreter", inspect, trusted) ?? ""),
        importStrategy: trusted ? ((config.get<string>("importStrategy") ?? "useBundled") as ImportStrategy) : "useBundled",
      },
      this.hooks.bundledDir,
      thisMachine(folder),
    );
    if ("error" in located) {
      log.error(located.error);
      this.hooks.onProblem(folder, located.error);
      void vscode.window.showErrorMessage(located.error, "Show Logs").then((pick) => {
        if (pick) log.show(true);
      });
      return;
    }
    this.located.set(folder.uri.toString(), located.source);
    log.info(`starting the ${located.source} server for ${folder.name}${trusted ? "" : " (untrusted workspace)"}: ${located.command} ${located.args.join(" ")}`);
    const env = { ...process.env, ...(await this.hooks.secretEnv()) };
    const serverOptions: ServerOptions = { command: located.command, args: located.args, options: { cwd: folder.uri.fsPath, env } };
    const showSpan = this.hooks.showSpanCommand;
    const folderKey = folder.uri.toString();
    const clientOptions: LanguageClientOptions = {
      documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language, pattern: `${folder.uri.fsPath}/**/*` })),
      workspaceFolder: folder,
      outputChannel: log,
      traceOutputChannel: log,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      middleware: {
        workspace: {
          configuration: (params) =>
            params.items.map((item) => {
              if (item.section !== "spanlens") return null;
              const scoped = vscode.workspace.getConfiguration("spanlens", folder.uri);
              return serverSection((key) => scoped.inspect(key), vscode.workspace.isTrusted);
            }),
        },
        resolveCodeLens: async (lens, token, next) => {
          const resolved = await next(lens, token);
          // The title quotes the model's summary: codicon syntax in it is text, not an icon.
          if (resolved?.command) resolved.command = { ...resolved.command, title: escapeIcons(resolved.command.title) };
          // The lens opens the span's whole enrichment in the client (see showSpanCommand).
          if (resolved?.command?.command === "spanlens.showSpan") {
            resolved.command = { ...resolved.command, command: showSpan, arguments: [folderKey, ...(resolved.command.arguments ?? [])] };
          }
          return resolved;
        },
      },
    };
    const client = new LanguageClient("spanlens", "spanlens", serverOptions, clientOptions);
    // The extension registers the spanlens.* commands itself, once for all folders' servers.
    const commands = client.getFeature(ExecuteCommandRequest.method) as unknown as { initialize(): void };
    commands.initialize = () => undefined;
    // The first-run guidance offers the model install itself: no second popup from the server.
    client.registerFeature({
      fillClientCapabilities: (capabilities) => {
        capabilities.experimental = { ...(capabilities.experimental as object | undefined), spanlens: { modelSetup: true } };
      },
      initialize: () => undefined,
      getState: () => ({ kind: "static" }),
      clear: () => undefined,
    });
    client.onNotification("spanlens/status", (payload: StatusPayload) => this.hooks.onStatus(folder, payload));
    this.clients.set(folderKey, client);
    try {
      await client.start();
    } catch (error) {
      const text = `spanlens server for ${folder.name} failed to start: ${error instanceof Error ? error.message : String(error)}`;
      log.error(text);
      this.hooks.onProblem(folder, text);
    }
  }

  /** Where the running servers came from: "bundled", "environment", "spanlens.server.path"... */
  sources(): string[] {
    return [...this.clients.keys()].map((key) => this.located.get(key)).filter((s): s is string => s !== undefined);
  }

  /** The client of a folder by its URI string (lens arguments carry it). */
  byFolderKey(key: string): LanguageClient | undefined {
    return this.clients.get(key);
  }

  async stop(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.stop().catch(() => undefined)));
  }

  dispose(): void {
    void this.stop();
  }
}
