// What the network holds and does with the shown image: the first conv layer's filters, and
// one panel per layer with its feature maps. Only open panels are read back from the worker
// (each a picture the core draws), and each is drawn once per analysed image.
import { $, el, fmt, pictureCanvas, scaleFor } from './ui.js';

export function setupActivations({ call }) {
  let info = null;
  const panels = new Map(); // layer index -> { details, body, drawn: run id drawn, view }
  let runId = 0; // bumps on every analysed image; 0: none yet

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

  function buildPanels() {
    panels.clear();
    $('activations').replaceChildren(...info.views.map((v) => {
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

  // The clicked map, blown up with crisp pixels.
  function enlarge(ev, canvas, view, tower) {
    const p = canvas.picture;
    const k = p.width / canvas.getBoundingClientRect().width;
    const col = Math.floor((ev.offsetX * k) / (p.tileW + p.gap));
    const row = Math.floor((ev.offsetY * k) / (p.tileH + p.gap));
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

  return {
    // A new model: its panels (empty until an image runs) and its filters.
    async modelChanged(newInfo) {
      info = newInfo;
      buildPanels();
      await drawFilters();
    },
    // The worker has just analysed an image: what is drawn from now on is its.
    imageRan() { runId++; },
    // Every open panel shows the last analysed image.
    async drawOpen() {
      for (const index of panels.keys()) await drawLayer(index);
    },
  };
}
