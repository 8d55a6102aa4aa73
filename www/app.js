// Page logic: talks to the worker, never runs the network on the main thread.
import { setupWeights } from './models.js';
import { connect } from './rpc.js';

import { $, MAX_IMAGE_BYTES, clearError, el, fmt, mb, pictureCanvas, scaleFor, showError } from './ui.js';
import { setupFinetune } from './finetune.js';
import { setupTraining, trainBackendChosen } from './training.js';

const call = connect(new URL('./worker.js', import.meta.url), {
  onError: (msg) => { $('wasm-status').textContent = `failed to start the worker: ${msg}`; },
});

function describe(info, what) {
  return `${what} — ${info.family} variant, ${fmt(info.params)} parameters, ` +
    `${(info.macs / 1e9).toFixed(3)} G multiply-adds, ${info.classes} classes`;
}

// Which backend the worker runs, in words; a software adapter is called one.
function showBackend(b) {
  const e = $('backend');
  if (b.kind === 'gpu') {
    const a = b.adapter;
    e.textContent = `WebGPU on ${a.name || 'an unnamed adapter'} (${a.backend}` +
      `${a.software ? ', a software adapter: a CPU emulating a GPU' : ', hardware'})` +
      (b.recovered ? ` — recovered: ${b.recovered}` : '');
  } else {
    e.textContent = `fast CPU backend (wasm SIMD128, in a Web Worker): ${b.reason}`;
  }
  e.dataset.kind = b.kind;
  $('lose-device').hidden = b.kind !== 'gpu';
  // a software adapter trains far slower than the CPU backend: offer it, but not first
  if (!trainBackendChosen()) $('train-backend').value = b.kind === 'gpu' && !b.adapter.software ? 'gpu' : 'cpu';
}

// `?backend=cpu` forces the CPU backend (the fallback a browser without WebGPU gets).
const wantBackend = new URLSearchParams(location.search).get('backend') === 'cpu' ? 'cpu' : 'auto';

// ---- the model --------------------------------------------------------------------------

let info = null; // the loaded network's info (layers, views, towers, feature layer)
let modelGeneration = 0; // bumps on every model change: features of different nets never mix

async function modelChanged(newInfo, what) {
  info = newInfo;
  modelGeneration++;
  $('model-status').textContent = describe(info, what);
  $('feature-name').textContent = `${info.feature_layer}, ${fmt(info.feature_dim)}-d`;
  buildActivationPanels();
  renderNeighbours();
  await drawFilters();
  if (current) select(current);
}

// ---- filters ----------------------------------------------------------------------------

async function drawFilters() {
  const box = $('filters');
  try {
    const pics = await call('filters');
    const first = info.views[0];
    const towers = pics.length;
    box.replaceChildren(...pics.map((p, t) => el('figure', {},
      pictureCanvas(p, scaleFor(p, 260), 'filter-canvas'),
      el('figcaption', { textContent: towers > 1 ? `tower ${t + 1} (GPU ${t + 1}): kernels ${p.first}–${p.first + p.count - 1}` : `${p.count} kernels` }))));
    const conv = info.layers.find((l) => l.kind === 'conv');
    $('filters-caption').textContent = `${conv ? conv.name : first.name}: ${pics.reduce((n, p) => n + p.count, 0)} kernels of ` +
      `${pics[0].tileW}x${pics[0].tileH}, ${info.input[0] === 3 ? 'RGB' : 'first input channel'}`;
  } catch (e) {
    box.replaceChildren(el('p', { className: 'error', textContent: `could not draw the filters: ${e.message}` }));
  }
}

// ---- activations ------------------------------------------------------------------------

// One <details> per drawable layer; only open ones are read back from the worker.
const panels = new Map(); // layer index -> { details, body, drawn: run id drawn }
let runId = 0; // bumps on every analysed image

