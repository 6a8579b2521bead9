import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { locateServer, SUPPORTED_PYTHON, which, type LocateSettings, type Machine } from "../src/locate.ts";

/** A simulated machine: its files (executable or not), the interpreters that run and their
 * versions, its environment; it records every interpreter probed. */
interface Sim {
  platform: "linux" | "darwin" | "win32";
  /** Executable files (on Windows: every file). */
  programs?: string[];
  /** Plain files. */
  files?: string[];
  pythons?: Record<string, [number, number]>;
  env?: Record<string, string>;
  selected?: string;
}

function machine(sim: Sim): Machine & { probed: string[] } {
  const programs = new Set([...(sim.programs ?? []), ...Object.keys(sim.pythons ?? {})]);
  const files = new Set([...(sim.files ?? []), ...programs]);
  const probed: string[] = [];
  return {
    probed,
    platform: sim.platform,
    env: sim.env ?? { PATH: sim.platform === "win32" ? "" : "/usr/bin:/bin" },
    selectedInterpreter: () => sim.selected,
    isFile: (p) => files.has(p),
    isExecutable: (p) => programs.has(p),
    exec: async (file, args) => {
      probed.push(file);
      assert.deepEqual(args.slice(0, 1), ["-c"]);
      const version = sim.pythons?.[file];
      return version ? `${version[0]} ${version[1]}\n` : undefined;
    },
  };
}

const settings = (s: Partial<LocateSettings> = {}): LocateSettings => ({ serverPath: "", importStrategy: "useBundled", interpreter: "", ...s });
const SERVE = ["serve", "--stdio"];

const LINUX_SCRIPT = "/ext/bundled/tool/spanlens_server.py";
const linux = (sim: Partial<Sim> = {}) => machine({ platform: "linux", files: [LINUX_SCRIPT], pythons: { "/usr/bin/python3": [3, 11] }, ...sim });

test("server.path wins over everything, run with serve --stdio, and nothing is probed", async () => {
  const m = linux();
  const found = await locateServer(settings({ serverPath: "/proj/.venv/bin/spanlens", interpreter: "/x/python" }), "/ext/bundled", m);
  assert.deepEqual(found, { command: "/proj/.venv/bin/spanlens", args: SERVE, source: "spanlens.server.path" });
  assert.deepEqual(m.probed, []);
});

test("Linux: the bundled server runs with python3 on PATH by default", async () => {
  const found = await locateServer(settings(), "/ext/bundled", linux());
  assert.deepEqual(found, { command: "/usr/bin/python3", args: [LINUX_SCRIPT, ...SERVE], source: "bundled" });
});

test("spanlens.interpreter comes first, then the Python extension's, then python3", async () => {
  const pythons: Record<string, [number, number]> = { "/usr/bin/python3": [3, 11], "/venv/bin/python": [3, 12], "/mine/python": [3, 13] };
  const selected = linux({ pythons, selected: "/venv/bin/python" });
  assert.equal(((await locateServer(settings(), "/ext/bundled", selected)) as { command: string }).command, "/venv/bin/python");
  const mine = linux({ pythons, selected: "/venv/bin/python" });
  assert.equal(((await locateServer(settings({ interpreter: "/mine/python" }), "/ext/bundled", mine)) as { command: string }).command, "/mine/python");
  assert.deepEqual(mine.probed, ["/mine/python"]);
});

test("the supported range is the bundle's: 3.10 to 3.13, both ends included", async () => {
  // The versions scripts/bundle-server.sh installs for, and pyproject's lower bound.
  const built = /for version in ([\d. ]+); do/.exec(readFileSync(new URL("../scripts/bundle-server.sh", import.meta.url), "utf8"))?.[1].trim().split(" ");
  assert.deepEqual(built?.[0], SUPPORTED_PYTHON.min.join("."));
  assert.deepEqual(built?.at(-1), SUPPORTED_PYTHON.max.join("."));
  const requires = /requires-python = ">=([\d.]+)"/.exec(readFileSync(new URL("../../pyproject.toml", import.meta.url), "utf8"))?.[1];
  assert.equal(requires, SUPPORTED_PYTHON.min.join("."));
  for (const [version, ok] of [[[3, 9], false], [[3, 10], true], [[3, 13], true], [[3, 14], false], [[4, 0], false]] as const) {
    const found = await locateServer(settings(), "/ext/bundled", linux({ pythons: { "/usr/bin/python3": [...version] } }));
    assert.equal(!("error" in found), ok, `Python ${version.join(".")}`);
  }
});

