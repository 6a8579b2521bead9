/**
 * Mapping VS Code settings to the server's `spanlens` section (protocol.md, "Settings").
 * Pure: the caller passes what `WorkspaceConfiguration.inspect` reports for each key.
 */

/** Settings the client uses to find and start the server; changing one restarts it. */
export const LOCATING_KEYS = ["server.path", "importStrategy", "interpreter"] as const;

/** Settings sent to the server, by their dotted spanlens.toml key (the setting is named
 * `spanlens.` + settingName(key)). */
export const SERVER_KEYS = [
  "lsp.code_lens",
  "lsp.diagnostics",
  "lsp.idle_seconds",
  "lsp.debounce_ms",
  "backends",
  "embeddings",
  "enrichment.max_failures",
  "gpu.enabled",
  "docgen.enabled",
  "docgen.dir",
] as const;

/** Keys whose workspace-level values an untrusted workspace may not set. */
export const RESTRICTED_KEYS = new Set<string>(["server.path", "interpreter", "backends", "embeddings"]);

export interface Inspected {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

export type Inspect = (key: string) => Inspected | undefined;

/** The VS Code setting name of a spanlens.toml key: camelCase, as VS Code's convention
 * (`lsp.code_lens` -> `lsp.codeLens`). */
export function settingName(key: string): string {
  return key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** Setting names read as deprecated aliases for one release: the spanlens.toml spellings
 * (`spanlens.lsp.code_lens`) that were the settings' names before they followed VS Code's. */
export const DEPRECATED_NAMES: Record<string, string> = Object.fromEntries(
  SERVER_KEYS.filter((key) => settingName(key) !== key).map((key) => [key, settingName(key)]),
);

/**
 * The value the user set for the spanlens.toml key `key` (folder > workspace > user), or
 * undefined when only the default applies. At each level the camelCase setting wins over its
 * deprecated snake_case alias. In an untrusted workspace, restricted keys take the user's
 * value only.
 */
export function effectiveValue(key: string, inspect: Inspect, trusted: boolean): unknown {
  const names = settingName(key) === key ? [key] : [settingName(key), key];
  const found = names.map((name) => inspect(name));
  const levels: Array<keyof Inspected> = trusted || !RESTRICTED_KEYS.has(key)
    ? ["workspaceFolderValue", "workspaceValue", "globalValue"]
    : ["globalValue"];
  for (const level of levels) {
    for (const inspected of found) {
      const value = inspected?.[level];
      if (value !== undefined && value !== null) return value;
    }
  }
  return undefined;
}

/**
 * The `spanlens` section for `workspace/configuration`: only what the user set, nested as in
 * spanlens.toml. Unset keys are absent, so the workspace's spanlens.toml still applies.
 */
export function serverSection(inspect: Inspect, trusted: boolean): Record<string, unknown> {
  const section: Record<string, unknown> = {};
  for (const key of SERVER_KEYS) {
    const value = effectiveValue(key, inspect, trusted);
    if (value === undefined) continue;
    const parts = key.split(".");
    let table = section;
    for (const part of parts.slice(0, -1)) {
      table[part] = (table[part] as Record<string, unknown> | undefined) ?? {};
      table = table[part] as Record<string, unknown>;
    }
    table[parts[parts.length - 1]] = value;
  }
  return section;
}

/** Names of the environment variables the configured backends read their API keys from. */
export function apiKeyEnvNames(backends: unknown): string[] {
  if (!Array.isArray(backends)) return [];
  const names = new Set<string>();
  for (const backend of backends) {
    const name = (backend as { api_key_env?: unknown } | null)?.api_key_env;
    if (typeof name === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) names.add(name);
  }
  return [...names];
}
