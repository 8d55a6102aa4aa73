// Fine-tuning on a person's classes, in real Chromium: two named classes of fixture photos
// (dropped with a synthetic DataTransfer and picked), trained at the chosen depth in the
// worker with a progress bar and the memory plan shown; afterwards the page classifies with
// the new classes and gets the training photos right. Also: a class without photos is refused
// with a message, and a webcam frame (Chromium's fake camera) is captured into a class.
// Screenshots go to test-artifacts/.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { ART, PHOTOS, WAIT, collectLogs, photo, runner, settled, startServer } from './lib.mjs';

const { check, summary } = runner();
const LONG = { timeout: 600000 };

// Drops photos on the n-th class's drop zone.
async function dropOn(page, n, files) {
  await page.evaluate(({ n, files }) => {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.mime }));
    const target = document.querySelectorAll('[data-testid="ft-class-drop"]')[n];
    for (const type of ['dragenter', 'dragover', 'drop']) target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
  }, { n, files: files.map((f) => ({ name: f.name, mime: f.mime, b64: f.data.toString('base64') })) });
}

const { srv, url } = await startServer();
// the fake camera and auto-accepted permission give the webcam path a frame to capture
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--enable-unsafe-webgpu', '--no-sandbox', '--no-first-run', '--disable-background-networking',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const logs = [];
collectLogs(page, logs);

try {
  await page.goto(`${url}?backend=cpu`);
  await page.waitForSelector('body[data-ready="true"]', WAIT);
  await check('a class without photos is refused with a message', async () => {
    await page.click('[data-testid="ft-start"]');
    assert.match(await page.textContent('[data-testid="ft-status"]'), /at least two classes, each with a name and a photo/);
  });
  await check('a webcam frame is captured into a class', async () => {
    await page.click('[data-testid="ft-add-class"]');
    const third = page.locator('[data-testid="ft-class"]').nth(2);
    await third.locator('[data-testid="ft-class-capture"]').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="ft-class"]')[2].querySelectorAll('.thumbs img').length === 1, null, WAIT);
    await third.locator('button', { hasText: 'remove' }).click();
    assert.equal(await page.locator('[data-testid="ft-class"]').count(), 2);
  });
  await check('two classes fine-tune; the page then classifies with them and gets the photos right', async () => {
    const names = page.locator('[data-testid="ft-class-name"]');
    await names.nth(0).fill('cat');
    await names.nth(1).fill('space');
    await dropOn(page, 0, [photo('chelsea.png'), photo('chelsea_cmyk.jpg'), photo('coffee.png')]);
    await page.locator('[data-testid="ft-class-input"]').nth(1).setInputFiles(
      ['astronaut.png', 'rocket.jpg', 'motorcycle_left.png'].map((f) => join(PHOTOS, f)));
    await page.selectOption('[data-testid="ft-depth"]', 'all');
    await page.fill('[data-testid="ft-epochs"]', '30');
    await page.fill('[data-testid="ft-lr"]', '0.01');
    await page.click('[data-testid="ft-start"]');
    await page.waitForSelector('[data-testid="ft-status"][data-done="true"]', LONG);
    const st = await page.textContent('[data-testid="ft-status"]');
    console.log(`  ${st}`);
    assert.match(st, /4 photos to learn from, 2 held out/);
    assert.match(st, /held-out accuracy \d+%/);
    assert.match(st, /MB for weights, gradients and momentum/);
    assert.match(await page.textContent('[data-testid="model-status"]'), /fine-tuned on your 2 classes \(cat, space/);
    await page.screenshot({ path: join(ART, 'finetune-done.png'), fullPage: true });
    for (const [file, want] of [['chelsea.png', 'cat'], ['astronaut.png', 'space']]) {
      await page.setInputFiles('[data-testid="file-input"]', join(PHOTOS, file));
      assert.equal(await settled(page, file), 'done');
      const top = await page.$$eval('[data-testid="top5"] li', (l) => l.map((x) => x.textContent));
      assert.equal(top.length, 2, JSON.stringify(top));
      assert.match(top[0], new RegExp(`^${want} — `), `${file}: ${JSON.stringify(top)}`);
    }
  });
} finally {
  writeFileSync(join(ART, 'finetune-console.log'), logs.join('\n'));
  await browser.close();
  srv.kill();
}
process.exit(summary());
