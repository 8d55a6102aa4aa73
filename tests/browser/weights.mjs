// Browser test of the weight-file UI (www/models.js): serves www/ on 127.0.0.1, drives Debian's
// Chromium with playwright-core, and checks that a picked, dropped or fetched ONNX file loads
// (model status names it, its variant and parameter count), is cached and restored on reload,
// that URL and file errors are clear and leave the previous model loaded, that a bad file is
// never cached, and that removing cached models brings back the default model.
// Screenshots go to test-artifacts/.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { ART, ROOT, collectLogs, launch, runner, startServer } from './lib.mjs';

const GOOD = join(ROOT, 'fixtures/onnx/mini-bvlc.onnx');
const BAD = join(ROOT, 'fixtures/onnx/bad-truncated.onnx');
const goodBytes = readFileSync(GOOD);
// mini-bvlc.onnx's initializers hold 13,530 numbers (conv1..fc8 weights and biases). It has
// bvlc's layer structure at a tiny size, which matches no builtin's layers, so the core names
// its family "custom" (src/io/onnx.rs, family recognition).
const GOOD_STATUS = /custom variant, 13,530 parameters/;
const T = 120000; // page start includes WebGPU init on SwiftShader; the worker runs requests in order

const { check, summary } = runner();

const sel = (id) => `[data-testid="${id}"]`;
const text = (page, id) => page.textContent(sel(id));
// Waits until the element's text matches `re`; on timeout says what the text was instead.
async function waitText(page, id, re) {
  try {
    await page.waitForFunction(([s, src, flags]) => new RegExp(src, flags).test(document.querySelector(s)?.textContent || ''),
      [sel(id), re.source, re.flags], { timeout: T });
  } catch (e) {
    throw new Error(`${id} never matched ${re}; it says: ${JSON.stringify(await text(page, id))}\n${e.message}`);
  }
}
const idle = (page) => page.waitForSelector(`${sel('weights')}:not([aria-busy="true"])`, { timeout: T });
const cachedNames = (page) => page.$$eval(`${sel('cached-models')} li b`, (bs) => bs.map((b) => b.textContent));
const cacheKeys = (page) => page.evaluate(async () => (await (await caches.open('alexnet-weights-v1')).keys()).map((r) => r.url));
async function ready(page) {
  await page.waitForSelector('body[data-ready="true"]', { timeout: T });
  await idle(page);
}

const { srv, url } = await startServer();
const browser = await launch();
const logs = [];
// Each context is a separate profile: its own Cache API storage and localStorage.
async function newPage() {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  collectLogs(page, logs);
  await page.goto(url);
  await ready(page);
  return page;
}