function buildActivationPanels() {
  panels.clear();
  const box = $('activations');
  box.replaceChildren(...info.views.map((v) => {
    const shape = v.shape.join('×');
    const towers = v.towers > 1 ? `, ${v.towers} towers` : '';
    // ReLU repeats its conv without the negatives and softmax its fc8: closed at first
    const open = !['relu', 'softmax'].includes(v.kind);
    const body = el('div', { className: 'towers' });
    const details = el('details', { open },
      el('summary', { textContent: `${v.name} · ${v.kind} · ${shape}${towers}` }), body);
    details.dataset.layer = v.name;
    panels.set(v.index, { details, body, drawn: -1, view: v });
    details.addEventListener('toggle', () => { if (details.open) drawLayer(v.index); });
    return details;
  }));
}

async function drawLayer(index) {
  const panel = panels.get(index);
  if (!panel || !panel.details.open || panel.drawn === runId || runId === 0) return;
  const want = runId;
  panel.drawn = want;
  try {
    const pics = await call('layer', { index });
    if (want !== runId) return; // a newer image arrived meanwhile; it draws itself
    const v = panel.view;
    panel.body.replaceChildren(...pics.map((p, t) => {
      const strip = p.count === 1 && v.shape.length === 1;
      const c = pictureCanvas(p, strip ? 1 : scaleFor(p, 300), 'activation-canvas');
      if (strip) {
        c.classList.add('strip');
        c.style.width = ''; // the stylesheet stretches strips over the page's width
      }
      else c.addEventListener('click', (ev) => enlarge(ev, c, v, t));
      const caption = strip
        ? `${fmt(v.shape[0])} values${v.shape[0] > p.width ? `, each bar the largest of ${Math.ceil(v.shape[0] / p.width)}` : ''}`
        : `${pics.length > 1 ? `tower ${t + 1} (GPU ${t + 1}): ` : ''}maps ${p.first}–${p.first + p.count - 1}`;
      return el('figure', {}, c, el('figcaption', { textContent: caption }));
    }));
  } catch (e) {
    panel.drawn = -1;
    panel.body.replaceChildren(el('p', { className: 'error', textContent: e.message }));
  }
}

async function drawOpenLayers() {
  for (const index of panels.keys()) await drawLayer(index);
}

// The clicked map, blown up with crisp pixels.
function enlarge(ev, canvas, view, tower) {
  const p = canvas.picture;
  const k = p.width / canvas.getBoundingClientRect().width;
  const x = ev.offsetX * k;
  const y = ev.offsetY * k;
  const col = Math.floor(x / (p.tileW + p.gap));
  const row = Math.floor(y / (p.tileH + p.gap));
  const i = row * p.cols + col;
  if (col >= p.cols || i >= p.count) return;
  const big = $('enlarged');
  const g = big.getContext('2d');
  g.imageSmoothingEnabled = false;
  g.clearRect(0, 0, big.width, big.height);
  g.drawImage(canvas, col * (p.tileW + p.gap), row * (p.tileH + p.gap), p.tileW, p.tileH, 0, 0, big.width, big.height);
  $('enlarged-caption').textContent = `${view.name}, map ${p.first + i}` +
    `${view.towers > 1 ? ` (tower ${tower + 1})` : ''}, ${p.tileW}×${p.tileH}`;
  $('enlarged-wrap').hidden = false;
}

// ---- the image queue --------------------------------------------------------------------

// Every image of this visit: {id, file, name, url, status: queued|running|done|error,
// preds, feature, generation, ms, backend, error, li}.
const items = [];
let current = null;
// Analyses run one at a time, in order: new images, and re-runs of a shown one (after a click,
// the 10-crop toggle or a model change) so its activations are the ones on the page.
const jobs = [];
let pumping = false;

function schedule(job) {
  jobs.push(job);
  pump();
}

async function pump() {
  if (pumping) return;
  pumping = true;
  try {
    while (jobs.length) {
      const job = jobs.shift();
      await analyze(job.item, job);
    }
  } finally {
    pumping = false;
  }
}

function enqueue(files) {
  clearError();
  for (const file of files) {
    const item = { id: items.length + 1, file, name: file.name || `pasted image ${items.length + 1}`, status: 'queued' };
    item.li = el('li', { className: 'queued' });
    item.li.addEventListener('click', () => select(item));
    $('queue').append(item.li);
    items.push(item);
    renderItem(item);
    schedule({ item });
  }
}

