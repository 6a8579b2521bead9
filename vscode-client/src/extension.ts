/** spanlens for VS Code: activate() only wires the parts together. */
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { registerCommands } from "./commands.ts";
import { COMMANDS, FirstRunGuidance, menuItems, ollamaModels, ollamaUrl, useOllama } from "./firstRun.ts";
import { provider, SCHEME } from "./preview.ts";
import { ApiKeys } from "./secrets.ts";
import { LANGUAGES, Servers } from "./servers.ts";
import { LOCATING_KEYS } from "./settings.ts";
import { StatusView } from "./status.ts";

let servers: Servers | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("spanlens", { log: true });
  const view = new StatusView(LANGUAGES.map((language) => ({ scheme: "file", language })));
  const keys = new ApiKeys(context);
  const bundledDir = path.join(context.extensionPath, "bundled");
  // The built-in model runs where the server has its engine: a spanlens installed with the
  // [local] extra, or the bundled server (bundle-server.sh installs the extra into bundled/libs).
  const builtInAvailable = () =>
    servers?.sources().some((source) => !source.startsWith("bundled")) || fs.existsSync(path.join(bundledDir, "libs", "xllamacpp"));
  // The walkthrough's built-in step shows where the engine is (its `when` context key).
  let shownBuiltIn: boolean | undefined;
  const builtInContext = () => {
    const available = builtInAvailable();
    if (available !== shownBuiltIn) void vscode.commands.executeCommand("setContext", "spanlens.builtInModel", available);
    shownBuiltIn = available;
    return available;
  };
  const guidance = new FirstRunGuidance({
    state: context.workspaceState,
    showInformation: (message, ...actions) => vscode.window.showInformationMessage(message, ...actions),
    runCommand: (command) => vscode.commands.executeCommand(command),
    builtInAvailable: builtInContext,
    ollamaModels: () => ollamaModels(fetch, ollamaUrl(process.env)),
  });
  servers = new Servers({
    log,
    bundledDir,
    secretEnv: () => keys.environment(),
    onStatus: (folder, payload) => {
      builtInContext();
      void guidance.onStatus(payload);
      const active = vscode.window.activeTextEditor?.document.uri;
      const activeFolder = active ? vscode.workspace.getWorkspaceFolder(active) : undefined;
      if (!activeFolder || activeFolder.uri.toString() === folder.uri.toString()) view.update(payload);
    },
    onProblem: (_folder, text) => view.problem(text),
    showSpanCommand: "spanlens.client.showSpan",
  });
  const restartOn = LOCATING_KEYS.map((key) => `spanlens.${key}`);
  context.subscriptions.push(
    log,
    view,
    servers,
    vscode.workspace.registerTextDocumentContentProvider(SCHEME, provider),
    ...registerCommands(servers, view, log),
    vscode.commands.registerCommand("spanlens.showLogs", () => log.show()),
    vscode.commands.registerCommand("spanlens.restartServer", () => servers?.sync(true)),
    vscode.commands.registerCommand(COMMANDS.useOllama, () =>
      useOllama({
        url: ollamaUrl(process.env),
        ollamaModels: () => ollamaModels(fetch, ollamaUrl(process.env)),
        pick: async (items, placeHolder) => (await vscode.window.showQuickPick(items, { title: "spanlens: Use Ollama", placeHolder }))?.label,
        setBackends: (backends) => vscode.workspace.getConfiguration("spanlens").update("backends", backends, vscode.ConfigurationTarget.Global),
        showInformation: (message, ...actions) => vscode.window.showInformationMessage(message, ...actions),
        copy: (text) => vscode.env.clipboard.writeText(text),
      }),
    ),
    vscode.commands.registerCommand(COMMANDS.configureBackends, () => vscode.commands.executeCommand("workbench.action.openSettings", "spanlens.backends")),
    vscode.commands.registerCommand(COMMANDS.walkthrough, () =>
      vscode.commands.executeCommand("workbench.action.openWalkthrough", `${context.extension.id}#spanlens.firstRun`, false),
    ),
    vscode.commands.registerCommand(COMMANDS.showMenu, async () => {
      const item = await vscode.window.showQuickPick(menuItems(view.payload), { placeHolder: "spanlens" });
      if (item) await vscode.commands.executeCommand(item.command);
    }),
    vscode.commands.registerCommand("spanlens.setApiKey", async () => {
      if (await keys.prompt()) servers?.restartSoon();
    }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (restartOn.some((key) => event.affectsConfiguration(key))) servers?.restartSoon();
      else if (event.affectsConfiguration("spanlens")) servers?.settingsChanged();
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => void servers?.sync()),
    vscode.workspace.onDidGrantWorkspaceTrust(() => servers?.restartSoon()),
  );
  const python = vscode.extensions.getExtension("ms-python.python");
  const api = python?.isActive ? (python.exports as { environments?: { onDidChangeActiveEnvironmentPath?: vscode.Event<unknown> } }) : undefined;
  const onPython = api?.environments?.onDidChangeActiveEnvironmentPath;
  if (onPython) context.subscriptions.push(onPython(() => servers?.restartSoon()));
  await servers.sync();
}

export async function deactivate(): Promise<void> {
  await servers?.stop();
}
