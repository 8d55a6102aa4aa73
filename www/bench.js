// Benchmark page: collects the settings, runs them in bench-worker.js and renders the tables.
// URL parameters (?model=mini&batch=1&runs=5&backends=cpu,gpu,ort-wasm,ort-webgpu&perLayer=1
// &gpuPerLayer=0&train=0&ortThreads=1&seed=1&autorun=1) pre-fill the form; autorun starts at once.
// tools/bench-browser.mjs drives it that way and reads window.benchResult.
import { connect } from './rpc.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const form = $('form');

const call = connect(new URL('./bench-worker.js', import.meta.url), {
  onProgress: (progress) => { $('status').textContent = `running: ${progress}`; },
  onError: (msg) => fail(`the worker failed: ${msg}`),
});

function fail(msg) {
  const e = $('error');
  e.textContent = msg;
  e.hidden = false;
  $('status').textContent = 'failed';
  window.benchError = msg;
  document.body.dataset.done = 'true';
}

const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));

function cell(tr, text) {
  const td = document.createElement('td');
  td.textContent = text;
  tr.append(td);
}

function render(res) {
  const body = $('totals').querySelector('tbody');
  body.replaceChildren();
  const byId = Object.fromEntries(res.rows.map((r) => [r.id, r]));
  const ratio = (ref, r) => (ref && !ref.error && !r.error ? `${f(ref.total_ms / r.total_ms, 2)}x` : '-');
  for (const r of res.rows) {
    const tr = document.createElement('tr');
    cell(tr, r.backend);
    if (r.error) {
      cell(tr, `error: ${r.error}`);
      tr.lastChild.colSpan = 8;
    } else {
      cell(tr, f(r.total_ms, 2));
      cell(tr, f(r.total_ms / r.batch, 3));
      cell(tr, f((1000 * r.batch) / r.total_ms, 1));
      cell(tr, ratio(byId['ort-wasm'], r));
      cell(tr, ratio(byId['ort-webgpu'], r));
      cell(tr, f(r.setup_ms, 0));
      cell(tr, f(r.warmup_ms, 0));
      cell(tr, r.max_abs_diff === null ? '-' : r.max_abs_diff.toExponential(1));
    }
    body.append(tr);
  }
  const layers = $('layers');
  layers.replaceChildren();
  const withLayers = res.rows.filter((r) => r.layers && r.layers.length);
  if (!withLayers.length) layers.textContent = 'none measured (totals only)';
  for (const r of withLayers) {
    const h = document.createElement('h3');
    h.textContent = r.backend;
    const how = {
      gpu_timestamps: 'GPU timestamps per kernel launch',
      prefix_differences: 'wall time, prefix differences',
      wall_per_layer: 'wall time around each layer inside the step',
    }[r.method] || r.method;
    h.textContent = `${r.backend} (${how})`;
    const train = r.layers.some((l) => l.backward_ms !== null && l.backward_ms !== undefined);
    const t = document.createElement('table');
    t.innerHTML = train
      ? '<thead><tr><th>layer</th><th>op</th><th>fwd ms</th><th>bwd ms</th><th>update ms</th></tr></thead>'
      : '<thead><tr><th>layer</th><th>op</th><th>ms</th><th>prefix ms</th><th>GFLOP/s</th></tr></thead>';
    const tb = document.createElement('tbody');
    for (const l of r.layers) {
      const tr = document.createElement('tr');
      cell(tr, l.name);
      cell(tr, l.kind);
      cell(tr, f(l.layer_ms, 3));
      if (train) {
        cell(tr, f(l.backward_ms, 3));
        cell(tr, f(l.update_ms, 3));
      } else {
        cell(tr, f(l.prefix_ms, 3));
        cell(tr, l.macs > 0 && l.layer_ms > 0 ? f((2 * l.macs * r.batch) / (l.layer_ms * 1e6), 2) : '-');
      }
      tb.append(tr);
    }
    t.append(tb);
    layers.append(h, t);
  }
}

function settings() {
  const d = new FormData(form);
  return {
    model: d.get('model'),
    seed: Number(d.get('seed')),
    batch: Number(d.get('batch')),
    runs: Math.max(1, Number(d.get('runs'))),
    backends: d.getAll('backend'),
    perLayer: d.get('perLayer') === 'on',
    gpuPerLayer: d.get('gpuPerLayer') === 'on',
    train: d.get('train') === 'on',
    ortThreads: Math.max(1, Number(d.get('ortThreads'))),
  };
}

async function run() {
  const s = settings();
  $('error').hidden = true;
  document.body.dataset.done = 'false';
  $('run').disabled = true;
  const t0 = performance.now();
  try {
    const res = await call('bench', s);
    res.wall_s = (performance.now() - t0) / 1000;
    $('adapter').textContent = res.env.adapter.text;
    render(res);
    window.benchResult = res;
    $('status').textContent = `done in ${res.wall_s.toFixed(1)} s: ${res.model}, batch ${res.batch}, ` +
      `${res.train ? 'training step, ' : ''}` +
      `median of ${res.runs} run(s)${res.env.crossOriginIsolated ? '' : ' (not cross-origin isolated: ORT wasm has 1 thread)'}`;
    document.body.dataset.done = 'true';
  } catch (e) {
    fail(e.message);
  } finally {
    $('run').disabled = false;
  }
}

function prefill() {
  const q = new URLSearchParams(location.search);
  for (const k of ['model', 'seed', 'runs', 'ortThreads']) if (q.has(k)) form.elements[k].value = q.get(k);
  if (q.has('batch')) {
    const sel = form.elements.batch;
    const b = q.get('batch');
    if (![...sel.options].some((o) => o.value === b)) sel.append(new Option(b));
    sel.value = b;
  }
  if (q.has('backends')) {
    const want = new Set(q.get('backends').split(','));
    for (const c of form.querySelectorAll('input[name="backend"]')) c.checked = want.has(c.value);
  }
  for (const k of ['perLayer', 'gpuPerLayer', 'train']) if (q.has(k)) form.elements[k].checked = q.get(k) === '1';
  return q.get('autorun') === '1';
}

form.addEventListener('submit', (ev) => { ev.preventDefault(); run(); });
const auto = prefill();
$('status').textContent = 'ready';
document.body.dataset.ready = 'true';
if (auto) run();
