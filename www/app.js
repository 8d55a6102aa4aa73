// Page logic: talks to the worker, never runs the network on the main thread.
import { setupWeights } from './models.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let nextId = 1;
const pending = new Map();
worker.onmessage = (ev) => {
  const { id, ok, error } = ev.data;
  const p = pending.get(id);
  pending.delete(id);
  if (error !== undefined) p.reject(new Error(error)); else p.resolve(ok);
};
worker.onerror = (ev) => {
  $('wasm-status').textContent = `failed to start the worker: ${ev.message || 'unknown error'}`;
};
function call(type, args = {}, transfer = []) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, type, ...args }, transfer);
  });
}

const fmt = (n) => n.toLocaleString('en-US');

function showError(msg) {
  const e = $('error');
  e.textContent = msg;
  e.hidden = false;
}
function clearError() { $('error').hidden = true; }

function describe(info, what) {
  return `${what} — ${info.family} variant, ${fmt(info.params)} parameters, ` +
    `${(info.macs / 1e9).toFixed(3)} G multiply-adds, ${info.classes} classes`;
}

// Which backend the worker runs, in words; a software adapter is called one.
function showBackend(b) {
  const el = $('backend');
  if (b.kind === 'gpu') {
    const a = b.adapter;
    el.textContent = `WebGPU on ${a.name || 'an unnamed adapter'} (${a.backend}` +
      `${a.software ? ', a software adapter: a CPU emulating a GPU' : ', hardware'})`;
  } else {
    el.textContent = `fast CPU backend (wasm SIMD128, in a Web Worker): ${b.reason}`;
  }
  el.dataset.kind = b.kind;
}

// `?backend=cpu` forces the CPU backend (the fallback a browser without WebGPU gets).
const wantBackend = new URLSearchParams(location.search).get('backend') === 'cpu' ? 'cpu' : 'auto';

async function classify(file) {
  clearError();
  const bytes = await file.arrayBuffer();
  const img = $('preview');
  try {
    const { preds, ms, backend } = await call('classify', { bytes, top: 5, tta: $('tta-toggle').checked }, [bytes]);
    showBackend(backend);
    img.src = URL.createObjectURL(file);
    img.hidden = false;
    const ol = $('top5');
    ol.replaceChildren(...preds.map((p) => {
      const li = document.createElement('li');
      li.textContent = `${p.label} — ${(p.probability * 100).toFixed(2)}%`;
      const bar = document.createElement('div');
      bar.className = 'bar';
      bar.style.width = `${Math.max(1, p.probability * 100)}%`;
      li.append(bar);
      return li;
    }));
    $('time').textContent = `${ms.toFixed(0)} ms in the worker (${backend.kind === 'gpu' ? 'WebGPU' : 'CPU'})`;
  } catch (e) {
    showError(`${file.name}: ${e.message}`);
  }
}

async function main() {
  try {
    const { info, backend } = await call('init', { config: 'mini', seed: 1, backend: wantBackend });
    showBackend(backend);
    $('wasm-status').textContent = 'loaded';
    $('model-status').textContent = describe(info, 'mini-AlexNet with random, UNTRAINED weights ' +
      '(a placeholder: its predictions mean nothing until the trained model lands)');
  } catch (e) {
    $('wasm-status').textContent = `failed: ${e.message}`;
    return;
  }
  const tbody = document.querySelector('[data-testid="configs"] tbody');
  for (const name of ['paper', 'bvlc', 'torchvision', 'mini']) {
    const i = await call('builtin', { name });
    const tr = document.createElement('tr');
    for (const v of [name, i.input.join('x'), fmt(i.params), fmt(i.macs), i.layers.length]) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    tbody.append(tr);
  }

  const drop = $('drop-zone');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    for (const f of e.dataTransfer.files) await classify(f);
  });
  $('file-input').addEventListener('change', async (e) => {
    for (const f of e.target.files) await classify(f);
  });
  const weights = setupWeights($('weights'), {
    call,
    onLoaded: (info, backend, name) => {
      $('model-status').textContent = describe(info, name);
      showBackend(backend);
    },
  });
  await weights.restore();
  document.body.dataset.ready = 'true';
}

main();
