/** Array, object and function utilities shared by the front end. */

/** Split an array into groups keyed by the result of a function. */
export function groupBy<T, K extends string>(items: T[], key: (item: T) => K): Record<K, T[]> {
  const groups = {} as Record<K, T[]>;
  for (const item of items) {
    const k = key(item);
    (groups[k] ||= []).push(item);
  }
  return groups;
}

/** Remove repeated elements, keeping the first occurrence of each in order. */
export function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

/** Break an array into consecutive pieces of a fixed length. */
export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Copy an object, including nested objects and arrays, so changes do not affect the original. */
export function deepClone<T>(value: T): T {
  if (Array.isArray(value)) return value.map(deepClone) as T;
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = deepClone(v);
    return out as T;
  }
  return value;
}

/** Compare two values structurally and say whether they hold the same data. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || !a || !b) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Limit a function to run at most once in every interval, dropping calls in between. */
export function throttle<A extends unknown[]>(fn: (...args: A) => void, ms: number): (...args: A) => void {
  let last = 0;
  return (...args: A) => {
    const now = Date.now();
    if (now - last >= ms) {
      last = now;
      fn(...args);
    }
  };
}

/** Wrap a function so its results are cached by argument and computed once. */
export function memoize<A, R>(fn: (arg: A) => R): (arg: A) => R {
  const cache = new Map<A, R>();
  return (arg: A) => {
    if (!cache.has(arg)) cache.set(arg, fn(arg));
    return cache.get(arg) as R;
  };
}

/** Sort records by several fields in turn, each ascending or descending. */
export function sortByKeys<T>(items: T[], keys: Array<[keyof T, "asc" | "desc"]>): T[] {
  return [...items].sort((x, y) => {
    for (const [key, dir] of keys) {
      if (x[key] < y[key]) return dir === "asc" ? -1 : 1;
      if (x[key] > y[key]) return dir === "asc" ? 1 : -1;
    }
    return 0;
  });
}

/** Read a nested property by a dotted path like user.address.city, or undefined. */
export function getPath(obj: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), obj);
}

/** Shuffle an array in place into a random order, each order equally likely. */
export function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** Find the position of a value in a sorted array by halving the search range. */
export function binarySearch(sorted: number[], target: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] === target) return mid;
    if (sorted[mid] < target) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
