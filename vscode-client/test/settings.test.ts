import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { apiKeyEnvNames, DEPRECATED_NAMES, effectiveValue, SERVER_KEYS, serverSection, settingName, type Inspected } from "../src/settings.ts";

const inspector = (values: Record<string, Inspected>) => (key: string) => values[key];

test("only the settings the user set reach the server, nested as in spanlens.toml", () => {
  const section = serverSection(
    inspector({
      "lsp.codeLens": { globalValue: "top" },
      "lsp.idleSeconds": { workspaceValue: 2.5 },
      "gpu.enabled": { globalValue: false },
      "docgen.dir": {},
      "backends": { globalValue: [] },
    }),
    true,
  );
  assert.deepEqual(section, { lsp: { code_lens: "top", idle_seconds: 2.5 }, gpu: { enabled: false }, backends: [] });
});

test("folder beats workspace beats user; client-only keys never reach the server", () => {
  const values = { "lsp.diagnostics": { globalValue: "off", workspaceValue: "information", workspaceFolderValue: "hint" } };
  assert.deepEqual(serverSection(inspector(values), true), { lsp: { diagnostics: "hint" } });
  const section = serverSection(inspector({ "server.path": { globalValue: "/x" }, "trace.server": { globalValue: "verbose" } }), true);
  assert.deepEqual(section, {});
});

test("an untrusted workspace cannot set backends, server.path or interpreter", () => {
  const values = {
    "backends": { globalValue: [{ name: "mine" }], workspaceValue: [{ name: "theirs", url: "https://evil.example" }] },
    "server.path": { workspaceValue: "./evil.sh" },
    "lsp.codeLens": { workspaceValue: "off" },
  };
  assert.deepEqual(serverSection(inspector(values), false), { backends: [{ name: "mine" }], lsp: { code_lens: "off" } });
  assert.equal(effectiveValue("server.path", inspector(values), false), undefined);
  assert.equal(effectiveValue("server.path", inspector(values), true), "./evil.sh");
});

test("embedding endpoints reach the server, and an untrusted workspace cannot set them", () => {
  const values = {
    "embeddings": {
      globalValue: [{ name: "mine", provider: "ollama", model: "nomic-embed-text" }],
      workspaceValue: [{ name: "theirs", provider: "openai", url: "https://evil.example" }],
    },
  };
  assert.deepEqual(serverSection(inspector(values), false), { embeddings: [{ name: "mine", provider: "ollama", model: "nomic-embed-text" }] });
  assert.deepEqual(serverSection(inspector(values), true), { embeddings: [{ name: "theirs", provider: "openai", url: "https://evil.example" }] });
});

test("API key variable names come from the backends, valid names only", () => {
  const names = apiKeyEnvNames([{ api_key_env: "OPENAI_API_KEY" }, { api_key_env: "OPENAI_API_KEY" }, { api_key_env: "bad name" }, {}, null]);
  assert.deepEqual(names, ["OPENAI_API_KEY"]);
  assert.deepEqual(apiKeyEnvNames(undefined), []);
});

test("settings are camelCase; the old snake_case names are read as deprecated aliases", () => {
  assert.equal(settingName("lsp.code_lens"), "lsp.codeLens");
  assert.equal(settingName("enrichment.max_failures"), "enrichment.maxFailures");
  assert.deepEqual(DEPRECATED_NAMES, {
    "lsp.code_lens": "lsp.codeLens",
    "lsp.idle_seconds": "lsp.idleSeconds",
    "lsp.debounce_ms": "lsp.debounceMs",
    "enrichment.max_failures": "enrichment.maxFailures",
  });
  // Only the old name set: still read, and sent under the server's key.
  const old = serverSection(inspector({ "lsp.code_lens": { globalValue: "top" }, "enrichment.max_failures": { workspaceValue: 5 } }), true);
  assert.deepEqual(old, { lsp: { code_lens: "top" }, enrichment: { max_failures: 5 } });
  // Both at one level: the new name wins; the old name at a closer level still wins over the
  // new one at a farther level (VS Code's folder > workspace > user).
  const both = { "lsp.codeLens": { globalValue: "off", workspaceValue: "all" }, "lsp.code_lens": { workspaceValue: "top", workspaceFolderValue: undefined } };
  assert.equal(effectiveValue("lsp.code_lens", inspector(both), true), "all");
  const closer = { "lsp.codeLens": { globalValue: "off" }, "lsp.code_lens": { workspaceValue: "top" } };
  assert.equal(effectiveValue("lsp.code_lens", inspector(closer), true), "top");
});

test("package.json declares every server setting by its camelCase name, the aliases deprecated with the same schema", () => {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    contributes: { configuration: { properties: Record<string, Record<string, unknown>> } };
  };
  const properties = manifest.contributes.configuration.properties;
  for (const key of SERVER_KEYS) {
    const current = properties[`spanlens.${settingName(key)}`];
    assert.ok(current, settingName(key));
    assert.equal(current.markdownDeprecationMessage, undefined, settingName(key));
  }
  for (const [old, name] of Object.entries(DEPRECATED_NAMES)) {
    const { markdownDeprecationMessage, ...schema } = properties[`spanlens.${old}`];
    assert.match(String(markdownDeprecationMessage), new RegExp(`#spanlens\\.${name.replace(".", "\\.")}#`), old);
    assert.deepEqual(schema, properties[`spanlens.${name}`], old);
  }
  // Nothing else is snake_case but the backends' fields (spanlens.toml's, inside the value).
  const snake = Object.keys(properties).filter((name) => /_/.test(name) && !(name.slice("spanlens.".length) in DEPRECATED_NAMES));
  assert.deepEqual(snake, []);
});
