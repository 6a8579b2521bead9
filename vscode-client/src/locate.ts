/**
 * Finding the server, as ruff-vscode and the Python tools template do:
 * `spanlens.server.path` > bundled copy (`useBundled`) > the environment (`fromEnvironment`,
 * falling back to the bundled copy when the environment has no spanlens).
 * Pure: every look at the machine comes through `Machine`, so tests simulate Windows, macOS
 * and Linux machines; the interpreter probe is asynchronous (never blocks the extension host).
 */

export type ImportStrategy = "useBundled" | "fromEnvironment";

export interface LocateSettings {
  /** `spanlens.server.path`: a command (empty = not set). */
  serverPath: string;
  importStrategy: ImportStrategy;
  /** `spanlens.interpreter` (empty = not set). */
  interpreter: string;
}

export interface Machine {
  /** `process.platform`: "win32", "darwin", "linux", ... */
  platform: string;
  /** The environment (PATH, PATHEXT). On Windows its names are case-insensitive: `Path`. */
  env: Record<string, string | undefined>;
  /** The interpreter the Python extension has selected for this folder, if any. */
  selectedInterpreter(): string | undefined;
  /** Whether `path` is a file. */
  isFile(path: string): boolean;
  /** Whether `path` is a file the user may run (on Windows: a file). */
  isExecutable(path: string): boolean;
  /** Run `file args`; its stdout, or undefined when it does not run, fails or times out. */
  exec(file: string, args: string[]): Promise<string | undefined>;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where it came from, for the log: "spanlens.server.path", "bundled", "environment",
   * "bundled (no spanlens in the environment)". */
  source: string;
}

export type Located = ServerCommand | { error: string };

/** The CPython versions the bundled server is built for (scripts/bundle-server.sh installs its
 * dependencies once per version; pyproject's requires-python is the lower bound). */
export const SUPPORTED_PYTHON = { min: [3, 10], max: [3, 13] } as const;
const RANGE = `${SUPPORTED_PYTHON.min.join(".")}–${SUPPORTED_PYTHON.max.join(".")}`;

/** The distribution on PyPI (`spanlens` there is an unrelated project). */
export const DISTRIBUTION = "spanlens-lsp";

const VERSION_SCRIPT = "import sys; print(*sys.version_info[:2])";

function windows(machine: Machine): boolean {
  return machine.platform === "win32";
}

/** An environment variable, by its case-insensitive name on Windows. */
function envValue(machine: Machine, name: string): string | undefined {
  if (!windows(machine)) return machine.env[name];
  const key = Object.keys(machine.env).find((k) => k.toUpperCase() === name.toUpperCase());
  return key === undefined ? undefined : machine.env[key];
}

/** Join path parts with "/" (and "\\" on Windows) without importing node:path. */
function join(machine: Machine, ...parts: string[]): string {
  const sep = windows(machine) ? "\\" : "/";
  return parts.map((p, i) => (i < parts.length - 1 ? p.replace(/[\\/]+$/, "") : p)).join(sep);
}

function dirname(path: string): string {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return cut > 0 ? path.slice(0, cut) : path;
}

/** The executable names `name` may have: on Windows each PATHEXT extension (`.EXE`, `.CMD`...)
 * unless it has one already. */
function executableNames(machine: Machine, name: string): string[] {
  if (!windows(machine)) return [name];
  const extensions = (envValue(machine, "PATHEXT") || ".COM;.EXE;.BAT;.CMD")
    .split(";")
    .filter(Boolean)
    .map((e) => e.toLowerCase());
  const hasOne = extensions.some((e) => name.toLowerCase().endsWith(e));
  return hasOne ? [name] : extensions.map((e) => name + e);
}

