// The image queue: every image dropped, pasted or picked on this visit, analysed one at a
// time in order by the worker, each with its status in the list; a click shows a finished
// one again. The shown image's top-5, the crops the network saw, and its neighbours.
import { $, MAX_IMAGE_BYTES, clearError, el, mb, onDrop, pictureCanvas, showError } from './ui.js';
import { renderNeighbours } from './neighbours.js';

// `page.generation` bumps on every model change (features of different nets never mix);
// `activations` draws the layers of each analysed image; `showBackend` reports what ran it.
export function setupQueue({ call, page, activations, showBackend }) {
  // Every image of this visit: {id, file, name, url, status: queued|running|done|error,
  // preds, feature, generation, ms, ran, error, li}.
  const items = [];
  let current = null;
  // Analyses run one at a time, in order: new images, and re-runs of a shown one (after a
  // click, the 10-crop toggle or a model change) so its activations are the ones on the page.
  const jobs = [];
  let pumping = false;
  // Images are taken from the first moment; they wait here until the model is loaded.
  let ready = false;

  function schedule(job) {
    jobs.push(job);
    pump();
  }

  async function pump() {
    if (pumping || !ready) return;
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
      queued: ready ? 'queued' : 'waiting for the model',
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

  const neighbours = () => renderNeighbours({ current, items, generation: page.generation, select });

  // Runs one image: top-5, the feature for neighbours, and every open layer's maps.
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
    activations.imageRan();
    showBackend(r.backend);
    if (r.gpuError) showError(`WebGPU failed on ${item.name}; it ran on the CPU instead: ${r.gpuError}`);
    if (!item.url) item.url = URL.createObjectURL(item.file);
    // a re-run after a model change gives the feature in the new net's space
    item.feature = r.feature;
    item.generation = page.generation;
    Object.assign(item, { status: 'done', preds: r.preds, ms: r.ms, ran: r.backend.kind, tta, crops: r.crops });
    if (current && current !== item) renderItem(current);
    current = item;
    renderItem(item);
    showResult(item);
    neighbours();
    await drawCrops(item, tta);
    await activations.drawOpen();
  }

  // Shows a finished item at once, and analyses it again so the activations are its own.
  function select(item) {
    if (item.status !== 'done') return;
    const prev = current;
    current = item;
    if (prev && prev !== item) renderItem(prev);
    renderItem(item);
    showResult(item);
    neighbours();
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

  // The ways an image gets in: the drop zone, the file picker, a paste anywhere.
  onDrop($('drop-zone'), enqueue);
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

  return {
    // The model is loaded: the images that waited for it run, in order.
    start() {
      ready = true;
      for (const item of items) if (item.status === 'queued') renderItem(item);
      pump();
    },
    // The model could not be loaded: the images that waited say so.
    failed(msg) {
      for (const item of items) if (item.status === 'queued') fail(item, `not run: ${msg}`);
      jobs.length = 0;
    },
    // A new model: neighbours from the old one no longer count, and the shown image runs
    // again on the new one.
    modelChanged() {
      neighbours();
      if (current) select(current);
    },
  };
}
