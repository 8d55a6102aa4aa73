// Runs www/bench.html in headless Chromium (Debian's /usr/bin/chromium through playwright-core;
// it never downloads a browser) and prints the tables: our backends vs onnxruntime-web's wasm and
// WebGPU execution providers, same model (our random weights exported as ONNX), same input.
//
// Builds nothing: run `./build.sh wasm` first (www/pkg), and `npm ci` (node_modules holds
// onnxruntime-web, a pinned dev dependency). It copies the onnxruntime-web files the page needs
// into www/vendor/ort (gitignored; never a CDN), serves www/ with tools/serve.py on a free port
// and opens bench.html once per config.
//
//   node tools/bench-browser.mjs [--model mini|bvlc|torchvision[,..]] [--batch N[,N..]] [--runs R]
//        [--backends cpu,gpu,ort-wasm,ort-webgpu] [--ref] [--no-per-layer] [--gpu-per-layer]
//        [--train] [--ort-threads T] [--seed S] [--timeout-s S] [--json FILE] [--copy-only]
//
// --train times a whole training step (forward, loss, backward, SGD update) on our backends;
// onnxruntime-web has no training there, so its rows are skipped.
//
// Example: node tools/bench-browser.mjs --model mini --batch 1,32 --runs 5
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = new URL('..', import.meta.url).pathname;
const WWW = join(ROOT, 'www');
const ORT_DIST = join(ROOT, 'node_modules/onnxruntime-web/dist');
const VENDOR = join(WWW, 'vendor/ort');
// ort.min.mjs is the default build (wasm + JSEP WebGPU EPs); it loads the jsep wasm.
const ORT_FILES = ['ort.min.mjs', 'ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'mini' },
    batch: { type: 'string', default: '1' },
    runs: { type: 'string', default: '5' },
    backends: { type: 'string', default: 'cpu,gpu,ort-wasm,ort-webgpu' },
    ref: { type: 'boolean', default: false },
    'no-per-layer': { type: 'boolean', default: false },
    'gpu-per-layer': { type: 'boolean', default: false },
    train: { type: 'boolean', default: false },
    'ort-threads': { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    'timeout-s': { type: 'string', default: '600' },
    json: { type: 'string' },
    'copy-only': { type: 'boolean', default: false },
  },
});

function copyOrt() {
  mkdirSync(VENDOR, { recursive: true });
  for (const f of ORT_FILES) {
    const src = join(ORT_DIST, f);
    if (!existsSync(src)) throw new Error(`${src} is missing: run \`npm ci\` (onnxruntime-web is a dev dependency)`);
    copyFileSync(src, join(VENDOR, f));
  }
}

function startServer() {
  return new Promise((resolve, reject) => {
    const srv = spawn('python3', [join(ROOT, 'tools/serve.py'), '--dir', WWW, '--port', '0']);
    srv.stdout.on('data', (d) => {
      const m = /http:\/\/[\d.]+:\d+\//.exec(d.toString());
      if (m) resolve({ srv, url: m[0] });
    });
    srv.on('exit', (code) => reject(new Error(`server exited ${code}`)));
    setTimeout(() => reject(new Error('server did not start in 10 s')), 10000);
  });
}

const pad = (s, n, left = false) => (left ? String(s).padEnd(n) : String(s).padStart(n));
const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));

