/** The palette commands (category "spanlens"): each one forwards to the server's command. */
import * as vscode from "vscode";
import { ExecuteCommandRequest } from "vscode-languageclient/node";
import { isCancelled, SETUP_COMMAND, setupOutcome } from "./localModel.ts";
import { showMarkdown } from "./preview.ts";
import { MeaningSearch, SEARCH_COMMAND, SEARCH_TITLE, type SearchResult } from "./search.ts";
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

/** Open a search result's file with the cursor at its span's start and the span in view. */
async function openSpan(result: SearchResult): Promise<void> {
  const { start, end } = result.range;
  const editor = await vscode.window.showTextDocument(vscode.Uri.parse(result.uri), {
    selection: new vscode.Range(start.line, start.character, start.line, start.character),
  });
  editor.revealRange(new vscode.Range(start.line, start.character, end.line, end.character), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
}

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0];
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
  const search = new MeaningSearch({
    ask: (value) => vscode.window.showInputBox({ title: SEARCH_TITLE, prompt: "What the code does, in words", placeHolder: "read settings from disk", value }),
    search: (argument) => server("spanlens.search", argument),
    pick: (items, options) => vscode.window.showQuickPick(items, { ...options, matchOnDescription: true, matchOnDetail: true }),
    open: (result) => openSpan(result),
    inform: (text) => vscode.window.showInformationMessage(text),
  });
  return [
    run(SEARCH_COMMAND, () => search.run()),
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
        const run = await servers.setupModels(activeUri());
        // The server that installed them serves them at once; the other folders' servers re-resolve.
        if (run.results.length) servers.settingsChanged();
        const { info, warnings } = setupOutcome(run.results);
        if (info) void vscode.window.showInformationMessage(info);
        for (const warning of warnings) void vscode.window.showWarningMessage(warning);
        if (run.error !== undefined) throw run.error;
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
