// What a person sees on the offline report's first screen (1400x1000, no
// scrolling, no clicking): the pinning decision and the fault x client
// table; then the version groups' statuses, a regressed cell's page, and
// what one evidence link on the first screen opens.
// Writes the first screen as a PNG (the README's screenshot: `make
// screenshot`) and prints one JSON object.
//
// usage: node first-screen.mjs REPORT_INDEX_HTML SCREENSHOT_PNG [CHROMIUM]
import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";

const [, , index, screenshot, executable = process.env.CHROMIUM ?? "/usr/bin/chromium"] = process.argv;
if (!index || !screenshot) {
  console.error("usage: node first-screen.mjs REPORT_INDEX_HTML SCREENSHOT_PNG [CHROMIUM]");
  process.exit(2);
}
const VIEWPORT = { width: 1400, height: 1000 };

const browser = await chromium.launch({
  executablePath: executable,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
const requests = [];
try {
  const page = await browser.newPage({ viewport: VIEWPORT });
  await page.route(/^(https?|wss?):/, (route) => {
    requests.push(route.request().url());
    return route.abort();
  });
  await page.goto(pathToFileURL(index).href);
  await page.waitForSelector('[data-testid="metadata-item-total"]', { timeout: 20000 });

  // Visible on the first screen: inside the viewport, not hidden, no scroll.
  const firstScreen = await page.evaluate((vp) => {
    const seen = (el) => {
      if (!el) return false;
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= vp.height && r.left >= 0 &&
        r.right <= vp.width && style.visibility !== "hidden" && style.display !== "none";
    };
    const recommended = document.querySelector('[data-testid="ibgw-recommended"]');
    const rejected = [...document.querySelectorAll('[data-testid="ibgw-rejected"]')].map((li) => ({
      version: li.dataset.version, text: li.innerText.trim(), visible: seen(li),
    }));
    const table = document.querySelector('[data-testid="ibgw-fault-table"]');
    return {
      recommended: recommended ? recommended.innerText.trim() : null,
      recommendedVisible: seen(recommended),
      rejected,
      faultTable: table ? table.innerText.trim() : null,
      faultTableVisible: seen(table),
      scrollY: window.scrollY,
    };
  }, VIEWPORT);
  await page.screenshot({ path: screenshot });

  // The transcript font: monospace, ligatures off (a rule the first-screen step adds).
  const font = await page.evaluate(() => {
    const pre = document.createElement("pre");
    pre.textContent = "|-1|";
    document.body.appendChild(pre);
    const style = getComputedStyle(pre);
    const out = { family: style.fontFamily, ligatures: style.fontVariantLigatures };
    pre.remove();
    return out;
  });

  // Open every group, then read each top-level group's leaf statuses.
  for (let clicks = 0; clicks < 500; clicks++) {
    const closed = await page.$$eval('[data-testid="tree-section"]', (els) => els
      .filter((e) => !e.querySelector('[data-testid="tree-arrow"] svg')?.getAttribute("class")?.includes("--opened"))
      .map((e) => e.dataset.treeNodeId));
    if (!closed.length) break;
    await page.locator(`[data-testid="tree-section"][data-tree-node-id="${closed[0]}"] [data-testid="tree-section-title"]`)
      .click();
  }
  // Top-level groups are the least indented sections; every leaf after one
  // (in document order) belongs to it until the next.
  const groups = await page.evaluate(() => {
    const items = [...document.querySelectorAll('[data-testid="tree-section-title"], [data-testid="tree-leaf"]')];
    const left = (e) => e.getBoundingClientRect().left;
    const titles = items.filter((e) => e.dataset.testid === "tree-section-title");
    const top = Math.min(...titles.map(left));
    const out = {};
    let current = null;
    for (const e of items) {
      if (e.dataset.testid === "tree-section-title") {
        if (Math.abs(left(e) - top) < 2) { current = e.innerText.trim(); out[current] = out[current] ?? []; }
        continue;
      }
      const status = e.querySelector('[data-testid^="tree-leaf-status-"]')?.dataset.testid.replace("tree-leaf-status-", "");
      if (current && status && !out[current].includes(status)) out[current].push(status);
    }
    for (const k of Object.keys(out)) out[k].sort();
    return out;
  });

  // A regressed cell's page: its category and message.
  let cell = null;
  const leaf = page.locator('[data-testid="tree-leaf"]', { hasText: /matrix cell 10\.41/ }).first();
  if (await leaf.count()) {
    const name = (await leaf.innerText()).trim();
    await leaf.evaluate((e) => e.click());
    await page.waitForSelector("text=Labels", { timeout: 10000 });
    for (const more of await page.$$("text=Show more")) await more.click().catch(() => {});
    cell = { name, text: await page.locator("body").innerText() };

  }

  // An evidence link on the first screen: a rejected build's first one,
  // clicked as a reader would (open its details, then the link); what the
  // report then shows in the viewport is the evidence, inside the report.
  let evidence = null;
  await page.evaluate(() => window.scrollTo(0, 0));
  const rejectedRow = page.locator('[data-testid="ibgw-rejected"]').first();
  if (await rejectedRow.count()) {
    await rejectedRow.locator("summary").click();
    const link = rejectedRow.locator('[data-testid="ibgw-evidence"]').first();
    if (await link.count()) {
      const name = await link.getAttribute("data-attachment");
      const href = await link.getAttribute("href");
      await link.click();
      const shown = page.locator('[data-testid="test-result-attachment"]', {
        has: page.locator('[data-testid="test-result-attachment-header"]', { hasText: name }),
      }).first();
      const content = shown.locator("pre, code").first();
      await content.waitFor({ timeout: 10000 }).catch(() => {});
      const box = (await content.count()) ? await content.boundingBox() : null;
      evidence = {
        name, href, url: page.url(),
        text: (await content.count()) ? (await content.innerText()).slice(0, 2000) : null,
        inViewport: Boolean(box && box.y < VIEWPORT.height && box.y + box.height > 0),
      };
    }
  }
  console.log(JSON.stringify({ firstScreen, font, groups, cell, evidence, requests }));
} finally {
  await browser.close();
}
