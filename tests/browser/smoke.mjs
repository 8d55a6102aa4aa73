// Browser smoke test of www/: serves it on 127.0.0.1, drives Debian's Chromium with
// playwright-core (never a downloaded browser), and checks the page really works: the wasm
// core loads in the worker, the built-in configs show the known parameter counts, a photo
// classifies into five results on WebGPU, a bad file shows an error and the next good one still
// works, and the forced CPU fallback classifies too.
// Screenshots go to test-artifacts/.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const ROOT = new URL('../..', import.meta.url).pathname;
const ART = join(ROOT, 'test-artifacts');
mkdirSync(ART, { recursive: true });

function startServer() {
  return new Promise((resolve, reject) => {
    const srv = spawn('python3', [join(ROOT, 'tools/serve.py'), '--dir', join(ROOT, 'www'), '--port', '0']);
    srv.stdout.on('data', (d) => {
      const m = /http:\/\/[\d.]+:\d+\//.exec(d.toString());
      if (m) resolve({ srv, url: m[0] });
    });
    srv.on('exit', (code) => reject(new Error(`server exited ${code}`)));
    setTimeout(() => reject(new Error('server did not start in 10 s')), 10000);
  });
}

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${e.stack || e}`);
  }
}

const { srv, url } = await startServer();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // playwright gives every launch a fresh temporary profile of its own.
  args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage();
const logs = [];
page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));

try {
  await page.goto(url);
  await check('the wasm core loads in the worker and the default model is described', async () => {
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60000 });
    assert.equal(await page.textContent('[data-testid="wasm-status"]'), 'loaded');
    const status = await page.textContent('[data-testid="model-status"]');
    assert.match(status, /mini variant, 1,463,690 parameters/);
    assert.match(status, /UNTRAINED/);
  });
  await check('the built-in configs show the known parameter counts', async () => {
    const rows = await page.$$eval('[data-testid="configs"] tbody tr', (trs) => trs.map((tr) => tr.innerText));
    assert.equal(rows.length, 4);
    assert.match(rows[1], /bvlc\s+3x224x224\s+60,965,224/);
    assert.match(rows[2], /torchvision\s+3x224x224\s+61,100,840/);
  });
  await check('the backend line names WebGPU and its adapter honestly', async () => {
    const t = await page.textContent('[data-testid="backend"]');
    console.log(`  backend: ${t}`);
    // the build's Chromium has WebGPU on SwiftShader, a software adapter
    assert.equal(await page.getAttribute('[data-testid="backend"]', 'data-kind'), 'gpu', t);
    assert.match(t, /^WebGPU on /);
    if (/swiftshader/i.test(t)) assert.match(t, /software adapter/);
  });
  await check('a photo classifies into five results on WebGPU', async () => {
    await page.setInputFiles('[data-testid="file-input"]', join(ROOT, 'fixtures/photos/chelsea.png'));
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="top5"] li').length === 5, null, { timeout: 60000 });
    assert.equal(await page.isHidden('[data-testid="error"]'), true);
    assert.match(await page.textContent('[data-testid="time"]'), /\(WebGPU\)/);
    await page.screenshot({ path: join(ART, 'smoke-classified.png'), fullPage: true });
  });
  await check('a non-image shows an error and the next photo still classifies', async () => {
    await page.setInputFiles('[data-testid="file-input"]', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('this is not an image') });
    await page.waitForSelector('[data-testid="error"]:not([hidden])', { timeout: 30000 });
    const err = await page.textContent('[data-testid="error"]');
    assert.match(err, /notes\.png: image/);
    await page.screenshot({ path: join(ART, 'smoke-error.png'), fullPage: true });
    await page.evaluate(() => document.querySelector('[data-testid="top5"]').replaceChildren());
    await page.setInputFiles('[data-testid="file-input"]', join(ROOT, 'fixtures/photos/coffee.png'));
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="top5"] li').length === 5, null, { timeout: 60000 });
  });
  await check('10-crop averaging classifies too', async () => {
    await page.check('[data-testid="tta-toggle"]');
    await page.evaluate(() => document.querySelector('[data-testid="top5"]').replaceChildren());
    await page.setInputFiles('[data-testid="file-input"]', join(ROOT, 'fixtures/photos/rocket.jpg'));
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="top5"] li').length === 5, null, { timeout: 60000 });
  });
  await check('a bad weight file is refused and the model stays loaded', async () => {
    await page.setInputFiles('[data-testid="weights-input"]', { name: 'broken.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from([8, 7, 0xff, 0xff, 0xff]) });
    await page.waitForSelector('[data-testid="weights-error"]:not([hidden])', { timeout: 30000 });
    assert.match(await page.textContent('[data-testid="weights-error"]'), /broken\.onnx: .*previous model is still loaded/);
    assert.match(await page.textContent('[data-testid="model-status"]'), /mini variant/);
  });
  await check('the forced CPU fallback classifies too and says so', async () => {
    await page.goto(`${url}?backend=cpu`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60000 });
    assert.equal(await page.getAttribute('[data-testid="backend"]', 'data-kind'), 'cpu');
    assert.match(await page.textContent('[data-testid="backend"]'), /fast CPU backend/);
    await page.setInputFiles('[data-testid="file-input"]', join(ROOT, 'fixtures/photos/chelsea.png'));
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="top5"] li').length === 5, null, { timeout: 60000 });
    assert.match(await page.textContent('[data-testid="time"]'), /\(CPU\)/);
    await page.screenshot({ path: join(ART, 'smoke-cpu.png'), fullPage: true });
  });
} finally {
  writeFileSync(join(ART, 'smoke-console.log'), logs.join('\n'));
  await browser.close();
  srv.kill();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