const t0 = Date.now();
try {
  const page = await newPage();
  await check('(a) a picked ONNX file loads, is described and is cached', async () => {
    assert.match(await text(page, 'model-status'), /mini variant/);
    assert.equal(await page.isHidden(sel('weights-progress')), true, 'progress is hidden when idle');
    await page.setInputFiles(sel('weights-input'), GOOD);
    await waitText(page, 'model-status', /^mini-bvlc\.onnx — /);
    assert.match(await text(page, 'model-status'), GOOD_STATUS);
    await idle(page);
    assert.deepEqual(await cachedNames(page), ['mini-bvlc.onnx']);
    const li = await page.textContent(`${sel('cached-models')} li`);
    assert.match(li, /0\.06 MB · custom variant · 13,530 parameters/);
    assert.match(await text(page, 'weights-note'), /kept it in the browser cache/);
    assert.equal(await page.isHidden(sel('weights-error')), true);
    assert.equal(await page.isHidden(sel('weights-progress')), true);
    await page.screenshot({ path: join(ART, 'weights-loaded.png'), fullPage: true });
  });
  await check('(b) a reload restores the model from the cache without picking it', async () => {
    await page.reload();
    await ready(page);
    assert.match(await text(page, 'model-status'), /^mini-bvlc\.onnx — /);
    assert.match(await text(page, 'model-status'), GOOD_STATUS);
    assert.match(await text(page, 'weights-note'), /Loaded mini-bvlc\.onnx from the browser cache/);
    assert.deepEqual(await cachedNames(page), ['mini-bvlc.onnx']);
    assert.match(await page.textContent(`${sel('cached-models')} li`), /loaded now/);
  });
  await check('(e) an invalid file shows an error, keeps the previous model and is not cached', async () => {
    await page.setInputFiles(sel('weights-input'), BAD);
    await page.waitForSelector(`${sel('weights-error')}:not([hidden])`, { timeout: T });
    await idle(page);
    const err = await text(page, 'weights-error');
    assert.match(err, /^bad-truncated\.onnx: .*truncated/);
    assert.match(err, /previous model is still loaded/);
    assert.match(await text(page, 'model-status'), /^mini-bvlc\.onnx — /);
    assert.deepEqual(await cachedNames(page), ['mini-bvlc.onnx']);
    assert.deepEqual((await cacheKeys(page)).filter((k) => /bad-truncated/.test(k)), []);
    await page.screenshot({ path: join(ART, 'weights-error.png'), fullPage: true });
    // the page still works: the cached model loads again and clears the error
    await page.click(sel('cached-load'));
    await waitText(page, 'weights-note', /from the browser cache/);
    await idle(page);
    assert.equal(await page.isHidden(sel('weights-error')), true);
  });
  await check('(f) removing cached models empties the list; a reload brings back the default model', async () => {
    await page.click(sel('cached-remove'));
    await page.waitForFunction((s) => document.querySelectorAll(`${s} li`).length === 0, sel('cached-models'), { timeout: T });
    await idle(page);
    assert.deepEqual(await cacheKeys(page), []);
    // removing the loaded model keeps it loaded for now
    assert.match(await text(page, 'model-status'), /^mini-bvlc\.onnx — /);
    assert.match(await text(page, 'weights-note'), /stays loaded/);
    await page.reload();
    await ready(page);
    assert.match(await text(page, 'model-status'), /mini variant, 3,446,698 parameters/);
    assert.equal(await page.isHidden(sel('weights-error')), true);
    assert.deepEqual(await cachedNames(page), []);
  });
  await check('(g) a cached entry that no longer loads is removed at restore, with a clear error', async () => {
    await page.evaluate(async () => {
      const key = new URL('cached-weights/corrupt.onnx', location.href).href;
      const cache = await caches.open('alexnet-weights-v1');
      await cache.put(key, new Response(new Uint8Array([8, 7, 0xff, 0xff, 0xff]), {
        headers: { 'x-weights-size': '5', 'x-weights-family': 'bvlc', 'x-weights-params': '1', 'x-weights-time': '1' },
      }));
      localStorage.setItem('alexnet-weights-last', key);
    });
    await page.reload();
    await ready(page);
    assert.match(await text(page, 'weights-error'), /corrupt\.onnx in the browser cache is no longer a usable weight file.*removed/);
    assert.equal(await page.isVisible(sel('weights-error')), true);
    assert.match(await text(page, 'model-status'), /mini variant/);
    assert.deepEqual(await cachedNames(page), []);
    assert.deepEqual(await cacheKeys(page), []);
    assert.equal(await page.evaluate(() => localStorage.getItem('alexnet-weights-last')), null);
  });
  await page.context().close();

  const dropPage = await newPage();
  await check('(c) a file dropped on the drop zone loads and is cached', async () => {
    const over = await dropPage.evaluate(async ([b64, s]) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped-bvlc.onnx'));
      const zone = document.querySelector(s);
      for (const type of ['dragenter', 'dragover']) {
        zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
      const highlighted = zone.classList.contains('over');
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      return highlighted;
    }, [goodBytes.toString('base64'), sel('weights-drop')]);
    assert.equal(over, true, 'the drop zone is highlighted while a file is over it');
    await waitText(dropPage, 'model-status', /^dropped-bvlc\.onnx — /);
    assert.match(await text(dropPage, 'model-status'), GOOD_STATUS);
    await idle(dropPage);
    assert.deepEqual(await cachedNames(dropPage), ['dropped-bvlc.onnx']);
  });
  await dropPage.context().close();

  const urlPage = await newPage();
  await check('(d) a URL downloads with a determinate progress bar and loads', async () => {
    await urlPage.route('**/remote/mini-bvlc.onnx', (r) => r.fulfill({
      status: 200, body: goodBytes,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(goodBytes.length) },
    }));
    // Every value the bar and its text had: a mutation record keeps the value it replaced.
    await urlPage.evaluate(([bs, ts]) => {
      const bar = document.querySelector(bs);
      const label = document.querySelector(ts);
      window.seen = { values: [], texts: [] };
      new MutationObserver((recs) => {
        for (const r of recs) {
          if (r.attributeName === 'value' && r.oldValue !== null) window.seen.values.push(Number(r.oldValue));
          for (const n of r.removedNodes || []) window.seen.texts.push(n.textContent);
        }
      }).observe(bar, { attributes: true, attributeOldValue: true, attributeFilter: ['value'] });
      new MutationObserver((recs) => {
        for (const r of recs) for (const n of r.removedNodes) window.seen.texts.push(n.textContent);
      }).observe(label, { childList: true });
    }, [sel('weights-progress'), sel('weights-progress-text')]);
    await urlPage.fill(sel('weights-url'), `${url}remote/mini-bvlc.onnx`);
    await urlPage.click(sel('weights-url-load'));
    await waitText(urlPage, 'model-status', /^mini-bvlc\.onnx — /);
    assert.match(await text(urlPage, 'model-status'), GOOD_STATUS);
    await idle(urlPage);
    const seen = await urlPage.evaluate(() => window.seen);
    const max = Number(await urlPage.getAttribute(sel('weights-progress'), 'max'));
    assert.equal(max, goodBytes.length, 'the bar is sized by Content-Length');
    assert.ok(seen.values.includes(max), `the bar reached its max; values seen: ${seen.values}`);
    assert.ok(seen.texts.some((t) => /^downloading 0\.1 of 0\.1 MB$/.test(t)), `texts seen: ${seen.texts}`);
    assert.ok(seen.texts.includes('validating…'), `texts seen: ${seen.texts}`);
    assert.equal(await urlPage.isHidden(sel('weights-progress')), true);
    assert.deepEqual(await cachedNames(urlPage), ['mini-bvlc.onnx']);
    await urlPage.screenshot({ path: join(ART, 'weights-url.png'), fullPage: true });
  });
  await check('(d) a URL answering 404 gives an error naming the URL and the status', async () => {
    await urlPage.route('**/remote/missing.onnx', (r) => r.fulfill({ status: 404, body: 'not here' }));
    await urlPage.fill(sel('weights-url'), `${url}remote/missing.onnx`);
    await urlPage.click(sel('weights-url-load'));
    await urlPage.waitForSelector(`${sel('weights-error')}:not([hidden])`, { timeout: T });
    await idle(urlPage);
    const err = await text(urlPage, 'weights-error');
    assert.ok(err.includes(`${url}remote/missing.onnx`), err);
    assert.match(err, /HTTP 404/);
    assert.match(await text(urlPage, 'model-status'), /^mini-bvlc\.onnx — /);
    assert.deepEqual(await cachedNames(urlPage), ['mini-bvlc.onnx']);
  });
  await check('(d) a URL that cannot be reached names the URL and mentions CORS', async () => {
    await urlPage.route('**/remote/unreachable.onnx', (r) => r.abort('connectionrefused'));
    await urlPage.fill(sel('weights-url'), `${url}remote/unreachable.onnx`);
    await urlPage.click(sel('weights-url-load'));
    await urlPage.waitForFunction((s) => /unreachable/.test(document.querySelector(s).textContent), sel('weights-error'), { timeout: T });
    await idle(urlPage);
    const err = await text(urlPage, 'weights-error');
    assert.ok(err.includes(`${url}remote/unreachable.onnx`), err);
    assert.match(err, /CORS/);
    assert.equal(await urlPage.isHidden(sel('weights-progress')), true);
  });
  await urlPage.context().close();
} finally {
  writeFileSync(join(ART, 'weights-console.log'), logs.join('\n'));
  await browser.close();
  srv.kill();
}
console.log(`${((Date.now() - t0) / 1000).toFixed(0)} s`);
process.exit(summary());
