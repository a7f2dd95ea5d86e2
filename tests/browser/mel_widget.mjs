// A learner's walk through the Mel chapter in JupyterLab, in Debian's Chromium driven by playwright-core:
// open the notebook, Run > Run All Cells, wait for the kernel, drag the n_mels slider, wait for the new figure.
// Usage: node mel_widget.mjs URL OUT_DIR
// Prints one JSON line (what it saw) for tests/test_browser.py to judge, and saves two screenshots in OUT_DIR.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [url, outDir] = process.argv.slice(2);
const STEP_MS = 180_000;  // one slow step (a cold kernel running every cell on a busy 2-core machine)
const result = { consoleErrors: [], pageErrors: [], log: [] };
const note = (msg) => result.log.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${msg}`);
const t0 = Date.now();

const profile = mkdtempSync(join(tmpdir(), 'ser-nbdev-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage'],
  viewport: { width: 1280, height: 860 },
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (m) => { if (m.type() === 'error') result.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => result.pageErrors.push(String(e)));

  await page.goto(url);
  await page.locator('.jp-Notebook .jp-Cell').first().waitFor();
  await page.keyboard.press('Control+b');  // fold the file browser away: the chapter gets the width
  // the status bar names the kernel once it is connected ('No Kernel | Initializing' until then)
  const idle = page.locator('.jp-StatusBar-TextItem[title^="Change kernel"]', { hasText: /^Python 3.*\| Idle$/ });
  await idle.waitFor();
  note('notebook open, kernel idle');

  // Run > Run All Cells, as a learner would; done when no cell is queued or running and the kernel is idle
  // (read from the notebook model: the prompts of the exercise solutions are hidden with their source)
  await page.locator('.lm-MenuBar-itemLabel', { hasText: /^Run$/ }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Run All Cells$/ }).click();
  await page.locator('.jp-CodeCell .jp-InputArea-prompt', { hasText: '[*]' }).first().waitFor();
  await page.waitForFunction(() => {
    const cells = [...window.jupyterapp.shell.currentWidget.content.model.cells];
    const kernel = document.querySelector('.jp-StatusBar-TextItem[title^="Change kernel"]')?.textContent;
    return cells.every((c) => c.type !== 'code' || c.executionState !== 'running') && /\| Idle$/.test(kernel);
  }, null, { polling: 500 });
  note('run all: kernel idle again');
  const cells = await page.evaluate(() => [...window.jupyterapp.shell.currentWidget.content.model.cells]
    .filter((c) => c.type === 'code')
    .map((c) => ({ n: c.executionCount, errors: c.outputs.toJSON().filter((o) => o.output_type === 'error')
      .map((o) => `${o.ename}: ${o.evalue}`) })));
  result.nCodeCells = cells.length;
  result.unexecuted = cells.filter((c) => c.n === null).length;
  result.cellErrors = cells.flatMap((c) => c.errors);

  // the live widget (the saved one is replaced when its cell runs)
  const widget = page.locator('.widget-interact').first();
  const slider = widget.locator('.widget-slider', { has: page.locator('.widget-label', { hasText: /^n_mels$/ }) });
  const readout = slider.locator('.widget-readout');
  const figure = widget.locator('.widget-output img');
  await figure.waitFor();
  const cell = page.locator('.jp-CodeCell', { has: widget });
  // frame the widget's cell (its code, the sliders, the figure) at the bottom of the notebook's scroll area
  const frame = async () => {
    await figure.evaluate((img) => img.complete || new Promise((ok) => { img.onload = ok; }));
    // cells above render at their true height as they come into view and shift the page: repeat until still
    for (let i = 0; i < 10; i++) {
      const moved = await cell.evaluate((e) => {
        const outer = e.closest('.jp-WindowedPanel-outer');
        const delta = Math.round(e.getBoundingClientRect().bottom - outer.getBoundingClientRect().bottom + 8);
        outer.scrollTop += delta;
        return Math.abs(delta) > 1;
      });
      await page.waitForTimeout(300);
      if (!moved) break;
    }
  };
  await frame();
  result.before = { n_mels: (await readout.textContent()).trim(), src: await figure.getAttribute('src') };
  await page.screenshot({ path: join(outDir, 'jupyterlab_mel_before.png') });
  note(`widget found, n_mels ${result.before.n_mels}`);

  // drag the handle to a tenth of the track and let go: continuous_update=False fires on release
  const handle = slider.locator('.noUi-handle');
  const track = await slider.locator('.noUi-base').boundingBox();
  const h = await handle.boundingBox();
  await page.mouse.move(h.x + h.width / 2, h.y + h.height / 2);
  await page.mouse.down();
  await page.mouse.move(track.x + 0.1 * track.width, h.y + h.height / 2, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction(([sel, old]) => {
    const img = document.querySelector(sel);
    return img && img.complete && img.getAttribute('src') !== old;
  }, ['.widget-interact .widget-output img', result.before.src]);
  await idle.waitFor();
  await frame();
  result.after = { n_mels: (await readout.textContent()).trim(), src: await figure.getAttribute('src') };
  await page.screenshot({ path: join(outDir, 'jupyterlab_mel_after.png') });
  note(`figure redrawn, n_mels ${result.after.n_mels}`);

  // a widget that failed to render, or an exception in the callback (shown inside the widget's output)
  result.widgetErrors = await page.locator('.widget-error, .jp-RenderedText:has-text("Error displaying widget"), '
    + '.widget-output [data-mime-type="application/vnd.jupyter.stderr"]').allTextContents();
} catch (e) {
  result.failure = String(e);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
// the figures are long data URLs: report whether they differ and their sizes, not the data
result.figureChanged = Boolean(result.before?.src && result.after?.src && result.before.src !== result.after.src);
for (const k of ['before', 'after']) if (result[k]) result[k].src = result[k].src?.length ?? 0;
console.log(JSON.stringify(result));