function renderItem(item) {
  const status = {
    queued: 'queued',
    running: 'running…',
    done: item.preds ? `${item.preds[0].label} (${(item.preds[0].probability * 100).toFixed(1)}%)` : 'done',
    error: item.error,
  }[item.status];
  const parts = [];
  if (item.url) parts.push(el('img', { src: item.url, alt: '' }));
  parts.push(el('span', { className: 'name', textContent: item.name }));
  const st = el('span', { className: 'st', textContent: status });
  if (item.status === 'error') st.dataset.testid = 'item-error';
  parts.push(st);
  item.li.replaceChildren(...parts);
  item.li.className = item.status + (item === current ? ' current' : '');
  item.li.dataset.status = item.status;
}

function fail(item, msg) {
  item.status = 'error';
  item.error = msg;
  renderItem(item);
  showError(`${item.name}: ${msg}`);
}

// Runs one image: top-5, the fc7 feature for neighbours, and every open layer's maps.
async function analyze(item, { rerun = false } = {}) {
  if (!rerun) {
    item.status = 'running';
    renderItem(item);
    if (item.file.size > MAX_IMAGE_BYTES) {
      fail(item, `too large: ${mb(item.file.size)} MB (the limit is ${mb(MAX_IMAGE_BYTES)} MB)`);
      return;
    }
  }
  const tta = $('tta-toggle').checked;
  let r;
  try {
    const bytes = await item.file.arrayBuffer();
    r = await call('analyze', { bytes, top: 5, tta }, [bytes]);
  } catch (e) {
    fail(item, e.message);
    return;
  }
  runId++;
  showBackend(r.backend);
  if (r.gpuError) showError(`WebGPU failed on ${item.name}; it ran on the CPU instead: ${r.gpuError}`);
  if (!item.url) item.url = URL.createObjectURL(item.file);
  // a re-run after a model change gives the feature in the new net's space
  item.feature = r.feature;
  item.generation = modelGeneration;
  Object.assign(item, { status: 'done', preds: r.preds, ms: r.ms, ran: r.backend.kind, tta, crops: r.crops });
  if (current && current !== item) renderItem(current);
  current = item;
  renderItem(item);
  showResult(item);
  renderNeighbours();
  await drawCrops(item, tta);
  await drawOpenLayers();
}

// Shows a finished item at once, and analyses it again so the activations are its own.
function select(item) {
  if (item.status !== 'done') return;
  const prev = current;
  current = item;
  if (prev && prev !== item) renderItem(prev);
  renderItem(item);
  showResult(item);
  renderNeighbours();
  schedule({ item, rerun: true });
}

function showResult(item) {
  $('result').hidden = false;
  $('preview').src = item.url;
  $('current-name').textContent = item.name;
  $('top5').replaceChildren(...item.preds.map((p) => {
    const bar = el('div', { className: 'bar' });
    bar.style.width = `${Math.max(1, p.probability * 100)}%`;
    return el('li', {}, el('span', { textContent: `${p.label} — ${(p.probability * 100).toFixed(2)}%` }), bar);
  }));
  $('time').textContent = `${item.ms.toFixed(0)} ms in the worker on the ${item.ran === 'gpu' ? 'GPU (WebGPU)' : 'CPU'}` +
    `${item.tta ? `, ${item.crops} crops averaged` : ', centre crop'}`;
}

async function drawCrops(item, tta) {
  const wrap = document.querySelector('.crops-wrap');
  try {
    const bytes = await item.file.arrayBuffer();
    const pics = await call('crops', { bytes, tta }, [bytes]);
    const names = ['top-left', 'top-right', 'bottom-left', 'bottom-right', 'centre'];
    $('crops').replaceChildren(...pics.map((p, i) => el('figure', {},
      pictureCanvas(p, Math.max(1, Math.floor(96 / p.width)), 'crop-canvas'),
      el('figcaption', { textContent: pics.length > 1 ? `${names[i % 5]}${i >= 5 ? ', mirrored' : ''}` : 'centre crop' }))));
    $('crops-title').textContent = pics.length > 1
      ? 'The ten crops averaged (10-crop on)' : 'What the network sees (the centre crop)';
    wrap.hidden = false;
  } catch (e) {
    $('crops').replaceChildren(el('p', { className: 'error', textContent: `crops: ${e.message}` }));
  }
}