function table(res) {
  const out = [];
  const byId = Object.fromEntries(res.rows.map((r) => [r.id, r]));
  const ratio = (ref, r) => (ref && !ref.error && !r.error ? `${f(ref.total_ms / r.total_ms, 2)}x` : '-');
  const w = Math.max(20, ...res.rows.map((r) => r.backend.length));
  out.push(`model ${res.model} (${res.info.params.toLocaleString('en-US')} parameters, input ${res.info.input.join('x')}, seed ${res.seed}), ` +
    `batch ${res.batch}, ${res.train ? 'training step' : 'forward'}, median of ${res.runs} run(s) after one warm-up; ` +
    `wall ${f(res.wall_s, 1)} s`);
  out.push(`WebGPU adapter: ${res.env.adapter.text}`);
  out.push(`browser: ${res.env.userAgent.match(/(Headless)?Chrome\/[\d.]+/)?.[0] || res.env.userAgent}, ` +
    `${res.env.hardwareConcurrency} logical CPUs, crossOriginIsolated ${res.env.crossOriginIsolated}`);
  out.push('');
  out.push(`${pad('backend', w, true)} ${pad('median ms', 10)} ${pad('ms/image', 9)} ${pad('images/s', 9)} ` +
    `${pad('vs ORT wasm', 11)} ${pad('vs ORT WebGPU', 13)} ${pad('max|diff|', 9)}`);
  for (const r of res.rows) {
    if (r.error) { out.push(`${pad(r.backend, w, true)} error: ${r.error}`); continue; }
    out.push(`${pad(r.backend, w, true)} ${pad(f(r.total_ms), 10)} ${pad(f(r.total_ms / r.batch, 3), 9)} ` +
      `${pad(f((1000 * r.batch) / r.total_ms, 1), 9)} ${pad(ratio(byId['ort-wasm'], r), 11)} ` +
      `${pad(ratio(byId['ort-webgpu'], r), 13)} ${pad(r.max_abs_diff == null ? '-' : r.max_abs_diff.toExponential(1), 9)}`);
  }
  out.push('("vs ORT" = ORT median / this median: above 1 this row is faster; max|diff| vs the first row\'s output)');
  for (const r of res.rows.filter((x) => x.layers && x.layers.length)) {
    const how = { gpu_timestamps: 'GPU timestamps', prefix_differences: 'prefix differences',
      wall_per_layer: 'wall time per layer inside the step' }[r.method] || r.method;
    out.push('', `per layer, ${r.backend} (${how}):`);
    if (res.train) {
      out.push(`${pad('layer', 10, true)} ${pad('op', 8, true)} ${pad('fwd ms', 10)} ${pad('bwd ms', 10)} ${pad('update ms', 10)}`);
      for (const l of r.layers) {
        out.push(`${pad(l.name, 10, true)} ${pad(l.kind, 8, true)} ${pad(f(l.layer_ms, 3), 10)} ` +
          `${pad(f(l.backward_ms, 3), 10)} ${pad(f(l.update_ms, 3), 10)}`);
      }
      continue;
    }
    out.push(`${pad('layer', 10, true)} ${pad('op', 8, true)} ${pad('ms', 10)} ${pad('prefix ms', 10)} ${pad('GFLOP/s', 8)}`);
    for (const l of r.layers) {
      const g = l.macs > 0 && l.layer_ms > 0 ? f((2 * l.macs * r.batch) / (l.layer_ms * 1e6), 2) : '-';
      out.push(`${pad(l.name, 10, true)} ${pad(l.kind, 8, true)} ${pad(f(l.layer_ms, 3), 10)} ${pad(f(l.prefix_ms, 3), 10)} ${pad(g, 8)}`);
    }
  }
  return out.join('\n');
}

copyOrt();
if (a['copy-only']) {
  console.log(`copied ${ORT_FILES.join(', ')} to ${VENDOR}`);
  process.exit(0);
}
if (!existsSync(join(WWW, 'pkg/alexnet.js'))) {
  console.error('www/pkg is missing: run `./build.sh wasm` first');
  process.exit(2);
}

const backends = a.backends.split(',').filter(Boolean);
if (a.ref && !backends.includes('ref')) backends.unshift('ref');
const configs = [];
for (const model of a.model.split(',')) for (const batch of a.batch.split(',')) configs.push({ model, batch: Number(batch) });

const { srv, url } = await startServer();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const results = [];
let failed = false;
try {
  for (const c of configs) {
    const page = await browser.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
    const q = new URLSearchParams({
      model: c.model, batch: String(c.batch), runs: a.runs, seed: a.seed, backends: backends.join(','),
      perLayer: a['no-per-layer'] ? '0' : '1', gpuPerLayer: a['gpu-per-layer'] ? '1' : '0',
      ortThreads: a['ort-threads'], train: a.train ? '1' : '0', autorun: '1',
    });
    await page.goto(`${url}bench.html?${q}`);
    try {
      await page.waitForSelector('body[data-done="true"]', { timeout: Number(a['timeout-s']) * 1000 });
    } catch (e) {
      console.error(`timed out: ${await page.textContent('[data-testid="status"]')}\n${logs.join('\n')}`);
      throw e;
    }
    const err = await page.evaluate(() => window.benchError);
    if (err) {
      failed = true;
      console.error(`${c.model} batch ${c.batch}: ${err}\n${logs.join('\n')}`);
    } else {
      const res = await page.evaluate(() => window.benchResult);
      results.push(res);
      console.log(`${table(res)}\n`);
      if (res.rows.some((r) => r.error)) failed = true;
    }
    await page.close();
  }
} finally {
  await browser.close();
  srv.kill();
}
if (a.json) writeFileSync(a.json, JSON.stringify(results, null, 2));
process.exit(failed ? 1 : 0);
