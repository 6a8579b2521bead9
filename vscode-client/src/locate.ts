/**
 * Finding the server, as ruff-vscode and the Python tools template do:
 * `spanlens.server.path` > bundled copy (`useBundled`) > the environment (`fromEnvironment`).
 * Pure: every look at the machine comes through `Probe`, so tests pass a fake one.
 */

export type ImportStrategy = "useBundled" | "fromEnvironment";

export interface LocateSettings {
  /** `spanlens.server.path`: a command (empty = not set). */
  serverPath: string;
  importStrategy: ImportStrategy;
  /** `spanlens.interpreter` (empty = not set). */
  interpreter: string;
}

export interface Probe {
  /** The interpreter the Python extension has selected for this folder, if any. */
  selectedInterpreter(): string | undefined;
  /** Absolute path of `name` on PATH, or undefined. */
  which(name: string): string | undefined;
  isFile(path: string): boolean;
  /** `[major, minor]` of a Python interpreter, or undefined when it does not run. */
  pythonVersion(python: string): [number, number] | undefined;
  platform: string;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where it came from, for the log: "spanlens.server.path", "bundled", "environment". */
  source: string;
}

export type Located = ServerCommand | { error: string };

const MIN_PYTHON: [number, number] = [3, 10];

/** Join path parts with "/" (and "\\" on Windows) without importing node:path. */
function join(platform: string, ...parts: string[]): string {
  const sep = platform === "win32" ? "\\" : "/";
  return parts.join(sep);
}

function dirname(path: string): string {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return cut > 0 ? path.slice(0, cut) : path;
}

/** The Python that runs the server: `spanlens.interpreter`, the Python extension's, python3. */
export function findPython(settings: LocateSettings, probe: Probe): { python: string } | { error: string } {
  const candidates: string[] = [];
  if (settings.interpreter) candidates.push(settings.interpreter);
  const selected = probe.selectedInterpreter();
  if (selected) candidates.push(selected);
  const onPath = probe.which(probe.platform === "win32" ? "python" : "python3");
  if (onPath) candidates.push(onPath);
  const tried: string[] = [];
  for (const python of candidates) {
    const version = probe.pythonVersion(python);
    if (version && (version[0] > MIN_PYTHON[0] || (version[0] === MIN_PYTHON[0] && version[1] >= MIN_PYTHON[1]))) {
      return { python };
    }
    tried.push(version ? `${python} (${version.join(".")})` : `${python} (does not run)`);
  }
  const found = tried.length ? `found ${tried.join(", ")}` : "none found";
  return {
    error:
      `spanlens needs Python 3.10 or newer (${found}): install python3, select an interpreter ` +
      "with the Python extension, or set spanlens.interpreter or spanlens.server.path.",
  };
}

/** The command that starts `spanlens serve --stdio` for these settings, or why none can. */
export function locateServer(settings: LocateSettings, bundledDir: string, probe: Probe): Located {
  const serve = ["serve", "--stdio"];
  if (settings.serverPath) {
    return { command: settings.serverPath, args: serve, source: "spanlens.server.path" };
  }
  const found = findPython(settings, probe);
  if ("error" in found) return found;
  const { python } = found;
  if (settings.importStrategy === "fromEnvironment") {
    const scripts = probe.platform === "win32" ? ["Scripts", "spanlens.exe"] : ["spanlens"];
    const beside = join(probe.platform, dirname(python), ...scripts);
    if (probe.isFile(beside)) return { command: beside, args: serve, source: "environment" };
    const onPath = probe.which("spanlens");
    if (onPath) return { command: onPath, args: serve, source: "environment" };
    return {
      error:
        `spanlens is not installed in ${python}'s environment nor on PATH: run ` +
        `"${python} -m pip install spanlens", or set spanlens.importStrategy to "useBundled".`,
    };
  }
  const script = join(probe.platform, bundledDir, "tool", "spanlens_server.py");
  if (!probe.isFile(script)) {
    return {
      error:
        "this spanlens build has no bundled server: set spanlens.server.path, or " +
        'spanlens.importStrategy to "fromEnvironment".',
    };
  }
  return { command: python, args: [script, ...serve], source: "bundled" };
}
