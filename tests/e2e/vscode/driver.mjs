// Drives a running code-server through Debian's chromium (playwright-core), for
// tests/e2e/test_vscode*.py. Line protocol on stdin/stdout: one JSON request per line
// ({"id", "op", ...args}), one JSON reply per line ({"id", "ok", "value"} or {"id", "ok": false,
// "error"}). Every wait is bounded; a failed wait answers with what the page showed instead.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [url, artifacts] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `probe` until it returns a truthy value or `timeout` ms pass; returns the last value. */
async function until(probe, timeout) {
  const end = Date.now() + timeout;
  let value;
  for (;;) {
    value = await probe();
    if (value || Date.now() > end) return value;
    await sleep(250);
  }
}

const lensTexts = () =>
  page.locator(".editor-instance .codelens-decoration").evaluateAll((nodes) => nodes.map((n) => n.textContent ?? ""));

const statusBarText = (every = false) =>
  page.locator(".statusbar-item").evaluateAll((nodes, every) =>
    nodes.map((n) => n.textContent ?? "").filter((t) => every || t.includes("spanlens")).join(" | "), every);

async function lineLocator(text) {
  const line = page.locator(".editor-instance .view-line", { hasText: text }).first();
  await line.waitFor({ timeout: 10_000 });
  return line;
}

