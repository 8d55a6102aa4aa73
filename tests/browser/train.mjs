// Training in the page, in real Chromium: the mini-AlexNet trains from scratch on the shipped
// Fashion-MNIST subset in the worker, the loss falls, the curve is drawn, validation accuracy
// beats chance after an epoch, the test examples and augmented samples show, the panels
// above follow the net being trained, pause stops the steps; then a few steps on WebGPU.
// Screenshots go to test-artifacts/.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { ART, collectLogs, launch, runner, startServer } from './lib.mjs';

const { check, summary } = runner();
// One epoch of 2,000 images on one wasm thread, on a slow shared CI machine.
const LONG = { timeout: 600000 };

const status = (page) => page.$eval('[data-testid="train-status"]', (e) => ({ ...e.dataset, text: e.textContent }));
const steps = async (page) => Number((await status(page)).steps);

const { srv, url } = await startServer();
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const logs = [];
collectLogs(page, logs);

try {
  await page.goto(`${url}?backend=cpu`);
  await page.waitForSelector('body[data-ready="true"]', LONG);
  await check('an epoch on the CPU: the loss falls and validation accuracy beats chance', async () => {
    await page.fill('[data-testid="train-batch"]', '16');
    await page.click('[data-testid="train-start"]');
    // 2,000 images / 16 = 125 steps an epoch
    await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]').dataset.valAccuracy !== '', null, LONG);
    const s = await status(page);
    console.log(`  ${s.text}`);
    assert.ok(Number(s.steps) >= 125, s.text);
    assert.ok(Number(s.lastLoss) < 0.8 * Number(s.firstLoss), `loss ${s.firstLoss} -> ${s.lastLoss}`);
    assert.ok(Number(s.valAccuracy) > 0.3, `validation accuracy ${s.valAccuracy} (chance is 0.1)`);
    assert.match(s.text, /on the fast CPU backend/);
  });
  await check('the curve, the examples and the augmented samples are drawn', async () => {
    const px = await page.$eval('[data-testid="train-curve"]', (c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let coloured = 0;
      for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - d[i + 2]) > 60) coloured++;
      return coloured;
    });
    assert.ok(px > 200, `${px} coloured curve pixels`);
    assert.equal(await page.$$eval('[data-testid="train-examples"] canvas', (l) => l.length), 16);
    assert.equal(await page.$$eval('[data-testid="train-samples"] canvas', (l) => l.length), 16);
    await page.screenshot({ path: join(ART, 'train-cpu.png'), fullPage: true });
  });
  await check('the panels above show the net being trained', async () => {
    await page.waitForFunction(() => /being trained in this page/.test(document.querySelector('[data-testid="model-status"]').textContent), null, LONG);
    await page.waitForSelector('[data-testid="filters"] canvas', LONG);
  });
  await check('pause stops the steps; resume goes on', async () => {
    await page.click('[data-testid="train-pause"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]').dataset.state === 'paused', null, LONG);
    // 'paused' is shown once the request in flight has returned its steps
    const a = await steps(page);
    await page.waitForTimeout(3000);
    assert.equal(await steps(page), a, 'steps went on while paused');
    await page.click('[data-testid="train-start"]');
    await page.waitForFunction((a) => Number(document.querySelector('[data-testid="train-status"]').dataset.steps) > a, a, LONG);
    await page.click('[data-testid="train-pause"]');
  });
  await check('a few steps on WebGPU', async () => {
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]', LONG);
    // SwiftShader is a software adapter: the page offers the CPU first, WebGPU on request
    assert.equal(await page.inputValue('[data-testid="train-backend"]'), 'cpu');
    await page.selectOption('[data-testid="train-backend"]', 'gpu');
    await page.fill('[data-testid="train-batch"]', '8');
    await page.click('[data-testid="train-start"]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="train-status"]').dataset.steps) >= 8, null, LONG);
    await page.click('[data-testid="train-pause"]');
    const s = await status(page);
    console.log(`  ${s.text}`);
    assert.match(s.text, /on WebGPU/);
    assert.ok(Number.isFinite(Number(s.lastLoss)));
  });
} finally {
  writeFileSync(join(ART, 'train-console.log'), logs.join('\n'));
  await browser.close();
  srv.kill();
}
process.exit(summary());