test("an interpreter outside the range is passed over for the next one, python3.12 included", async () => {
  const pythons: Record<string, [number, number]> = { "/usr/bin/python3": [3, 14], "/usr/bin/python3.12": [3, 12], "/old/python": [3, 8] };
  const m = linux({ pythons });
  const found = await locateServer(settings({ interpreter: "/old/python" }), "/ext/bundled", m);
  assert.equal((found as { command: string }).command, "/usr/bin/python3.12");
  assert.deepEqual(m.probed, ["/old/python", "/usr/bin/python3", "/usr/bin/python3.12"]);
});

test("no usable Python: one line naming what was found, the range and the fix", async () => {
  const found = await locateServer(settings(), "/ext/bundled", linux({ pythons: { "/usr/bin/python3": [3, 14] } }));
  assert.ok("error" in found);
  assert.match(found.error, /needs Python 3\.10–3\.13 \(found \/usr\/bin\/python3 \(3\.14\)\)/);
  assert.match(found.error, /spanlens\.interpreter or spanlens\.server\.path/);
  assert.ok(!found.error.includes("\n"));
  const none = await locateServer(settings(), "/ext/bundled", linux({ pythons: {} }));
  assert.ok("error" in none && none.error.includes("(none found)"));
  const broken = await locateServer(settings({ interpreter: "/gone/python" }), "/ext/bundled", linux({ pythons: {} }));
  assert.ok("error" in broken && broken.error.includes("/gone/python (does not run)"));
});

test("PATH lookup skips files that are not executable (as the shell does)", () => {
  const m = machine({ platform: "linux", files: ["/a/python3"], programs: ["/b/python3"], env: { PATH: "/a:/b" } });
  assert.equal(which(m, "python3"), "/b/python3");
});

test("fromEnvironment takes the interpreter's own spanlens, else the one on PATH", async () => {
  const pythons: Record<string, [number, number]> = { "/venv/bin/python": [3, 12] };
  const beside = linux({ pythons, selected: "/venv/bin/python", programs: ["/venv/bin/spanlens"] });
  assert.deepEqual(await locateServer(settings({ importStrategy: "fromEnvironment" }), "/ext/bundled", beside), {
    command: "/venv/bin/spanlens", args: SERVE, source: "environment",
  });
  const onPath = linux({ pythons, selected: "/venv/bin/python", programs: ["/usr/local/bin/spanlens"], env: { PATH: "/usr/local/bin:/usr/bin" } });
  assert.equal(((await locateServer(settings({ importStrategy: "fromEnvironment" }), "/ext/bundled", onPath)) as { command: string }).command, "/usr/local/bin/spanlens");
});

test("fromEnvironment with no spanlens installed falls back to the bundled server (as ruff-vscode does)", async () => {
  const m = linux({ selected: "/venv/bin/python", pythons: { "/venv/bin/python": [3, 12] } });
  assert.deepEqual(await locateServer(settings({ importStrategy: "fromEnvironment" }), "/ext/bundled", m), {
    command: "/venv/bin/python", args: [LINUX_SCRIPT, ...SERVE], source: "bundled (no spanlens in the environment)",
  });
  // A build without the bundled server: the fix-it names the PyPI distribution, spanlens-lsp.
  const bare = linux({ files: [], selected: "/venv/bin/python", pythons: { "/venv/bin/python": [3, 12] } });
  const missing = await locateServer(settings({ importStrategy: "fromEnvironment" }), "/ext/bundled", bare);
  assert.ok("error" in missing && missing.error.includes('"pip install spanlens-lsp"'), JSON.stringify(missing));
  assert.ok(!missing.error.includes("install spanlens\""));
});

test("fromEnvironment accepts an environment's spanlens whatever its Python (pip checked it)", async () => {
  const m = linux({ selected: "/venv/bin/python", pythons: { "/venv/bin/python": [3, 14] }, programs: ["/venv/bin/spanlens"] });
  assert.equal(((await locateServer(settings({ importStrategy: "fromEnvironment" }), "/ext/bundled", m)) as { command: string }).command, "/venv/bin/spanlens");
  assert.deepEqual(m.probed, []);
});

