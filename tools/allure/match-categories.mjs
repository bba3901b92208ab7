// Apply a results directory's categories.json to its results with Allure 3's
// own matcher (@allurereport/core-api), so a test can check that each
// failure lands where the report will put it. Prints {name: category|null}.
//
// usage: node match-categories.mjs ALLURE_RESULTS_DIR
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { matchCategory, normalizeCategoriesConfig } from "@allurereport/core-api";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node match-categories.mjs ALLURE_RESULTS_DIR");
  process.exit(2);
}
const rules = JSON.parse(readFileSync(join(dir, "categories.json"), "utf-8"));
const categories = normalizeCategoriesConfig({ rules });
const out = {};
for (const file of readdirSync(dir).filter((f) => f.endsWith("-result.json"))) {
  const r = JSON.parse(readFileSync(join(dir, file), "utf-8"));
  const details = r.statusDetails ?? {};
  // The fields Allure's extractErrorMatchingData reads from a test result.
  const matched = matchCategory(categories, {
    status: r.status, labels: r.labels ?? [], message: details.message, trace: details.trace, flaky: false,
  });
  out[r.name] = matched ? matched.name : null;
}
console.log(JSON.stringify(out));
