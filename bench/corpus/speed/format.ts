import { readFileSync } from "fs";

export function formatBytes(bytes: number, digits = 1): string {
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(digits)} ${units[unit]}`;
}

export function readLines(path: string): string[] {
  return readFileSync(path, "utf8").split("\n").filter((line) => line.trim() !== "");
}
