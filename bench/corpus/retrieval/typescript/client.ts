/** The browser's client for the REST API: requests, events and local storage. */

type Listener<T> = (payload: T) => void;

/** Publish events to the functions that subscribed to them by name. */
export class EventBus<T> {
  private listeners = new Map<string, Set<Listener<T>>>();

  /** Register a callback for an event and return a function that unregisters it. */
  on(event: string, listener: Listener<T>): () => void {
    const set = this.listeners.get(event) ?? new Set();
    set.add(listener);
    this.listeners.set(event, set);
    return () => set.delete(listener);
  }

  /** Call every callback registered for an event with the payload. */
  emit(event: string, payload: T): void {
    for (const listener of this.listeners.get(event) ?? []) listener(payload);
  }
}

/** Send a JSON body with a POST request and decode the JSON reply, failing on HTTP errors. */
export async function postJson<T>(url: string, body: unknown, token?: string): Promise<T> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

/** Give up on a promise that takes longer than a number of milliseconds. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Wait for a given number of milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Try an async operation several times, doubling the pause between attempts. */
export async function retryAsync<T>(op: () => Promise<T>, attempts = 3, delay = 200): Promise<T> {
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await op();
    } catch (error) {
      lastError = error;
      await sleep(delay * 2 ** i);
    }
  }
  throw lastError;
}

/** Save a value in the browser's local storage with an expiry date. */
export function storeWithExpiry(key: string, value: unknown, ttlMs: number): void {
  const record = { value, expires: Date.now() + ttlMs };
  localStorage.setItem(key, JSON.stringify(record));
}

/** Load a value saved with an expiry, removing it when it is stale. */
export function loadWithExpiry<T>(key: string): T | undefined {
  const raw = localStorage.getItem(key);
  if (!raw) return undefined;
  const record = JSON.parse(raw) as { value: T; expires: number };
  if (record.expires < Date.now()) {
    localStorage.removeItem(key);
    return undefined;
  }
  return record.value;
}

/** Decode the payload of a JSON web token without checking its signature. */
export function decodeJwtPayload(token: string): Record<string, unknown> {
  const part = token.split(".")[1] ?? "";
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(base64)) as Record<string, unknown>;
}

/** Keep a list of items in pages of a fixed size and move between them. */
export class Pager<T> {
  page = 0;

  constructor(private items: T[], private size: number) {}

  /** How many pages the items fill. */
  get pageCount(): number {
    return Math.max(1, Math.ceil(this.items.length / this.size));
  }

  /** The items shown on the current page. */
  current(): T[] {
    return this.items.slice(this.page * this.size, (this.page + 1) * this.size);
  }

  /** Advance to the following page unless this is the last one. */
  next(): void {
    if (this.page < this.pageCount - 1) this.page += 1;
  }
}

/** Download a file's text and report progress as bytes arrive. */
export async function downloadWithProgress(url: string, onProgress: (received: number, total: number) => void): Promise<string> {
  const response = await fetch(url);
  const total = Number(response.headers.get("Content-Length") ?? 0);
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress(received, total);
  }
  return new TextDecoder().decode(await new Blob(chunks).arrayBuffer());
}
