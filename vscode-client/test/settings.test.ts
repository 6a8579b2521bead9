import assert from "node:assert/strict";
import { test } from "node:test";
import { apiKeyEnvNames, effectiveValue, serverSection, type Inspected } from "../src/settings.ts";

const inspector = (values: Record<string, Inspected>) => (key: string) => values[key];

test("only the settings the user set reach the server, nested as in spanlens.toml", () => {
  const section = serverSection(
    inspector({
      "lsp.code_lens": { globalValue: "top" },
      "lsp.idle_seconds": { workspaceValue: 2.5 },
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
    "lsp.code_lens": { workspaceValue: "off" },
  };
  assert.deepEqual(serverSection(inspector(values), false), { backends: [{ name: "mine" }], lsp: { code_lens: "off" } });
  assert.equal(effectiveValue("server.path", inspector(values), false), undefined);
  assert.equal(effectiveValue("server.path", inspector(values), true), "./evil.sh");
});

test("API key variable names come from the backends, valid names only", () => {
  const names = apiKeyEnvNames([{ api_key_env: "OPENAI_API_KEY" }, { api_key_env: "OPENAI_API_KEY" }, { api_key_env: "bad name" }, {}, null]);
  assert.deepEqual(names, ["OPENAI_API_KEY"]);
  assert.deepEqual(apiKeyEnvNames(undefined), []);
});
