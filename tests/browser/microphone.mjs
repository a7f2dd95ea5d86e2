// The microphone widget of chapter 12 in JupyterLab, in Debian's Chromium with a fake capture device fed from a WAV
// file: open the notebook, Run All, press Record, wait for the probabilities; then make getUserMedia fail as it does
// without a microphone and read what the widget says.
// Usage: node microphone.mjs URL OUT_DIR AUDIO.wav
// Prints one JSON line (what it saw) for tests/test_browser.py to judge, and saves a screenshot in OUT_DIR.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [url, outDir, audio] = process.argv.slice(2);
const STEP_MS = 180_000;  // one slow step (a cold kernel on a busy 2-core machine)
const result = { consoleErrors: [], pageErrors: [], log: [] };
const t0 = Date.now();
const note = (msg) => result.log.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${msg}`);

const profile = mkdtempSync(join(tmpdir(), 'ser-nbdev-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required',
         // a microphone that plays the file (in a loop), and permission granted without a prompt
         '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
         `--use-file-for-fake-audio-capture=${audio}`],
  viewport: { width: 1280, height: 900 },
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (m) => { if (m.type() === 'error') result.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => result.pageErrors.push(String(e)));

  await page.goto(url);
  await page.locator('.jp-Notebook .jp-Cell').first().waitFor();
  await page.keyboard.press('Control+b');
  const idle = page.locator('.jp-StatusBar-TextItem[title^="Change kernel"]', { hasText: /^Python 3.*\| Idle$/ });
  await idle.waitFor();
  await page.locator('.lm-MenuBar-itemLabel', { hasText: /^Run$/ }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Run All Cells$/ }).click();
  const button = page.locator('.ser-mic button');
  await button.waitFor();
  await idle.waitFor();
  note('widget shown, kernel idle');
  result.cellErrors = await page.evaluate(() => [...window.jupyterapp.shell.currentWidget.content.model.cells]
    .flatMap((c) => (c.type === 'code' ? c.outputs.toJSON() : []))
    .filter((o) => o.output_type === 'error').map((o) => `${o.ename}: ${o.evalue}`));

  await button.click();
  await page.locator('.ser-mic .ser-mic-bar').nth(4).waitFor();  // five emotions, each with its bar
  await page.locator('.ser-mic img').evaluate((img) => img.complete || new Promise((ok) => { img.onload = ok; }));
  await page.locator('.ser-mic').scrollIntoViewIfNeeded();
  result.status = await page.locator('.ser-mic-status').textContent();
  result.bars = await page.locator('.ser-mic-bar').allTextContents();
  result.image = (await page.locator('.ser-mic img').getAttribute('src'))?.length ?? 0;
  await page.screenshot({ path: join(outDir, 'jupyterlab_microphone.png') });
  note(`recorded: ${result.status}`);

  // no microphone: getUserMedia fails as it does on a computer without one
  await page.evaluate(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Requested device not found',
      'NotFoundError'));
  });
  await button.click();
  await page.locator('.ser-mic-status', { hasText: /^no recording/ }).waitFor();
  result.noMicrophone = await page.locator('.ser-mic-status').textContent();
  result.barsAfterError = await page.locator('.ser-mic-bar').count();
  note('no microphone: said so');
} catch (e) {
  result.failure = String(e);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
