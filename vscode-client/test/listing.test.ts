/** The Marketplace listing: `vsce ls` (the files `vsce package` puts in the .vsix) shows exactly
 * the files meant to ship, in a copy of this folder with stand-in build outputs. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

const CLIENT = path.resolve(import.meta.dirname, "..");
const VSCE = path.join(CLIENT, "node_modules", "@vscode", "vsce", "vsce");

/** What ships: the manifest, the listing's texts and images, the bundled client, the bundled
 * server (whatever scripts/bundle-server.sh put under bundled/). */
const SHIPPED = [
  "CHANGELOG.md",
  "LICENSE",
  "README.md",
  "package.json",
  "dist/extension.js",
  "images/icon.png",
  "images/hover-and-lenses.png",
  "bundled/tool/spanlens_server.py",
  "bundled/libs/spanlens_lsp/__init__.py",
];

test("vsce ls lists exactly the files meant to ship", () => {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), "spanlens-vsix-"));
  try {
    // Every file of the source tree (tracked or not ignored), then build outputs and leftovers.
    const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], { cwd: CLIENT, encoding: "utf8" })
      .split("\n")
      .filter((f) => f && fs.existsSync(path.join(CLIENT, f)) && fs.statSync(path.join(CLIENT, f)).isFile());
    assert.ok(files.includes("src/extension.ts") && files.includes(".vscodeignore"));
    for (const file of files) {
      fs.mkdirSync(path.join(copy, path.dirname(file)), { recursive: true });
      fs.copyFileSync(path.join(CLIENT, file), path.join(copy, file));
    }
    const built = ["dist/extension.js", "dist/extension.js.map", "bundled/tool/spanlens_server.py", "bundled/libs/spanlens_lsp/__init__.py", "spanlens-0.1.0-linux-x64.vsix", ".spanlens/index.db"];
    for (const file of built) {
      fs.mkdirSync(path.join(copy, path.dirname(file)), { recursive: true });
      fs.writeFileSync(path.join(copy, file), "stand-in\n");
    }
    const listed = execFileSync(process.execPath, [VSCE, "ls", "--no-dependencies"], { cwd: copy, encoding: "utf8" })
      .split("\n")
      .filter(Boolean);
    assert.deepEqual([...listed].sort(), [...SHIPPED].sort());
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
  }
});

test("the listing's icon is a 128x128 PNG and the README's images ship", () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(CLIENT, "package.json"), "utf8")) as { icon: string; categories: string[]; keywords: string[] };
  const icon = fs.readFileSync(path.join(CLIENT, manifest.icon));
  assert.equal(icon.subarray(1, 4).toString(), "PNG");
  assert.deepEqual([icon.readUInt32BE(16), icon.readUInt32BE(20)], [128, 128]);
  const readme = fs.readFileSync(path.join(CLIENT, "README.md"), "utf8");
  const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
  assert.ok(images.length > 0, "the README shows a screenshot");
  for (const image of images) assert.ok(SHIPPED.includes(image), `${image} is not shipped`);
  assert.ok(manifest.categories.length > 0 && manifest.keywords.length > 0 && manifest.keywords.length <= 30);
});
