// Page logic: talks to the worker, never runs the network on the main thread.
import { setupWeights } from './models.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};

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
const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);
// Larger files are refused before reading: no photo is this big, and decoding one would
// take the worker's memory (the core also refuses images over its pixel limit).
const MAX_IMAGE_BYTES = 64 * 2 ** 20;

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
  if (!trainBackendChosen) $('train-backend').value = b.kind === 'gpu' && !b.adapter.software ? 'gpu' : 'cpu';
}
let trainBackendChosen = false;

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

// ---- pictures ---------------------------------------------------------------------------

// A picture from the core ({width, height, rgba, cols, tileW, tileH, gap, first, count}) on
// a canvas, shown `scale` times larger with crisp pixels.
function pictureCanvas(p, scale, testid) {
  const c = el('canvas', { width: p.width, height: p.height });
  c.getContext('2d').putImageData(new ImageData(p.rgba, p.width, p.height), 0, 0);
  c.style.width = `${p.width * scale}px`;
  if (testid) c.dataset.testid = testid;
  c.picture = p;
  return c;
}

// Small maps are blown up so a 6x6 pool5 map is still visible; big grids stay 1:1.
const scaleFor = (p, target) => Math.max(1, Math.min(8, Math.floor(target / p.width)));

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

// ---- training in the page ---------------------------------------------------------------

const train = {
  state: 'none', // none | running | pausing (a request still in flight) | paused
  looping: false, // a trainLoop is running (at most one at a time)
  on: null, // where it runs, in words
  losses: [], // [step, mean loss of a call]
  val: [], // [step, validation top-1 accuracy]
  lastReport: null,
  rate: 0,
};
const num = (id) => parseFloat($(id).value);

function trainOptions() {
  return {
    batch: Math.round(num('train-batch')),
    lr: num('train-lr'),
    momentum: num('train-momentum'),
    weightDecay: num('train-wd'),
    dropout: num('train-dropout'),
    crops: $('train-crops').checked,
    flips: $('train-flips').checked,
    pcaStd: num('train-pca'),
  };
}

function showTrainStatus(extra = '') {
  const r = train.lastReport;
  const st = $('train-status');
  const val = train.val.length ? `, validation accuracy ${(train.val[train.val.length - 1][1] * 100).toFixed(1)}%` : '';
  st.textContent = r
    ? `${train.state} on ${train.on} — step ${r.step}, epoch ${r.epoch + 1} (batch ${r.batchInEpoch}/${r.batches}), ` +
      `loss ${r.loss.toFixed(4)}${val}, ${train.rate.toFixed(0)} images/s, learning rate ${Number(r.lr.toPrecision(3))}${extra}`
    : `${train.state === 'none' ? 'not started' : train.state}${extra}`;
  st.dataset.state = train.state;
  st.dataset.steps = r ? r.step : 0;
  if (train.losses.length) {
    st.dataset.firstLoss = train.losses[0][1];
    st.dataset.lastLoss = train.losses[train.losses.length - 1][1];
  }
  st.dataset.valAccuracy = train.val.length ? train.val[train.val.length - 1][1] : '';
  $('train-start').disabled = train.state === 'running';
  $('train-pause').disabled = train.state !== 'running';
}

// Loss (left axis, blue) and validation accuracy (right axis, 0-100%, green) against steps.
function drawCurve() {
  const c = $('train-curve');
  const g = c.getContext('2d');
  const [w, h, pad] = [c.width, c.height, 30];
  g.fillStyle = '#fff';
  g.fillRect(0, 0, w, h);
  g.strokeStyle = '#ccc';
  g.strokeRect(pad, 8, w - 2 * pad, h - pad - 8);
  if (!train.losses.length) return;
  const maxStep = Math.max(...train.losses.map((p) => p[0]), 1);
  const maxLoss = Math.max(...train.losses.map((p) => p[1]), 1e-6);
  const x = (s) => pad + (s / maxStep) * (w - 2 * pad);
  const y = (v) => 8 + (1 - v) * (h - pad - 8);
  const line = (pts, colour, scale) => {
    g.strokeStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach(([s, v], i) => (i ? g.lineTo(x(s), y(v / scale)) : g.moveTo(x(s), y(v / scale))));
    g.stroke();
  };
  line(train.losses, '#1a66aa', maxLoss);
  if (train.val.length) line([[0, 0.1], ...train.val], '#1a6', 1);
  g.fillStyle = '#333';
  g.font = '11px sans-serif';
  g.fillText(`loss (max ${maxLoss.toFixed(2)})`, pad + 4, 20);
  g.fillText('validation accuracy, 0-100%', w - pad - 150, 20);
  g.fillText(`step ${maxStep}`, w - pad - 50, h - 10);
}

