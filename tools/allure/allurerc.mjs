// Allure 3 configuration for the harness's offline HTML report.
//
// Why a config file rather than CLI flags: single-file mode, the history
// file and the categories have no CLI flags. Paths come from the
// environment (set by `python -m harness.evidence.html_report`), so the same
// file serves `make report` and the tests' temporary runs.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const results = process.env.IBGW_ALLURE_RESULTS ?? "reports/allure-results";
const categoriesFile = join(results, "categories.json");
// Allure 3's awesome report takes categories from this config, not from the
// results directory; the harness writes one list and both places use it.
const categories = existsSync(categoriesFile)
  ? { rules: JSON.parse(readFileSync(categoriesFile, "utf-8")) }
  : undefined;

export default {
  name: process.env.IBGW_ALLURE_NAME ?? "ibgw-harness",
  output: process.env.IBGW_ALLURE_OUTPUT ?? "reports/html",
  historyPath: process.env.IBGW_ALLURE_HISTORY ?? "reports/history.jsonl",
  ...(categories ? { categories } : {}),
  plugins: {
    awesome: {
      options: {
        singleFile: true,
        reportName: process.env.IBGW_ALLURE_NAME ?? "ibgw-harness",
        reportLanguage: "en",
        groupBy: ["gateway_version", "client", "feature"],
      },
    },
  },
};
