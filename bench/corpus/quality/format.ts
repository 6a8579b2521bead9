import { promises as fs } from "fs";

const UNITS = ["B", "KB", "MB", "GB", "TB"];

export function formatBytes(n: number, digits = 1): string {
  if (n < 0) {
    throw new RangeError(`negative size: ${n}`);
  }
  let unit = 0;
  while (n >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return `${n.toFixed(digits)} ${UNITS[unit]}`;
}

export function parseCsvLine(line: string, sep = ","): string[] {
  return line.split(sep).map((cell) => cell.trim());
}

export async function loadJson(path: string): Promise<unknown> {
  const text = await fs.readFile(path, "utf8");
  return JSON.parse(text);
}

export class Counter {
  private counts = new Map<string, number>();

  increment(key: string, by = 1): number {
    const next = (this.counts.get(key) ?? 0) + by;
    this.counts.set(key, next);
    return next;
  }

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  reset(): void {
    this.counts.clear();
  }
}

export function logEvent(name: string, data: Record<string, unknown>): void {
  console.log(JSON.stringify({ event: name, at: Date.now(), ...data }));
}

export async function postJson(url: string, body: unknown): Promise<unknown> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    throw new Error(`POST ${url}: ${response.status}`);
  }
  return response.json();
}

export function debounce(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (timer !== undefined) {
      clearTimeout(timer);
    }
    timer = setTimeout(fn, ms);
  };
}
