/**
 * Read-only Markdown previews of server text (span enrichments, the status report).
 * The text is a virtual document shown by the built-in preview, which renders it untrusted:
 * model output cannot run commands or scripts.
 */
import * as vscode from "vscode";

export const SCHEME = "spanlens-view";
const documents = new Map<string, string>();
const changed = new vscode.EventEmitter<vscode.Uri>();

export const provider: vscode.TextDocumentContentProvider = {
  onDidChange: changed.event,
  provideTextDocumentContent: (uri) => documents.get(uri.path) ?? "",
};

export async function showMarkdown(id: string, title: string, markdown: string): Promise<void> {
  const uri = vscode.Uri.from({ scheme: SCHEME, path: `/${id}/${title.replace(/[^\w.-]+/g, "_")}.md` });
  documents.set(uri.path, markdown);
  changed.fire(uri);
  await vscode.commands.executeCommand("markdown.showPreview", uri);
}