test("a build without the bundled server says which settings work instead", async () => {
  const found = await locateServer(settings(), "/ext/bundled", linux({ files: [] }));
  assert.ok("error" in found && found.error.includes("no bundled server"));
});

test("macOS: Homebrew's python3 on PATH, and a venv's bin/spanlens", async () => {
  const script = "/Users/me/.vscode/extensions/spanlens/bundled/tool/spanlens_server.py";
  const env = { PATH: "/opt/homebrew/bin:/usr/bin:/bin" };
  const m = machine({
    platform: "darwin",
    env,
    files: [script],
    pythons: { "/usr/bin/python3": [3, 9], "/opt/homebrew/bin/python3": [3, 13], "/Users/me/p/.venv/bin/python": [3, 11] },
  });
  assert.deepEqual(await locateServer(settings(), "/Users/me/.vscode/extensions/spanlens/bundled", m), {
    command: "/opt/homebrew/bin/python3", args: [script, ...SERVE], source: "bundled",
  });
  const venv = machine({ platform: "darwin", env, pythons: { "/Users/me/p/.venv/bin/python": [3, 11] }, programs: ["/Users/me/p/.venv/bin/spanlens"], selected: "/Users/me/p/.venv/bin/python" });
  assert.equal(((await locateServer(settings({ importStrategy: "fromEnvironment" }), "/x", venv)) as { command: string }).command, "/Users/me/p/.venv/bin/spanlens");
});

const WIN_BUNDLED = "C:\\Users\\me\\.vscode\\extensions\\spanlens\\bundled";
const WIN_SCRIPT = `${WIN_BUNDLED}\\tool\\spanlens_server.py`;
const WIN_ENV = { Path: "C:\\Windows\\system32;C:\\Python312\\;C:\\Python312\\Scripts", PATHEXT: ".COM;.EXE;.BAT;.CMD;.PY" };

test("Windows: python on Path is python.exe (PATHEXT, Path's case-insensitive name)", async () => {
  const m = machine({ platform: "win32", env: WIN_ENV, files: [WIN_SCRIPT], pythons: { "C:\\Python312\\python.exe": [3, 12] } });
  assert.deepEqual(await locateServer(settings(), WIN_BUNDLED, m), { command: "C:\\Python312\\python.exe", args: [WIN_SCRIPT, ...SERVE], source: "bundled" });
});

test("Windows: PATHEXT order decides, and a name with an extension is taken as is", () => {
  const m = machine({ platform: "win32", env: { PATH: "C:\\tools", PATHEXT: ".EXE;.CMD" }, programs: ["C:\\tools\\spanlens.cmd", "C:\\tools\\spanlens.exe"] });
  assert.equal(which(m, "spanlens"), "C:\\tools\\spanlens.exe");
  assert.equal(which(m, "spanlens.cmd"), "C:\\tools\\spanlens.cmd");
  const noExt = machine({ platform: "win32", env: { PATH: "C:\\tools" }, programs: ["C:\\tools\\spanlens.bat"] });
  assert.equal(which(noExt, "spanlens"), "C:\\tools\\spanlens.bat", "PATHEXT unset: the default list");
});

test("Windows: a venv's spanlens is Scripts\\spanlens.exe beside Scripts\\python.exe (not Scripts\\Scripts)", async () => {
  const python = "C:\\p\\.venv\\Scripts\\python.exe";
  const m = machine({ platform: "win32", env: WIN_ENV, selected: python, pythons: { [python]: [3, 11] }, programs: ["C:\\p\\.venv\\Scripts\\spanlens.exe", "C:\\p\\.venv\\Scripts\\Scripts\\spanlens.exe"] });
  assert.deepEqual(await locateServer(settings({ importStrategy: "fromEnvironment" }), WIN_BUNDLED, m), {
    command: "C:\\p\\.venv\\Scripts\\spanlens.exe", args: SERVE, source: "environment",
  });
});

test("Windows: a base install's spanlens is in Scripts\\ beside python.exe", async () => {
  const m = machine({ platform: "win32", env: { PATH: "C:\\Windows" }, selected: "C:\\Python313\\python.exe", pythons: { "C:\\Python313\\python.exe": [3, 13] }, programs: ["C:\\Python313\\Scripts\\spanlens.exe"] });
  assert.equal(((await locateServer(settings({ importStrategy: "fromEnvironment" }), WIN_BUNDLED, m)) as { command: string }).command, "C:\\Python313\\Scripts\\spanlens.exe");
});
