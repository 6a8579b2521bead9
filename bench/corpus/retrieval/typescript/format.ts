/** Formatting and parsing helpers for the dashboard. */

const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** Show a number of bytes in a readable unit such as 1.5 MB. */
export function formatBytes(bytes: number, digits = 1): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : digits)} ${UNITS[unit]}`;
}

/** Split one line of comma-separated values, honouring double quotes around fields. */
export function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted && c === '"' && line[i + 1] === '"') {
      current += '"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (c === "," && !quoted) {
      fields.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  fields.push(current);
  return fields;
}

/** Escape the characters that have a meaning in HTML so text can be inserted safely. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Put a thousands separator into an integer, as in 1,234,567. */
export function groupDigits(n: number, separator = ","): string {
  const sign = n < 0 ? "-" : "";
  const digits = Math.abs(Math.trunc(n)).toString();
  return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, separator);
}

/** Write a duration in milliseconds as hours, minutes and seconds like 1:05:09. */
export function formatClock(ms: number): string {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (x: number) => x.toString().padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

/** Pick the singular or plural form of a word for a count. */
export function pluralize(count: number, singular: string, plural = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : plural}`;
}

/** Turn a string of query parameters into an object of keys and values. */
export function parseQueryString(query: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of query.replace(/^\?/, "").split("&")) {
    if (!pair) continue;
    const [key, value = ""] = pair.split("=");
    out[decodeURIComponent(key)] = decodeURIComponent(value.replace(/\+/g, " "));
  }
  return out;
}

/** Make a color code of the form #rrggbb from red, green and blue components. */
export function rgbToHex(r: number, g: number, b: number): string {
  const part = (x: number) => Math.max(0, Math.min(255, Math.round(x))).toString(16).padStart(2, "0");
  return `#${part(r)}${part(g)}${part(b)}`;
}

/** Check that an email address has a plausible shape before sending it to the server. */
export function looksLikeEmail(address: string): boolean {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(address.trim());
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

/** Linearly map a value from one numeric range onto another. */
export function rescale(value: number, from: [number, number], to: [number, number]): number {
  const t = clamp((value - from[0]) / (from[1] - from[0]), 0, 1);
  return to[0] + t * (to[1] - to[0]);
}