const ops = {
  async load({ timeout = 120_000 }) {
    await page.goto(url, { timeout });
    await page.locator(".monaco-workbench").waitFor({ timeout });
    await page.locator(".explorer-folders-view .monaco-list-row").first().waitFor({ timeout });
    return true;
  },
  async open({ name, timeout = 30_000 }) {
    const row = page.locator(".explorer-folders-view .monaco-list-row", { hasText: name }).first();
    await row.waitFor({ timeout });
    await row.dblclick();
    await page.locator(".tabs-container .tab.active", { hasText: name }).waitFor({ timeout });
    await page.locator(".editor-instance .view-line").first().waitFor({ timeout });
    return true;
  },
  /** Wait until `min` lenses (with `all`: every lens, and at least `min`) match `pattern` (a
   * regex source); answer every lens text. */
  async lenses({ pattern = ".", all = false, min = 1, timeout = 60_000 }) {
    const re = new RegExp(pattern, "u");
    const found = await until(async () => {
      const texts = await lensTexts();
      const matching = texts.filter((t) => re.test(t)).length;
      const ok = matching >= min && (!all || matching === texts.length);
      return ok ? texts : undefined;
    }, timeout);
    if (found) return found;
    throw new Error(`${all ? "not every" : "no"} lens matched /${pattern}/ within ${timeout} ms; lenses: ${JSON.stringify(await lensTexts())}`);
  },
  /** Hover `word` on the first line containing `line`; answer the hover's text and links. */
  async hover({ line, word, timeout = 30_000 }) {
    const row = await lineLocator(line);
    const target = row.locator("span", { hasText: word }).last();
    const shown = await until(async () => {
      await page.mouse.move(5, 5);
      await sleep(200);
      await target.hover();
      try {
        await page.locator(".monaco-hover-content").first().waitFor({ timeout: 5_000 });
        return true;
      } catch {
        return false;
      }
    }, timeout);
    if (!shown) throw new Error(`no hover on ${word}`);
    const hover = page.locator(".monaco-hover-content").first();
    return {
      text: await hover.innerText(),
      links: await hover.locator("a[href]").evaluateAll((as) => as.map((a) => a.getAttribute("href"))),
    };
  },
  async unhover() {
    await page.keyboard.press("Escape");
    await page.mouse.move(5, 5);
    return true;
  },
  /** Run a palette command by its full title ("spanlens: Enrich This File"). */
  async command({ title, timeout = 15_000 }) {
    await page.keyboard.press("Escape");
    await page.locator(".editor-instance .view-lines").first().click();
    await page.keyboard.press("F1");
    const input = page.locator(".quick-input-widget input");
    await input.waitFor({ timeout });
    await input.fill(`>${title}`);
    const item = page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first();
    await item.waitFor({ timeout });
    await page.keyboard.press("Enter");
    return true;
  },
  /** Answer the input box whose prompt shows `expect`: type `text` (replacing its value
   * unless `keep`), then Enter; answers the prompt and the value it had. */
  async input({ expect, text = "", keep = false, timeout = 15_000 }) {
    const widget = page.locator(".quick-input-widget");
    const input = widget.locator("input").first();
    const shown = await until(async () => (await widget.isVisible()) && (await widget.innerText()).includes(expect), timeout);
    if (!shown) throw new Error(`no input box showing "${expect}"`);
    // A prefilled value lands a moment after the box shows.
    const value = keep ? ((await until(async () => input.inputValue(), 3_000)) ?? "") : await input.inputValue();
    if (!keep) await input.fill(text);
    const prompt = await widget.innerText();
    await page.keyboard.press("Enter");
    return { prompt, value };
  },
  /** The quick pick on screen once it lists `min` rows: its title, placeholder and rows (label,
   * description, detail, and how many icons those texts rendered as). */
  async quickPick({ min = 1, timeout = 30_000 }) {
    const widget = page.locator(".quick-input-widget");
    const rows = widget.locator(".quick-input-list .monaco-list-row");
    const shown = await until(async () => (await widget.isVisible()) && (await rows.count()) >= min, timeout);
    if (!shown) throw new Error(`no quick pick with ${min} rows: ${await widget.innerText().catch(() => "none")}`);
    return {
      title: await widget.locator(".quick-input-title").innerText(),
      placeholder: await widget.locator("input").first().getAttribute("placeholder"),
      rows: await rows.evaluateAll((nodes) =>
        nodes.map((n) => {
          const part = (selector) => n.querySelector(selector);
          const label = part(".label-name");
          const description = part(".label-description");
          const detail = part(".quick-input-list-label-meta");
          return {
            label: label?.textContent ?? "",
            description: description?.textContent ?? "",
            detail: detail?.textContent ?? "",
            icons: [label, description, detail].reduce((sum, el) => sum + (el?.querySelectorAll(".codicon").length ?? 0), 0),
          };
        }),
      ),
    };
  },
  /** Click the quick pick row that shows `text`. */
  async pickRow({ text, timeout = 15_000 }) {
    const row = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: text }).first();
    await row.waitFor({ timeout });
    await row.click();
    return true;
  },
  /**
   * The active editor tab's title and the cursor position the status bar shows ("Ln 3, Col 1").
   * With `tab` (and `cursor`), waits until the title (and position) start with them: opening a
   * picked row takes a moment, and the previous editor is still active until it lands. Returns
   * what it last saw either way, so the caller's assertion says what was there.
   */
  async activeEditor({ tab: wantTab, cursor: wantCursor, timeout = 15_000 }) {
    const tab = page.locator(".tabs-container .tab.active").first();
    await tab.waitFor({ timeout });
    const cursor = page.locator(".statusbar-item", { hasText: /Ln \d+, Col \d+/u }).first();
    await cursor.waitFor({ timeout });
    const seen = async () => ({ tab: (await tab.textContent()) ?? "", cursor: (await cursor.textContent()) ?? "" });
    let last = await seen();
    await until(async () => {
      last = await seen();
      return (!wantTab || last.tab.startsWith(wantTab)) && (!wantCursor || last.cursor.startsWith(wantCursor));
    }, timeout);
    return last;
  },
  /** Put the cursor at the end of the first line containing `line` and type `text`. */
  async typeAfter({ line, text }) {
    const row = await lineLocator(line);
    await row.click();
    await page.keyboard.press("End");
    await page.keyboard.type(text);
    return true;
  },
  async save() {
    await page.keyboard.press("Control+S");
    await until(async () => (await page.locator(".tabs-container .tab.active.dirty").count()) === 0, 10_000);
    return true;
  },
  /** Wait until spanlens's status bar item (with `every`: any item) matches `pattern`. */
  async statusBar({ pattern = ".", every = false, timeout = 30_000 }) {
    const re = new RegExp(pattern, "u");
    const text = await until(async () => {
      const t = await statusBarText(every);
      return re.test(t) ? t : undefined;
    }, timeout);
    if (text) return text;
    throw new Error(`status bar never matched /${pattern}/: ${await statusBarText(true)}`);
  },
  /** Text of the notifications on screen (errors the extension showed). */
  async notifications() {
    return page.locator(".notifications-toasts .notification-list-item").evaluateAll((ns) => ns.map((n) => n.textContent ?? ""));
  },
  /** Wait until a notification's text matches `pattern`; answer every notification's text. */
  async notification({ pattern, timeout = 30_000 }) {
    const re = new RegExp(pattern, "u");
    const texts = () => page.locator(".notifications-toasts .notification-list-item").evaluateAll((ns) => ns.map((n) => n.textContent ?? ""));
    const found = await until(async () => ((await texts()).some((t) => re.test(t)) ? texts() : undefined), timeout);
    if (found) return found;
    throw new Error(`no notification matched /${pattern}/: ${JSON.stringify(await texts())}`);
  },
  /** Click the button `button` of the notification whose text matches `pattern`. */
  async notificationButton({ pattern, button, timeout = 30_000 }) {
    const item = page.locator(".notifications-toasts .notification-list-item", { hasText: new RegExp(pattern, "u") }).first();
    await item.waitFor({ timeout });
    await item.hover();
    await item.locator(".monaco-button, a.monaco-button, .action-label", { hasText: button }).first().click({ timeout });
    return true;
  },
  /**
   * Click the first lens whose text matches `pattern`. With `opens` (a regex source), wait until
   * an editor tab's title matches it and answer every tab title: the editor redraws its lenses
   * when any of them resolves again, and a click that lands while the old element is being
   * replaced is lost (by the editor, not the extension), so an unanswered click is repeated
   * until `timeout`. A command that fails shows a notification, and the error quotes it.
   */
  async clickLens({ pattern, opens, timeout = 30_000 }) {
    const lens = page.locator(".editor-instance .codelens-decoration a", { hasText: new RegExp(pattern, "u") }).first();
    await lens.waitFor({ timeout });
    if (!opens) {
      await lens.click();
      return true;
    }
    const re = new RegExp(opens, "u");
    const titles = () => page.locator(".tabs-container .tab").evaluateAll((ts) => ts.map((t) => t.textContent ?? ""));
    const end = Date.now() + timeout;
    let clicks = 0;
    while (Date.now() < end) {
      await lens.click({ timeout: Math.max(1_000, end - Date.now()) });
      clicks += 1;
      const found = await until(async () => ((await titles()).some((t) => re.test(t)) ? titles() : undefined), 5_000);
      if (found) return found;
    }
    const shown = await page.locator(".notifications-toasts .notification-list-item").evaluateAll((ns) => ns.map((n) => n.textContent ?? ""));
    throw new Error(`${clicks} clicks on the lens /${pattern}/ opened no tab matching /${opens}/: tabs ${JSON.stringify(await titles())}, notifications ${JSON.stringify(shown)}`);
  },
  /** Wait until an editor tab's title matches `pattern`; answer every tab title. */
  async tabs({ pattern = ".", timeout = 30_000 }) {
    const re = new RegExp(pattern, "u");
    const titles = () => page.locator(".tabs-container .tab").evaluateAll((ts) => ts.map((t) => t.textContent ?? ""));
    const found = await until(async () => ((await titles()).some((t) => re.test(t)) ? titles() : undefined), timeout);
    if (found) return found;
    throw new Error(`no tab matched /${pattern}/: ${JSON.stringify(await titles())}`);
  },
  /** Click spanlens's status bar item (the one whose text matches `pattern`). */
  async clickStatusBar({ pattern = "spanlens", timeout = 30_000 }) {
    const item = page.locator(".statusbar-item", { hasText: new RegExp(pattern, "u") }).first();
    await item.waitFor({ timeout });
    await item.click();
    return true;
  },
  /** Hover spanlens's status bar item until its tooltip shows `expect` (the tooltip is drawn
   * when hovered: moved away and back, it shows the latest status); answer the tooltip's text. */
  async statusBarTooltip({ expect, timeout = 30_000 }) {
    const re = new RegExp(expect, "u");
    const item = page.locator(".statusbar-item", { hasText: "spanlens" }).first();
    // The page's visible text: the editor keeps hidden hover widgets of the same classes.
    const text = await until(async () => {
      await page.mouse.move(700, 300);
      await item.hover();
      await sleep(1_000);
      const t = await page.locator("body").innerText();
      return re.test(t) ? t : undefined;
    }, timeout);
    if (text) return text;
    throw new Error(`the status bar tooltip never showed /${expect}/`);
  },
  /** Wait until the page's visible text matches `pattern` (a walkthrough, a settings page). */
  async pageText({ pattern, timeout = 30_000 }) {
    const re = new RegExp(pattern, "u");
    const text = await until(async () => {
      const t = await page.locator("body").innerText();
      return re.test(t) ? t : undefined;
    }, timeout);
    if (text) return text;
    throw new Error(`the page never showed /${pattern}/`);
  },
  async screenshot({ name }) {
    const path = `${artifacts}/${name}.png`;
    await page.screenshot({ path });
    return path;
  },
  async memory() {
    return null;
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  let reply;
  try {
    const op = ops[request.op];
    if (!op) throw new Error(`unknown op ${request.op}`);
    reply = { id: request.id, ok: true, value: await op(request) };
  } catch (error) {
    try {
      await page.screenshot({ path: `${artifacts}/failed-${request.op}-${request.id}.png` });
    } catch {
      /* the page may be gone */
    }
    reply = { id: request.id, ok: false, error: String(error?.message ?? error).split("\n").slice(0, 4).join(" ") };
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}
await browser.close();