// ---- nearest images ---------------------------------------------------------------------

function distance(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return Math.sqrt(s);
}

function renderNeighbours() {
  const box = $('neighbours');
  const others = current && current.generation === modelGeneration
    ? items.filter((i) => i !== current && i.feature && i.generation === modelGeneration)
    : [];
  if (others.length === 0) {
    box.replaceChildren(el('li', { className: 'empty', textContent: current
      ? 'Classify more images: the nearest ones by fc7 distance show here.'
      : 'No image yet.' }));
    return;
  }
  const ranked = others.map((i) => ({ item: i, d: distance(current.feature, i.feature) }))
    .sort((a, b) => a.d - b.d).slice(0, 6);
  box.replaceChildren(...ranked.map(({ item, d }) => {
    const li = el('li', { title: `click to show ${item.name}` },
      el('img', { src: item.url, alt: item.name }),
      el('span', { className: 'name', textContent: item.name }),
      el('span', { className: 'dist', textContent: `distance ${d.toFixed(2)}` }));
    li.dataset.testid = 'neighbour';
    li.addEventListener('click', () => select(item));
    return li;
  }));
}

// ---- start ------------------------------------------------------------------------------

async function main() {
  try {
    const r = await call('init', { seed: 1, backend: wantBackend });
    showBackend(r.backend);
    $('wasm-status').textContent = 'loaded';
    const e = r.embedded;
    await modelChanged(r.info, e
      ? `the embedded mini-AlexNet trained on Fashion-MNIST by our trainer (${e.epochs} epochs` +
        `${e.finished ? '' : ', a snapshot of a run still under way'}; ` +
        `${(e.test_top1_accuracy * 100).toFixed(2)}% top-1 on the ${fmt(e.test_images)} test images` +
        `${e.test_top1_accuracy_10view ? `, ${(e.test_top1_accuracy_10view * 100).toFixed(2)}% with ` +
          'the paper\'s ten test views averaged' : ''})`
      : 'mini-AlexNet with random, UNTRAINED weights (' + (r.embeddedError
        ? `the embedded model failed to load: ${r.embeddedError}`
        : 'this checkout has no www/models/mini-fashion.*') + ': its predictions mean nothing)');
  } catch (e) {
    $('wasm-status').textContent = `failed: ${e.message}`;
    return;
  }
  const tbody = document.querySelector('[data-testid="configs"] tbody');
  for (const name of ['paper', 'bvlc', 'torchvision', 'mini']) {
    const i = await call('builtin', { name });
    const tr = el('tr');
    for (const v of [name, i.input.join('x'), fmt(i.params), fmt(i.macs), i.layers.length]) {
      tr.append(el('td', { textContent: v }));
    }
    tbody.append(tr);
  }

  const drop = $('drop-zone');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    enqueue([...e.dataTransfer.files]);
  });
  $('file-input').addEventListener('change', (e) => {
    enqueue([...e.target.files]);
    e.target.value = '';
  });
  document.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) {
      e.preventDefault();
      enqueue(files);
    }
  });
  $('tta-toggle').addEventListener('change', () => { if (current) select(current); });
  $('lose-device').addEventListener('click', async () => {
    try {
      await call('loseDevice');
      $('backend').textContent += ' — device destroyed: the next image re-creates it';
    } catch (e) {
      showError(e.message);
    }
  });

  for (const format of ['safetensors', 'onnx']) {
    $(`export-${format}`).addEventListener('click', async () => {
      try {
        const bytes = await call('exportModel', { format });
        const a = el('a', { href: URL.createObjectURL(new Blob([bytes])), download: `alexnet-${info.family}.${format}` });
        a.click();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      } catch (e) {
        showError(`export: ${e.message}`);
      }
    });
  }
  setupTraining({ call, modelChanged });
  setupFinetune({ call, modelChanged, showBackend });
  const weights = setupWeights($('weights'), {
    call,
    onLoaded: (newInfo, backend, name) => {
      showBackend(backend);
      return modelChanged(newInfo, name);
    },
  });
  await weights.restore();
  document.body.dataset.ready = 'true';
}

main();
