// The web app in real Chromium: serves www/ on 127.0.0.1, drives Debian's Chromium with
// playwright-core (never a downloaded browser) and checks what a person would: the wasm core
// loads in the worker on WebGPU, a photo dropped with a synthetic DataTransfer gets five
// results, every layer's activations and conv1's filters are drawn (non-blank pixels),
// several images queue up and the nearest ones by fc7 show, 10-crop shows its crops, bad
// files (not an image, a truncated PNG, a truncated JPEG, a decompression bomb, a 65 MB file) get their error while the next good image still
// classifies, a lost GPU device is recovered, and the forced CPU fallback does all of it too.
// Screenshots and the console log go to test-artifacts/.
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { ART, PHOTOS, ROOT, WAIT, collectLogs, drop, launch, photo, runner, settled, startServer } from './lib.mjs';

const { check, summary } = runner();

// For every canvas matching `selector`: its size and how many distinct colours it has (a
// blank canvas has one).
const canvasStats = (page, selector) => page.$$eval(selector, (cs) => cs.map((c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const colours = new Set();
  for (let i = 0; i < d.length && colours.size < 64; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
  return { w: c.width, h: c.height, colours: colours.size };
}));

// A valid PNG header that claims 40000 x 40000 pixels (a decompression bomb): the core must
// refuse it from the header, before decoding.
function pngBomb() {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(40000, 0);
  ihdr.writeUInt32BE(40000, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IEND', Buffer.alloc(0))]);
}

const top5Count = (page) => page.$$eval('[data-testid="top5"] li', (l) => l.length);

// Waits for every open activation panel of the current image to be drawn.
async function activationsDrawn(page) {
  await page.waitForFunction(() => {
    const open = [...document.querySelectorAll('[data-testid="activations"] details[open]')];
    return open.length > 0 && open.every((d) => d.querySelector('canvas'));
  }, null, WAIT);
}

async function checkActivations(page, label) {
  await activationsDrawn(page);
  const layers = await page.$$eval('[data-testid="activations"] details', (ds) =>
    ds.map((d) => ({ name: d.dataset.layer, open: d.open, canvases: d.querySelectorAll('canvas').length })));
  const open = layers.filter((l) => l.open);
  for (const name of ['conv1', 'pool1', 'conv5', 'pool5', 'fc6', 'fc7', 'fc8']) {
    assert.ok(open.some((l) => l.name === name), `${label}: ${name} is listed open: ${JSON.stringify(layers)}`);
  }
  // the mini net's grouped layers are drawn as two towers, fc layers as one strip
  const conv2 = open.find((l) => l.name === 'conv2');
  assert.equal(conv2.canvases, 2, `${label}: conv2 in two towers`);
  assert.equal(open.find((l) => l.name === 'fc7').canvases, 1);
  const stats = await canvasStats(page, '[data-testid="activations"] details[open] canvas');
  const blank = stats.filter((s) => s.colours < 2);
  assert.ok(stats.length >= open.length, `${label}: ${stats.length} canvases`);
  assert.equal(blank.length, 0, `${label}: blank activation canvases: ${JSON.stringify(blank)}`);
  // closed layers (ReLU, softmax) were not read back
  for (const l of layers.filter((l) => !l.open)) assert.equal(l.canvases, 0, `${label}: closed ${l.name} was drawn`);
}

const { srv, url } = await startServer();
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const logs = [];
collectLogs(page, logs);

try {
  // A person drops a photo as soon as the page shows, long before the model has loaded: it
  // must queue ("waiting for the model"), not vanish, and classify once the model is there.
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await check('a photo dropped the moment the page opens waits for the model, then classifies', async () => {
    await drop(page, 'drop-zone', [photo('motorcycle_left.png')]);
    const first = await page.$eval('[data-testid="queue"] li', (li) => ({ ready: document.body.dataset.ready, text: li.textContent }));
    if (first.ready !== 'true') assert.match(first.text, /motorcycle_left\.png.*waiting for the model/, JSON.stringify(first));
    assert.equal(await settled(page, 'motorcycle_left.png'), 'done');
    assert.equal(await top5Count(page), 5);
  });
  await check('the wasm core loads in the worker and the default model is described', async () => {
    await page.waitForSelector('body[data-ready="true"]', WAIT);
    assert.equal(await page.textContent('[data-testid="wasm-status"]'), 'loaded');
    const status = await page.textContent('[data-testid="model-status"]');
    // the embedded default (www/models/mini-fashion.*) with its measured test accuracy
    assert.match(status, /^the embedded mini-AlexNet trained on Fashion-MNIST by our trainer \(\d+ epochs.*; \d+\.\d\d% top-1 on the 10,000 test images(, \d+\.\d\d% with the paper's ten test views averaged)?\)/);
    assert.match(status, /mini variant, 3,446,698 parameters/);
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
  await check("conv1's filters are drawn as two towers of colour tiles", async () => {
    await page.waitForSelector('[data-testid="filters"] canvas', WAIT);
    const stats = await canvasStats(page, '[data-testid="filters"] canvas');
    assert.equal(stats.length, 2, JSON.stringify(stats));
    for (const s of stats) assert.ok(s.colours > 16, `filter canvas ${JSON.stringify(s)}`);
    assert.match(await page.textContent('[data-testid="filters-caption"]'), /conv1: 64 kernels of 5x5, RGB/);
  });
  await check('a dropped photo gets five results on WebGPU, with every open layer drawn', async () => {
    await drop(page, 'drop-zone', [photo('chelsea.png')]);
    assert.equal(await settled(page, 'chelsea.png'), 'done');
    assert.equal(await top5Count(page), 5);
    assert.equal(await page.isHidden('[data-testid="error"]'), true);
    assert.match(await page.textContent('[data-testid="time"]'), /on the GPU \(WebGPU\), centre crop/);
    await checkActivations(page, 'WebGPU');
    const crops = await canvasStats(page, '[data-testid="crops"] canvas');
    assert.equal(crops.length, 1);
    assert.ok(crops[0].colours > 16);
    await page.screenshot({ path: join(ART, 'app-classified.png'), fullPage: true });
  });
  await check('a click on a map enlarges it', async () => {
    const c = page.locator('[data-testid="activations"] details[data-layer="conv1"] canvas').first();
    await c.scrollIntoViewIfNeeded();
    await c.click({ position: { x: 3, y: 3 } });
    await page.waitForSelector('[data-testid="enlarged-wrap"]:not([hidden])', WAIT);
    assert.match(await page.textContent('[data-testid="enlarged-caption"]'), /conv1, map 0 \(tower 1\), 32×32/);
    const [s] = await canvasStats(page, '[data-testid="enlarged"]');
    assert.ok(s.colours > 2, JSON.stringify(s));
  });
  await check('several images queue up, and the nearest ones by fc7 distance are listed', async () => {
    await drop(page, 'drop-zone', [photo('coffee.png'), photo('astronaut.png')]);
    // both are in the queue at once, and run one after the other
    assert.ok(await page.$$eval('[data-testid="queue"] li', (l) => l.length) >= 3);
    assert.equal(await settled(page, 'coffee.png'), 'done');
    assert.equal(await settled(page, 'astronaut.png'), 'done');
    assert.equal(await page.textContent('[data-testid="current-name"]'), 'astronaut.png');
    const n = await page.$$eval('[data-testid="neighbours"] [data-testid="neighbour"]', (ls) =>
      ls.map((l) => ({ name: l.querySelector('.name').textContent, d: parseFloat(l.querySelector('.dist').textContent.replace('distance ', '')) })));
    // with the photo dropped while the page was loading
    assert.deepEqual(n.map((x) => x.name).sort(), ['chelsea.png', 'coffee.png', 'motorcycle_left.png']);
    assert.ok(n[0].d <= n[1].d && n[1].d <= n[2].d && n[0].d > 0, JSON.stringify(n));
  });
  await check('an image pasted from the clipboard is queued and classified', async () => {
    const b64 = readFileSync(join(PHOTOS, 'motorcycle_left.png')).toString('base64');
    await page.evaluate((b64) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'image.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, b64);
    assert.equal(await settled(page, 'image.png'), 'done');
    assert.equal(await page.textContent('[data-testid="current-name"]'), 'image.png');
    assert.equal(await top5Count(page), 5);
  });
  await check('10-crop averaging re-runs the image and shows the ten crops', async () => {
    await page.check('[data-testid="tta-toggle"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="crops"] canvas').length === 10, null, WAIT);
    await page.waitForFunction(() => /10 crops averaged/.test(document.querySelector('[data-testid="time"]').textContent), null, WAIT);
    assert.equal(await top5Count(page), 5);
    const crops = await canvasStats(page, '[data-testid="crops"] canvas');
    assert.ok(crops.every((c) => c.colours > 16), JSON.stringify(crops));
    await checkActivations(page, 'WebGPU 10-crop');
    await page.screenshot({ path: join(ART, 'app-ten-crop.png'), fullPage: true });
    await page.uncheck('[data-testid="tta-toggle"]');
    await page.waitForFunction(() => /centre crop/.test(document.querySelector('[data-testid="time"]').textContent), null, WAIT);
  });
  await check('a non-image, a truncated PNG, a truncated JPEG, a decompression bomb and a 65 MB file get their errors; the next good image still classifies', async () => {
    const png = readFileSync(join(PHOTOS, 'chelsea.png'));
    const jpg = readFileSync(join(PHOTOS, 'rocket.jpg'));
    await drop(page, 'drop-zone', [
      { name: 'notes.png', mime: 'image/png', data: Buffer.from('this is not an image') },
      { name: 'truncated.png', mime: 'image/png', data: png.subarray(0, Math.floor(png.length / 3)) },
      { name: 'truncated.jpg', mime: 'image/jpeg', data: jpg.subarray(0, Math.floor(jpg.length * 0.8)) },
      { name: 'bomb.png', mime: 'image/png', data: pngBomb() },
      { name: 'huge.png', mime: 'image/png', zeros: 65 * 2 ** 20 },
      photo('grace_hopper.jpg'),
    ]);
    for (const bad of ['notes.png', 'truncated.png', 'truncated.jpg', 'bomb.png', 'huge.png']) assert.equal(await settled(page, bad), 'error', bad);
    assert.equal(await settled(page, 'grace_hopper.jpg'), 'done');
    const errs = await page.$$eval('[data-testid="queue"] li.error', (ls) => ls.map((l) => l.textContent));
    assert.equal(errs.length, 5, JSON.stringify(errs));
    assert.match(errs[0], /notes\.png.*image/);
    assert.match(errs[1], /truncated\.png.*image/);
    assert.match(errs[2], /truncated\.jpg.*JPEG data is truncated/);
    assert.match(errs[3], /bomb\.png.*image.*(over the limit|over the decoding limits)/);
    assert.match(errs[4], /huge\.png.*too large: 65\.0 MB/);
    assert.equal(await page.isVisible('[data-testid="error"]'), true);
    assert.match(await page.textContent('[data-testid="error"]'), /huge\.png: too large/);
    assert.equal(await page.textContent('[data-testid="current-name"]'), 'grace_hopper.jpg');
    assert.equal(await top5Count(page), 5);
    await page.screenshot({ path: join(ART, 'app-errors.png'), fullPage: true });
  });
  await check('a lost GPU device is re-created and the model re-uploaded without a reload', async () => {
    await page.click('[data-testid="lose-device"]');
    await page.waitForFunction(() => /device destroyed/.test(document.querySelector('[data-testid="backend"]').textContent), null, WAIT);
    await drop(page, 'drop-zone', [photo('rocket.jpg')]);
    assert.equal(await settled(page, 'rocket.jpg'), 'done');
    const t = await page.textContent('[data-testid="backend"]');
    assert.equal(await page.getAttribute('[data-testid="backend"]', 'data-kind'), 'gpu', t);
    assert.match(t, /recovered: the GPU device was lost .*re-created it and re-uploaded the model/);
    assert.match(await page.textContent('[data-testid="time"]'), /on the GPU/);
    await checkActivations(page, 'after recovery');
  });
  await check('the forced CPU fallback classifies, draws activations and neighbours too', async () => {
    await page.goto(`${url}?backend=cpu`);
    await page.waitForSelector('body[data-ready="true"]', WAIT);
    assert.equal(await page.getAttribute('[data-testid="backend"]', 'data-kind'), 'cpu');
    assert.match(await page.textContent('[data-testid="backend"]'), /fast CPU backend/);
    assert.equal(await page.isHidden('[data-testid="lose-device"]'), true);
    await drop(page, 'drop-zone', [photo('chelsea.png'), photo('coffee.png')]);
    assert.equal(await settled(page, 'coffee.png'), 'done');
    assert.match(await page.textContent('[data-testid="time"]'), /on the CPU/);
    await checkActivations(page, 'CPU');
    assert.equal(await page.$$eval('[data-testid="neighbours"] [data-testid="neighbour"]', (l) => l.length), 1);
    await page.screenshot({ path: join(ART, 'app-cpu.png'), fullPage: true });
  });
  await check('the model downloads as safetensors and ONNX, and both load back', async () => {
    for (const format of ['safetensors', 'onnx']) {
      const [download] = await Promise.all([page.waitForEvent('download', WAIT), page.click(`[data-testid="export-${format}"]`)]);
      const path = join(ART, `exported-mini.${format}`);
      await download.saveAs(path);
      const bytes = readFileSync(path);
      assert.ok(bytes.length > 5_000_000, `${format}: ${bytes.length} bytes`);
      await page.setInputFiles('[data-testid="weights-input"]', path);
      await page.waitForFunction((name) => new RegExp(`${name} — \\w+ variant, 3,446,698 parameters`)
        .test(document.querySelector('[data-testid="model-status"]').textContent), `exported-mini\\.${format}`, WAIT);
      // the file is then kept in the browser's cache; the section takes a new file after that
      await page.waitForSelector('[data-testid="weights"]:not([aria-busy="true"])', WAIT);
    }
  });
  await check('a loaded weight file replaces the net: filters, activations and neighbours follow it', async () => {
    await page.setInputFiles('[data-testid="weights-input"]', join(ROOT, 'fixtures/onnx/mini-tv.onnx'));
    await page.waitForFunction(() => /mini-tv\.onnx — custom variant, 11,334 parameters/
      .test(document.querySelector('[data-testid="model-status"]').textContent), null, WAIT)
      .catch(async (e) => {
        throw new Error(`${e.message}\nmodel: ${await page.textContent('[data-testid="model-status"]')}\n` +
          `weights: ${await page.textContent('[data-testid="weights-error"]')} ${await page.textContent('[data-testid="weights-note"]')}`);
      });
    // the shown image runs again on the new net: one tower (no grouped convolutions)
    await page.waitForFunction(() => /8×24×24$/.test(document.querySelector('[data-testid="activations"] details[data-layer="conv1"] summary')?.textContent || ''), null, WAIT);
    await activationsDrawn(page);
    const conv1 = await canvasStats(page, '[data-testid="activations"] details[data-layer="conv1"] canvas');
    assert.equal(conv1.length, 1, JSON.stringify(conv1));
    assert.ok(conv1[0].colours > 2);
    assert.match(await page.textContent('[data-testid="filters-caption"]'), /conv1: 8 kernels of 5x5, RGB/);
    assert.equal((await canvasStats(page, '[data-testid="filters"] canvas')).length, 1);
    assert.equal(await top5Count(page), 5);
    // fc7 vectors of the old net are not comparable with the new one's
    assert.equal(await page.$$eval('[data-testid="neighbours"] [data-testid="neighbour"]', (l) => l.length), 0);
  });
} finally {
  writeFileSync(join(ART, 'app-console.log'), logs.join('\n'));
  await browser.close();
  srv.kill();
}
process.exit(summary());
