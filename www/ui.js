// Helpers every part of the page uses: elements by their data-testid, element building,
// number formats, the error line, and the core's pictures on canvases.

export const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
export const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};


// The number in the input element `id`.
export const num = (id) => parseFloat($(id).value);
export const fmt = (n) => n.toLocaleString('en-US');
export const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);
// Larger files are refused before reading: no photo is this big, and decoding one would
// take the worker's memory (the core also refuses images over its pixel limit).
export const MAX_IMAGE_BYTES = 64 * 2 ** 20;

export function showError(msg) {
  const e = $('error');
  e.textContent = msg;
  e.hidden = false;
}
export function clearError() { $('error').hidden = true; }

// Files dropped on `zone` go to `take` (an array of File); the zone is marked while a drag
// is over it.
export function onDrop(zone, take) {
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    take([...e.dataTransfer.files]);
  });
}

// A button that runs `onClick`, with a test id and the label a screen reader says.
export function button(text, testid, label, onClick) {
  const b = el('button', { type: 'button', textContent: text });
  b.dataset.testid = testid;
  if (label) b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

// ---- pictures ---------------------------------------------------------------------------

// A picture from the core ({width, height, rgba, cols, tileW, tileH, gap, first, count}) on
// a canvas, shown `scale` times larger with crisp pixels.
export function pictureCanvas(p, scale, testid) {
  const c = el('canvas', { width: p.width, height: p.height });
  c.getContext('2d').putImageData(new ImageData(p.rgba, p.width, p.height), 0, 0);
  c.style.width = `${p.width * scale}px`;
  if (testid) c.dataset.testid = testid;
  c.picture = p;
  return c;
}

// Small maps are blown up so a 6x6 pool5 map is still visible; big grids stay 1:1.
export const scaleFor = (p, target) => Math.max(1, Math.min(8, Math.floor(target / p.width)));

