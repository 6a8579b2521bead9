import assert from "node:assert/strict";
import { test } from "node:test";
import { locateServer, type LocateSettings, type Probe } from "../src/locate.ts";

const BUNDLED = "/ext/bundled";
const SCRIPT = "/ext/bundled/tool/spanlens_server.py";

function probe(overrides: Partial<Probe> & { files?: string[]; versions?: Record<string, [number, number]> } = {}): Probe {
  const files = new Set(overrides.files ?? [SCRIPT]);
  const versions = overrides.versions ?? { "/usr/bin/python3": [3, 11] };
  return {
    platform: "linux",
    selectedInterpreter: () => undefined,
    which: (name) => (name === "python3" && "/usr/bin/python3" in versions ? "/usr/bin/python3" : undefined),
    isFile: (p) => files.has(p),
    pythonVersion: (python) => versions[python],
    ...overrides,
  };
}

const settings = (s: Partial<LocateSettings> = {}): LocateSettings => ({ serverPath: "", importStrategy: "useBundled", interpreter: "", ...s });

test("server.path wins over everything, run with serve --stdio", () => {
  const found = locateServer(settings({ serverPath: "/proj/.venv/bin/spanlens", interpreter: "/x/python" }), BUNDLED, probe());
  assert.deepEqual(found, { command: "/proj/.venv/bin/spanlens", args: ["serve", "--stdio"], source: "spanlens.server.path" });
});

test("the bundled server runs with python3 on PATH by default", () => {
  const found = locateServer(settings(), BUNDLED, probe());
  assert.deepEqual(found, { command: "/usr/bin/python3", args: [SCRIPT, "serve", "--stdio"], source: "bundled" });
});

test("the Python extension's interpreter comes before python3, spanlens.interpreter before both", () => {
  const versions: Record<string, [number, number]> = { "/usr/bin/python3": [3, 11], "/venv/bin/python": [3, 12], "/mine/python": [3, 13] };
  const selected = probe({ versions, selectedInterpreter: () => "/venv/bin/python" });
  assert.equal((locateServer(settings(), BUNDLED, selected) as { command: string }).command, "/venv/bin/python");
  assert.equal((locateServer(settings({ interpreter: "/mine/python" }), BUNDLED, selected) as { command: string }).command, "/mine/python");
});

test("an interpreter older than 3.10 is passed over for the next one", () => {
  const versions: Record<string, [number, number]> = { "/usr/bin/python3": [3, 11], "/old/python": [3, 8] };
  const found = locateServer(settings({ interpreter: "/old/python" }), BUNDLED, probe({ versions }));
  assert.equal((found as { command: string }).command, "/usr/bin/python3");
});

test("no usable Python: one line naming what was found and the fix", () => {
  const found = locateServer(settings(), BUNDLED, probe({ versions: { "/usr/bin/python3": [3, 8] } }));
  assert.ok("error" in found);
  assert.match(found.error, /needs Python 3\.10 or newer \(found \/usr\/bin\/python3 \(3\.8\)\)/);
  assert.match(found.error, /spanlens\.interpreter or spanlens\.server\.path/);
  assert.ok(!found.error.includes("\n"));
  const none = locateServer(settings(), BUNDLED, probe({ versions: {} }));
  assert.ok("error" in none && none.error.includes("none found"));
});

test("fromEnvironment takes the interpreter's own spanlens, else the one on PATH", () => {
  const versions: Record<string, [number, number]> = { "/venv/bin/python": [3, 12] };
  const beside = probe({ versions, selectedInterpreter: () => "/venv/bin/python", files: ["/venv/bin/spanlens"] });
  assert.deepEqual(locateServer(settings({ importStrategy: "fromEnvironment" }), BUNDLED, beside), {
    command: "/venv/bin/spanlens", args: ["serve", "--stdio"], source: "environment",
  });
  const onPath = probe({ versions, selectedInterpreter: () => "/venv/bin/python", files: [], which: (n) => (n === "spanlens" ? "/usr/local/bin/spanlens" : undefined) });
  assert.equal((locateServer(settings({ importStrategy: "fromEnvironment" }), BUNDLED, onPath) as { command: string }).command, "/usr/local/bin/spanlens");
  const nowhere = probe({ versions, selectedInterpreter: () => "/venv/bin/python", files: [] });
  const missing = locateServer(settings({ importStrategy: "fromEnvironment" }), BUNDLED, nowhere);
  assert.ok("error" in missing && missing.error.includes('"/venv/bin/python -m pip install spanlens"'));
});

test("a build without the bundled server says which settings work instead", () => {
  const found = locateServer(settings(), BUNDLED, probe({ files: [] }));
  assert.ok("error" in found && found.error.includes("no bundled server"));
});