async function refreshExamples() {
  const r = await call('trainExamples', { n: 16 });
  $('train-examples').replaceChildren(...r.examples.map((e, i) => el('figure', {},
    pictureCanvas(r.pictures[i], 2, 'example-canvas'),
    el('figcaption', { className: e.correct ? 'right' : 'wrong',
      textContent: `${e.predicted} ${(e.probability * 100).toFixed(0)}%`, title: `truly: ${e.label}` }))));
  const s = await call('trainSamples', { n: 16 });
  $('train-samples').replaceChildren(...s.map((p) => pictureCanvas(p, 2, 'sample-canvas')));
}

async function viewTrained(r) {
  const v = await call('trainView');
  await modelChanged(v.info, `mini-AlexNet being trained in this page (epoch ${r.epoch}, step ${r.step})`);
}

async function trainLoop() {
  train.looping = true;
  try {
    await trainLoopSteps();
  } finally {
    train.looping = false;
  }
  // paused only once the last request's steps are in: the step count stays put from here
  if (train.state === 'pausing') {
    train.state = 'paused';
    showTrainStatus();
  }
}

async function trainLoopSteps() {
  while (train.state === 'running') {
    const t0 = performance.now();
    let r;
    try {
      r = await call('trainSteps', { n: 4 });
    } catch (e) {
      train.state = 'paused';
      showTrainStatus(` — stopped: ${e.message}`);
      return;
    }
    train.rate = r.images / ((performance.now() - t0) / 1000);
    train.lastReport = r;
    train.losses.push([r.step, r.loss]);
    for (const ep of r.epochs) train.val.push([r.step, 1 - ep.val_top1_err]);
    showTrainStatus();
    drawCurve();
    if (r.epochs.length) {
      await refreshExamples();
      if ($('train-live').checked) await viewTrained(r);
    }
  }
}

async function trainStart() {
  if (train.state === 'none') {
    train.losses = [];
    train.val = [];
    train.lastReport = null;
    showTrainStatus(' — setting up…');
    try {
      const on = await call('trainInit', { options: trainOptions(), gpu: $('train-backend').value === 'gpu' });
      train.on = on.name;
      await refreshExamples();
    } catch (e) {
      showTrainStatus(` — could not start: ${e.message}`);
      return;
    }
  }
  train.state = 'running';
  showTrainStatus();
  // a loop still finishing its last request before a pause simply goes on
  if (!train.looping) trainLoop();
}

function setupTraining() {
  $('train-backend').addEventListener('change', () => { trainBackendChosen = true; });
  $('train-start').addEventListener('click', trainStart);
  $('train-pause').addEventListener('click', () => {
    if (train.state !== 'running') return;
    train.state = train.looping ? 'pausing' : 'paused';
    showTrainStatus();
  });
  $('train-reset').addEventListener('click', () => {
    train.state = 'none';
    train.losses = [];
    train.val = [];
    train.lastReport = null;
    drawCurve();
    showTrainStatus(' (reset: start begins a new run with the settings above)');
  });
  for (const id of ['train-lr', 'train-momentum', 'train-wd']) {
    $(id).addEventListener('change', () => call('trainSetSgd', trainOptions()).catch((e) => showTrainStatus(` — ${e.message}`)));
  }
  for (const id of ['train-crops', 'train-flips', 'train-pca']) {
    $(id).addEventListener('change', () => call('trainSetAugment', trainOptions()));
  }
  drawCurve();
  showTrainStatus();
}

// ---- fine-tuning on the person's classes ------------------------------------------------

const ft = { classes: [], running: false };
let camera = null;

function addClass(name) {
  const c = { files: [] };
  const nameInput = el('input', { type: 'text', value: name, placeholder: 'class name' });
  nameInput.dataset.testid = 'ft-class-name';
  const thumbs = el('div', { className: 'thumbs' });
  const count = el('span', { className: 'hint', textContent: '0 photos' });
  const add = (files) => {
    for (const f of files) {
      if (f.size > MAX_IMAGE_BYTES) {
        showError(`${f.name}: too large for a training photo (${mb(f.size)} MB)`);
        continue;
      }
      c.files.push(f);
      thumbs.append(el('img', { src: URL.createObjectURL(f), alt: f.name, title: f.name }));
    }
    count.textContent = `${c.files.length} photo${c.files.length === 1 ? '' : 's'}`;
  };
  const drop = el('div', { className: 'drop', textContent: 'drop photos here' });
  drop.dataset.testid = 'ft-class-drop';
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    add([...e.dataTransfer.files]);
  });
  const input = el('input', { type: 'file', accept: 'image/*', multiple: true });
  input.dataset.testid = 'ft-class-input';
  input.addEventListener('change', () => { add([...input.files]); input.value = ''; });
  const capture = el('button', { type: 'button', textContent: 'capture from the webcam' });
  capture.dataset.testid = 'ft-class-capture';
  capture.hidden = !navigator.mediaDevices?.getUserMedia;
  capture.addEventListener('click', async () => {
    try {
      const f = await captureFrame(`${nameInput.value || 'class'}-${c.files.length + 1}.png`);
      add([f]);
    } catch (e) {
      showError(`webcam: ${e.message}`);
    }
  });
  const remove = el('button', { type: 'button', textContent: 'remove' });
  remove.addEventListener('click', () => {
    ft.classes = ft.classes.filter((x) => x !== c);
    box.remove();
  });
  const box = el('div', { className: 'ft-class' }, nameInput, ' ', remove, drop, input, capture, count, thumbs);
  box.dataset.testid = 'ft-class';
  c.name = () => nameInput.value.trim();
  ft.classes.push(c);
  $('ft-classes').append(box);
}

