// Drives Debian's Chromium (headless) through a list of steps and writes, as one JSON array to
// RESULT_FILE, what the page was after each: its URL, title, HTTP status (of the navigation the
// step caused, if any) and visible text. tests/e2e/payments_test.cpp gives the steps and checks
// the rest.
//
//   node browse.mjs '[{"goto": URL}, {"fill": [[SELECTOR, VALUE], ...]}, {"click": SELECTOR}]' RESULT_FILE
//
// A step that fails ends the run: the error goes to stderr with a screenshot's path (in the
// directory SCREENSHOT_DIR names, else the temporary directory) and the exit status is 1.
import { chromium } from "playwright-core";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [stepsJson, resultFile] = process.argv.slice(2);
const steps = JSON.parse(stepsJson);
// Without the background-networking flags Chromium keeps calling Google's hosts, which a closed
// network refuses; --no-sandbox because tests may run as root; /dev/shm may be small in a
// container. Playwright gives it a new, empty
// profile in a temporary directory of its own.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync"],
});
const page = await browser.newPage();
page.setDefaultTimeout(30000);  // a sanitized build of the service, under a parallel test run
const seen = [];
let failed = false;
try {
  for (const step of steps) {
    let response = null;
    if (step.goto) {
      response = await page.goto(step.goto);
    } else if (step.fill) {
      for (const [selector, value] of step.fill) await page.fill(selector, value);
    } else if (step.click) {
      [response] = await Promise.all([page.waitForNavigation(), page.click(step.click)]);
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
    seen.push({
      url: page.url(),
      title: await page.title(),
      status: response ? response.status() : null,
      text: await page.innerText("body"),
    });
  }
} catch (error) {
  failed = true;
  const shot = join(process.env.SCREENSHOT_DIR ?? tmpdir(), `billing-page-failure-${process.pid}.png`);
  await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
  console.error(`step ${seen.length + 1} failed: ${error.message}\nscreenshot: ${shot}`);
} finally {
  await browser.close();
}
writeFileSync(resultFile, JSON.stringify(seen));
process.exit(failed ? 1 : 0);
