/** spanlens for VS Code: activate() only wires the parts together. */
import * as path from "node:path";
import * as vscode from "vscode";
import { registerCommands } from "./commands.ts";
import { FirstRunGuidance } from "./localModel.ts";
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
  const guidance = new FirstRunGuidance({
    state: context.workspaceState,
    showInformation: (message, ...actions) => vscode.window.showInformationMessage(message, ...actions),
    runCommand: (command) => vscode.commands.executeCommand(command),
  });
  servers = new Servers({
    log,
    bundledDir: path.join(context.extensionPath, "bundled"),
    secretEnv: () => keys.environment(),
    onStatus: (folder, payload) => {
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