// One frame of the webcam (asked for on first use) as a PNG file.
async function captureFrame(name) {
  const video = $('ft-video');
  if (!camera) {
    camera = await navigator.mediaDevices.getUserMedia({ video: true });
    video.srcObject = camera;
    video.hidden = false;
    await new Promise((r) => { video.onloadedmetadata = r; });
  }
  const c = el('canvas', { width: video.videoWidth, height: video.videoHeight });
  c.getContext('2d').drawImage(video, 0, 0);
  const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
  return new File([blob], name, { type: 'image/png' });
}

async function finetune() {
  if (ft.running) return;
  const status = $('ft-status');
  const classes = ft.classes.map((c) => c.name());
  const bad = ft.classes.find((c) => !c.name() || c.files.length === 0);
  if (ft.classes.length < 2 || bad) {
    status.textContent = 'give at least two classes, each with a name and a photo';
    return;
  }
  if (new Set(classes).size !== classes.length) {
    status.textContent = 'class names must differ';
    return;
  }
  ft.running = true;
  $('ft-start').disabled = true;
  const progress = $('ft-progress');
  try {
    const photos = [];
    const labels = [];
    for (const [i, c] of ft.classes.entries()) {
      for (const f of c.files) {
        photos.push(await f.arrayBuffer());
        labels.push(i);
      }
    }
    status.textContent = 'decoding photos and planning…';
    const options = { lr: num('ft-lr'), epochs: Math.round(num('ft-epochs')), batch: Math.round(num('ft-batch')),
      budgetMb: 1024 };
    const gpu = $('backend').dataset.kind === 'gpu';
    const { plan, on } = await call('finetuneInit', { classes, photos, labels, depth: $('ft-depth').value, options, gpu }, photos);
    const m = plan.memory;
    const planText = `${plan.trainImages} photos to learn from, ${plan.heldOut} held out; batch ${plan.batch}; ` +
      `${plan.frozen.length ? `frozen: ${plan.frozen.join(', ')}` : 'every layer trained'}; training needs ` +
      `${(m.parameters / 1e6).toFixed(0)} MB for weights, gradients and momentum + ${(m.per_image / 1e6).toFixed(1)} MB ` +
      `an image = ${(m.total / 1e6).toFixed(0)} MB, within the ${plan.budgetMb} MB budget; on ${on}`;
    progress.hidden = false;
    progress.max = plan.epochs;
    let r;
    let acc = null;
    do {
      r = await call('finetuneSteps', { n: 4 });
      progress.value = r.epoch + r.batchInEpoch / r.batches;
      for (const [, , a] of r.finishedEpochs) if (a != null) acc = a;
      status.textContent = `epoch ${Math.min(r.epoch + 1, r.epochs)}/${r.epochs}, loss ${r.loss.toFixed(4)}` +
        `${acc !== null ? `, held-out accuracy ${(acc * 100).toFixed(0)}%` : ''} — ${planText}`;
    } while (!r.done);
    const v = await call('finetuneApply');
    await modelChanged(v.info, `fine-tuned on your ${classes.length} classes (${classes.join(', ')}; ` +
      `${$('ft-depth').selectedOptions[0].textContent})`);
    status.textContent = `done: ${r.epochs} epochs, final loss ${r.loss.toFixed(4)}` +
      `${acc !== null ? `, held-out accuracy ${(acc * 100).toFixed(0)}%` : ' (no held-out photos: give a class 3 or more)'}` +
      ` — the page now classifies with your classes. ${planText}`;
    status.dataset.done = 'true';
  } catch (e) {
    status.textContent = `fine-tuning failed: ${e.message}`;
  } finally {
    ft.running = false;
    $('ft-start').disabled = false;
  }
}

function setupFinetune() {
  addClass('class A');
  addClass('class B');
  $('ft-add-class').addEventListener('click', () => addClass(`class ${String.fromCharCode(65 + ft.classes.length)}`));
  $('ft-start').addEventListener('click', finetune);
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
  setupTraining();
  setupFinetune();
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
