/** The palette commands (category "spanlens"): each one forwards to the server's command. */
import * as vscode from "vscode";
import { ExecuteCommandRequest } from "vscode-languageclient/node";
import { installOutcome, isCancelled, SETUP_COMMAND, type InstallResult } from "./localModel.ts";
import { showMarkdown } from "./preview.ts";
import type { Servers } from "./servers.ts";
import type { StatusView } from "./status.ts";

function activeUri(): vscode.Uri | undefined {
  const uri = vscode.window.activeTextEditor?.document.uri;
  return uri?.scheme === "file" ? uri : undefined;
}

function fileUri(): vscode.Uri {
  const uri = activeUri();
  if (!uri) throw new Error("open a file of the workspace first");
  return uri;
}

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0];
}

function installedMessage(result: InstallResult): Thenable<unknown> {
  const { text, warning } = installOutcome(result);
  return warning ? vscode.window.showWarningMessage(text) : vscode.window.showInformationMessage(text);
}

export function registerCommands(servers: Servers, view: StatusView, log: vscode.LogOutputChannel): vscode.Disposable[] {
  const run = (id: string, action: () => Promise<unknown>) =>
    vscode.commands.registerCommand(id, async () => {
      try {
        await action();
      } catch (error) {
        log.error(`${id}: ${message(error)}`);
        void vscode.window.showErrorMessage(`spanlens: ${message(error)}`);
      }
    });
  const server = (command: string, argument?: unknown) => servers.execute(command, argument, activeUri());
  return [
    run("spanlens.client.enrichFile", async () => {
      const uri = fileUri();
      const result = (await servers.execute("spanlens.enrichFile", { uri: uri.toString() }, uri)) as { queued?: number };
      vscode.window.setStatusBarMessage(`spanlens: ${result.queued ?? 0} spans queued`, 5000);
    }),
    run("spanlens.client.enrichSpan", async () => {
      const editor = vscode.window.activeTextEditor;
      const uri = fileUri();
      const position = editor!.selection.active;
      const result = (await servers.execute("spanlens.enrichSpan", { uri: uri.toString(), line: position.line, character: position.character }, uri)) as { queued?: number };
      vscode.window.setStatusBarMessage(result.queued ? "spanlens: span queued" : "spanlens: span already fresh", 5000);
    }),
    run("spanlens.client.retryFailed", async () => {
      const result = (await server("spanlens.retryFailed", {})) as { retried?: number };
      vscode.window.setStatusBarMessage(`spanlens: ${result.retried ?? 0} failed spans retried`, 5000);
    }),
    run("spanlens.client.pause", async () => view.update((await server("spanlens.pause")) as object)),
    run("spanlens.client.resume", async () => view.update((await server("spanlens.resume")) as object)),
    run("spanlens.client.statusReport", async () => {
      const report = (await server("spanlens.statusReport")) as { markdown?: string };
      await showMarkdown("status-report", "spanlens status", report.markdown ?? "");
    }),
    run("spanlens.client.docgenFile", async () => {
      const uri = fileUri();
      const result = (await servers.execute("spanlens.docgenFile", { uri: uri.toString() }, uri)) as { uri?: string; message?: string };
      vscode.window.setStatusBarMessage(`spanlens: ${result.message ?? (result.uri ? "docs written" : "docs queued")}`, 5000);
    }),
    run("spanlens.client.openDoc", async () => {
      const uri = fileUri();
      const result = (await servers.execute("spanlens.openDoc", { uri: uri.toString() }, uri)) as { uri?: string | null; message?: string };
      if (!result.uri) throw new Error(result.message ?? "no docs for this file yet: run Generate Docs for This File");
      await vscode.commands.executeCommand("markdown.showPreview", vscode.Uri.parse(result.uri));
    }),
    vscode.commands.registerCommand(SETUP_COMMAND, async () => {
      try {
        const result = await servers.installModel(activeUri());
        // The server that installed it serves it at once; the other folders' servers re-resolve.
        servers.settingsChanged();
        void installedMessage(result);
      } catch (error) {
        if (isCancelled(error)) {
          void vscode.window.showInformationMessage("spanlens: install cancelled; run Set Up the Local Model again to resume.");
          return;
        }
        log.error(`${SETUP_COMMAND}: ${message(error)}`);
        void vscode.window.showErrorMessage(`spanlens: ${message(error)}`);
      }
    }),
    vscode.commands.registerCommand("spanlens.client.showSpan", async (folderKey: string, argument: unknown) => {
      try {
        const client = servers.byFolderKey(folderKey);
        if (!client) throw new Error("the server of this file is not running");
        const result = (await client.sendRequest(ExecuteCommandRequest.type, { command: "spanlens.showSpan", arguments: [argument] })) as { markdown?: string; span?: { name?: string } };
        await showMarkdown(`span-${String((argument as { spanId?: unknown })?.spanId ?? "")}`, result.span?.name ?? "span", result.markdown ?? "");
      } catch (error) {
        void vscode.window.showErrorMessage(`spanlens: ${message(error)}`);
      }
    }),
  ];
}