/** Absolute path of the command `name` on PATH, as the shell would find it, or undefined. */
export function which(machine: Machine, name: string): string | undefined {
  const dirs = (envValue(machine, "PATH") ?? "").split(windows(machine) ? ";" : ":").filter(Boolean);
  for (const dir of dirs) {
    for (const file of executableNames(machine, name)) {
      const candidate = join(machine, dir.replace(/^"(.*)"$/, "$1"), file);
      if (machine.isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** `[major, minor]` of a Python interpreter, or undefined when it does not run. */
export async function pythonVersion(machine: Machine, python: string): Promise<[number, number] | undefined> {
  const out = await machine.exec(python, ["-c", VERSION_SCRIPT]);
  const [major, minor] = (out ?? "").trim().split(" ").map(Number);
  return Number.isInteger(major) && Number.isInteger(minor) ? [major, minor] : undefined;
}

function supported([major, minor]: [number, number]): boolean {
  const at = major * 1000 + minor;
  const { min, max } = SUPPORTED_PYTHON;
  return at >= min[0] * 1000 + min[1] && at <= max[0] * 1000 + max[1];
}

/** The interpreters to try, in order: `spanlens.interpreter`, the Python extension's, then
 * `python3` (`python` on Windows) and the versioned names on PATH (a machine whose python3 is
 * too new may still have python3.12). Duplicates dropped. */
function candidates(settings: LocateSettings, machine: Machine): string[] {
  const found: string[] = [];
  if (settings.interpreter) found.push(settings.interpreter);
  const selected = machine.selectedInterpreter();
  if (selected) found.push(selected);
  const names = windows(machine) ? ["python"] : ["python3"];
  for (let minor = SUPPORTED_PYTHON.max[1]; minor >= SUPPORTED_PYTHON.min[1]; minor--) names.push(`python3.${minor}`);
  for (const name of names) {
    const onPath = which(machine, name);
    if (onPath) found.push(onPath);
  }
  return [...new Set(found)];
}

/** The Python that runs the bundled server: the first candidate in the supported range. */
export async function findPython(settings: LocateSettings, machine: Machine): Promise<{ python: string } | { error: string }> {
  const tried: string[] = [];
  for (const python of candidates(settings, machine)) {
    const version = await pythonVersion(machine, python);
    if (version && supported(version)) return { python };
    tried.push(version ? `${python} (${version.join(".")})` : `${python} (does not run)`);
  }
  const found = tried.length ? `found ${tried.join(", ")}` : "none found";
  return {
    error:
      `spanlens needs Python ${RANGE} (${found}): install one, select it with the Python extension, ` +
      "or set spanlens.interpreter or spanlens.server.path.",
  };
}

/** `spanlens` installed beside `python`: `bin/spanlens` in a venv, `Scripts\spanlens.exe` on
 * Windows (python.exe is in Scripts\ in a venv, beside Scripts\ in a base install). */
function besideInterpreter(machine: Machine, python: string): string | undefined {
  const dir = dirname(python);
  const dirs = windows(machine) ? [dir, join(machine, dir, "Scripts")] : [dir];
  for (const d of dirs) {
    for (const file of executableNames(machine, "spanlens")) {
      const candidate = join(machine, d, file);
      if (machine.isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** The command that starts `spanlens serve --stdio` for these settings, or why none can. */
export async function locateServer(settings: LocateSettings, bundledDir: string, machine: Machine): Promise<Located> {
  const serve = ["serve", "--stdio"];
  if (settings.serverPath) {
    return { command: settings.serverPath, args: serve, source: "spanlens.server.path" };
  }
  let fallback = "bundled";
  if (settings.importStrategy === "fromEnvironment") {
    // Any interpreter's own spanlens (pip honoured requires-python when installing it).
    for (const python of candidates(settings, machine)) {
      const beside = besideInterpreter(machine, python);
      if (beside) return { command: beside, args: serve, source: "environment" };
    }
    const onPath = which(machine, "spanlens");
    if (onPath) return { command: onPath, args: serve, source: "environment" };
    fallback = "bundled (no spanlens in the environment)";
  }
  const script = join(machine, bundledDir, "tool", "spanlens_server.py");
  if (!machine.isFile(script)) {
    return {
      error:
        settings.importStrategy === "fromEnvironment"
          ? `spanlens is not installed in the selected Python's environment nor on PATH: run "pip install ${DISTRIBUTION}" there, or set spanlens.server.path.`
          : 'this spanlens build has no bundled server: set spanlens.server.path, or spanlens.importStrategy to "fromEnvironment".',
    };
  }
  const found = await findPython(settings, machine);
  if ("error" in found) return found;
  return { command: found.python, args: [script, ...serve], source: fallback };
}
