/**
 * API keys in VS Code's SecretStorage, handed to the server as the environment variable each
 * backend's `api_key_env` names. Only the variable names are kept outside SecretStorage.
 */
import * as vscode from "vscode";
import { apiKeyEnvNames } from "./settings.ts";

const NAMES = "spanlens.apiKeyNames";
const secretId = (name: string) => `spanlens.apiKey.${name}`;

export class ApiKeys {
  private readonly context: vscode.ExtensionContext;

  constructor(context: vscode.ExtensionContext) {
    this.context = context;
  }

  private names(): string[] {
    return this.context.globalState.get<string[]>(NAMES, []);
  }

  /** `{ENV_NAME: key}` for every stored key. */
  async environment(): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const name of this.names()) {
      const key = await this.context.secrets.get(secretId(name));
      if (key) env[name] = key;
    }
    return env;
  }

  /** Ask for the variable name and the key; true when a key was stored. */
  async prompt(): Promise<boolean> {
    const section = vscode.workspace.getConfiguration("spanlens");
    const configured = [...apiKeyEnvNames(section.get("backends")), ...apiKeyEnvNames(section.get("embeddings"))];
    const name = await vscode.window.showInputBox({
      title: "spanlens: API key",
      prompt: "Environment variable the backend reads its key from (its api_key_env)",
      value: configured[0] ?? this.names()[0] ?? "",
      ignoreFocusOut: true,
      validateInput: (v) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(v) ? undefined : "a variable name: letters, digits, _"),
    });
    if (!name) return false;
    const key = await vscode.window.showInputBox({ title: `spanlens: key for ${name}`, prompt: "Stored in VS Code's secret storage", password: true, ignoreFocusOut: true });
    if (!key) return false;
    await this.context.secrets.store(secretId(name), key);
    await this.context.globalState.update(NAMES, [...new Set([...this.names(), name])]);
    return true;
  }
}
