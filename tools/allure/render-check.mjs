// Render the offline Allure 3 report in headless Chromium and say what a
// person would see: the totals, the tree of groups (Gateway version ->
// client -> scenario), and the labels of one test. Prints one JSON object.
//
// Why a browser and not the report's JSON: the report must open from the
// file system with no network; only rendering it proves that.
//
// usage: node render-check.mjs REPORT_INDEX_HTML SCREENSHOT_PNG [CHROMIUM]
import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";

const [, , index, screenshot, executable = process.env.CHROMIUM ?? "/usr/bin/chromium"] = process.argv;
if (!index || !screenshot) {
  console.error("usage: node render-check.mjs REPORT_INDEX_HTML SCREENSHOT_PNG [CHROMIUM]");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: executable,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
const requests = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // The report must need nothing from the network: any http(s)/ws request
  // is recorded and aborted before it leaves the browser.
  await page.route(/^(https?|wss?):/, (route) => {
    requests.push(route.request().url());
    return route.abort();
  });
  await page.goto(pathToFileURL(index).href);
  await page.waitForSelector('[data-testid="metadata-item-total"]', { timeout: 20000 });

  const totals = {};
  for (const key of ["total", "passed", "failed", "broken", "skipped", "unknown", "new"]) {
    const item = page.locator(`[data-testid="metadata-item-${key}"] [data-testid="metadata-value"]`);
    totals[key] = (await item.count()) ? Number((await item.first().innerText()).trim()) : 0;
  }

  // Open every closed group, one at a time: a click toggles and re-renders
  // the tree, so only sections whose arrow is not "opened" are clicked, and
  // the page is asked afresh after each click.
  for (let clicks = 0; clicks < 500; clicks++) {
    const closed = await page.$$eval('[data-testid="tree-section"]', (els) => els
      .filter((e) => !e.querySelector('[data-testid="tree-arrow"] svg')?.getAttribute("class")?.includes("--opened"))
      .map((e) => e.dataset.treeNodeId));
    if (!closed.length) break;
    await page.locator(`[data-testid="tree-section"][data-tree-node-id="${closed[0]}"] [data-testid="tree-section-title"]`)
      .click();
  }
  const groups = await page.locator('[data-testid="tree-section-title"]').allInnerTexts();
  const leaves = await page.locator('[data-testid="tree-leaf-title"]').allInnerTexts();
  // The tree scrolls inside its own container: back to the top (header,
  // totals, first groups) and tall enough to show most of a small run.
  await page.evaluate(() => document.querySelectorAll("*").forEach((e) => { if (e.scrollTop) e.scrollTop = 0; }));
  await page.setViewportSize({ width: 1400, height: 2000 });
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.setViewportSize({ width: 1400, height: 1000 });

  // The Categories tab: each category the report shows, with its count.
  const categories = {};
  const categoriesTab = page.locator('[data-testid="nav-tab-categories"]');
  if (await categoriesTab.count()) {
    await categoriesTab.click();
    await page.waitForSelector('[data-testid="tree-section"]', { timeout: 10000 }).catch(() => {});
    for (const section of await page.$$('[data-testid="tree-section"]')) {
      const title = (await (await section.$('[data-testid="tree-section-title"]'))?.innerText())?.trim();
      const numbers = (await section.innerText()).match(/\d+/g) ?? [];
      if (title) categories[title] = Number(numbers[numbers.length - 1] ?? 0);
    }
    await page.locator('[data-testid="nav-tab-results"]').click();
    await page.waitForSelector('[data-testid="tree-leaf"]', { timeout: 10000 });
  }

  // One test's page: its labels as the report shows them.
  let test = null;
  if (leaves.length) {
    await page.locator('[data-testid="tree-leaf"]').first().click();
    await page.waitForSelector("text=Labels", { timeout: 10000 });
    for (const more of await page.$$("text=Show more")) await more.click().catch(() => {});
    const text = await page.locator("body").innerText();
    const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
    const start = lines.indexOf("Labels");
    const labels = {};
    const stop = new Set(["Set up", "Test body", "Tear down", "Links", "Description", "Show less"]);
    for (let i = start + 2; i + 1 < lines.length && !stop.has(lines[i]); i += 2) labels[lines[i]] = lines[i + 1];
    test = { name: leaves[0], labels };
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-test.png"), fullPage: true });
  }
  console.log(JSON.stringify({ totals, groups, leaves, categories, test, requests }));
} finally {
  await browser.close();
}
