// Weight files: a person picks, drops or names (by URL) an ONNX or safetensors file; the worker
// validates and loads it; a model that loaded is kept in the Cache API so a reload restores it
// without reading the file again. Cached models are listed and can be loaded or removed.
//
// The bytes are read here (not in the worker) so the page can show progress, then transferred
// to the worker: a 233 MB file is never copied between threads.

import { button, fmt } from './ui.js';

const CACHE_NAME = 'alexnet-weights-v1';
// localStorage entry naming the cache key of the model to restore on the next visit.
const LAST_KEY = 'alexnet-weights-last';
// Far above any AlexNet (the biggest, fp32, is ~250 MB); refusing early spares a tab from
// running out of memory on a wrong file.
const MAX_BYTES = 2 ** 30;
// Metadata headers on the cached Response, so the list needs no body read.
const H = { size: 'x-weights-size', family: 'x-weights-family', params: 'x-weights-params', time: 'x-weights-time' };

const mb = (n, digits = 1) => (n / 1e6).toFixed(digits);
const keyOf = (name) => new URL('cached-weights/' + encodeURIComponent(name), location.href).href;
const nameOfKey = (key) => decodeURIComponent(new URL(key).pathname.split('/').pop());

// localStorage can throw (storage disabled); losing the "restore on reload" note is harmless.
function remember(key) {
  try { localStorage.setItem(LAST_KEY, key); } catch { /* restore simply will not happen */ }
}
function forget() {
  try { localStorage.removeItem(LAST_KEY); } catch { /* nothing remembered */ }
}
function recall() {
  try { return localStorage.getItem(LAST_KEY); } catch { return null; }
}

async function openStore() {
  // The Cache API exists only in secure contexts (https, localhost).
  if (!globalThis.caches) return null;
  try { return await caches.open(CACHE_NAME); } catch { return null; }
}

// Reads a stream into one ArrayBuffer. `expected` (file size or Content-Length) lets it allocate
// once; a wrong or missing length (e.g. a compressed transfer) only costs regrowing.
async function readAll(stream, expected, onProgress) {
  let buf = new Uint8Array(expected);
  let n = 0;
  if (stream) {
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (n + value.length > MAX_BYTES) {
        await reader.cancel();
        throw new Error(`it is larger than ${mb(MAX_BYTES, 0)} MB, too large for an AlexNet weight file`);
      }
      if (n + value.length > buf.length) {
        const grown = new Uint8Array(Math.max(n + value.length, buf.length * 2));
        grown.set(buf.subarray(0, n));
        buf = grown;
      }
      buf.set(value, n);
      n += value.length;
      onProgress(n);
    }
  }
  return n === buf.length ? buf.buffer : buf.slice(0, n).buffer;
}

const TEMPLATE = `
  <h2>Load weights</h2>
  <p>An ONNX-zoo <code>bvlcalexnet-*.onnx</code> (about 233 MB), a torchvision AlexNet
    <code>.safetensors</code> (about 244 MB), or a file exported by <code>alexnet export</code>.
    A model that loads is kept in this browser, so a reload does not read the file again.</p>
  <fieldset class="weights-controls">
    <legend class="visually-hidden">Choose a weight file</legend>
    <div class="drop weights-drop" data-testid="weights-drop">
      Drop a weight file here, or <label class="pick">pick one<input type="file" class="visually-hidden"
        accept=".onnx,.safetensors" data-testid="weights-input"></label>.
    </div>
    <form class="weights-url">
      <label for="weights-url">or load from a URL</label>
      <input id="weights-url" type="text" inputmode="url" spellcheck="false" autocomplete="url"
        placeholder="https://…/bvlcalexnet-12.onnx" data-testid="weights-url">
      <button type="submit" data-testid="weights-url-load">Load</button>
      <small>Another site's server must allow CORS (<code>Access-Control-Allow-Origin</code>):
        this page is cross-origin isolated.</small>
    </form>
    <div class="weights-progress">
      <progress data-testid="weights-progress" hidden></progress>
      <span data-testid="weights-progress-text"></span>
    </div>
    <div class="error" data-testid="weights-error" role="alert" hidden></div>
    <div class="weights-note" data-testid="weights-note" role="status"></div>
    <h3>Cached in this browser</h3>
    <ul class="cached-models" data-testid="cached-models"></ul>
    <p class="cached-empty" hidden></p>
  </fieldset>`;

/**
 * Builds the weights UI inside `root` (an empty section).
 * call(type, args, transfer): the worker request function; a 'load' resolves to {info, backend}.
 * onLoaded(info, backend, name, source): after a model loaded; source is 'file', 'url' or 'cache'.
 * onError(msg): after a failure (the message is also shown in the section).
 * Returns { restore }: restore() loads the model last loaded, from the cache, resolving true if
 * it did.
 */
export function setupWeights(root, { call, onLoaded, onError = () => {} }) {
  root.classList.add('weights');
  root.innerHTML = TEMPLATE;
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  const controls = root.querySelector('fieldset');
  const drop = $('weights-drop');
  const bar = $('weights-progress');
  const barText = $('weights-progress-text');
  const errorBox = $('weights-error');
  const note = $('weights-note');
  const list = $('cached-models');
  const empty = root.querySelector('.cached-empty');
  const storeReady = openStore();
  let busy = false;
  let current = null; // cache key of the model the worker holds, if it is cached

  function progress(verb, n, total) {
    bar.hidden = false;
    if (total && n <= total) {
      bar.max = total;
      bar.value = n;
      barText.textContent = `${verb} ${mb(n)} of ${mb(total)} MB`;
    } else {
      bar.removeAttribute('value'); // indeterminate: the size is unknown, or the worker is busy
      barText.textContent = n === undefined ? `${verb}…` : `${verb} ${mb(n)} MB`;
    }
  }

  function setBusy(on) {
    busy = on;
    controls.disabled = on;
    root.setAttribute('aria-busy', String(on));
    if (!on) {
      bar.hidden = true;
      barText.textContent = '';
    }
  }

  // Runs one load at a time; shows and reports its error. Resolves true if it succeeded.
  async function run(job) {
    if (busy) {
      showError('a weight file is still loading; try again when it is done');
      return false;
    }
    setBusy(true);
    errorBox.hidden = true;
    note.textContent = '';
    try {
      await job();
      return true;
    } catch (e) {
      showError(e.message);
      return false;
    } finally {
      setBusy(false);
    }
  }

  function showError(msg) {
    errorBox.textContent = msg;
    errorBox.hidden = false;
    onError(msg);
  }

  // Hands the bytes to the worker (transferred: `bytes` is empty afterwards).
  async function validate(bytes, name, source) {
    progress('validating');
    const { info, backend } = await call('load', { bytes }, [bytes]);
    onLoaded(info, backend, name, source);
    return info;
  }

  // Keeps a model that loaded in the cache; a failure here leaves the model loaded.
  async function keep(name, body, info) {
    const key = keyOf(name);
    current = null;
    forget(); // until the new model is cached, a reload must not bring back an older one
    const store = await storeReady;
    if (!store) {
      note.textContent = `Loaded ${name}. It could not be kept: this browser offers no Cache API ` +
        'here (it needs https or localhost), so a reload will need the file again.';
      return;
    }
    progress('saving to the browser cache');
    try {
      await store.put(key, new Response(body, {
        headers: {
          'content-type': 'application/octet-stream',
          [H.size]: String(body.size),
          [H.family]: info.family,
          [H.params]: String(info.params),
          [H.time]: String(Date.now()),
        },
      }));
    } catch (e) {
      note.textContent = `Loaded ${name}, but it could not be kept in the browser cache ` +
        `(${e.name}: ${e.message}); a reload will need the file again.`;
      await refreshList();
      return;
    }
    current = key;
    remember(key);
    note.textContent = `Loaded ${name} and kept it in the browser cache for the next visit.`;
    // Without persistence the browser may evict a 233 MB entry under storage pressure.
    navigator.storage?.persist?.().catch(() => {});
    await refreshList();
  }

  async function fromFile(file) {
    if (file.size > MAX_BYTES) {
      throw new Error(`${file.name} is ${mb(file.size)} MB, larger than the ${mb(MAX_BYTES, 0)} MB ` +
        'limit: it is not an AlexNet weight file');
    }
    let bytes;
    try {
      bytes = await readAll(file.stream(), file.size, (n) => progress('reading', n, file.size));
    } catch (e) {
      throw new Error(`could not read ${file.name}: ${e.message}`);
    }
    let info;
    try {
      info = await validate(bytes, file.name, 'file');
    } catch (e) {
      throw new Error(`${file.name}: ${e.message}. The previous model is still loaded.`);
    }
    // The File itself is cached: the browser copies it from disk, not from this page's memory.
    await keep(file.name, file, info);
  }

  async function fromUrl(text) {
    if (!text) throw new Error('type the URL of a weight file first');
    let url;
    try {
      url = new URL(text, location.href);
    } catch {
      throw new Error(`"${text}" is not a URL`);
    }
    const last = url.pathname.split('/').filter(Boolean).pop() || url.hostname;
    let name = last;
    try { name = decodeURIComponent(last); } catch { /* a stray % in the URL: keep it as typed */ }
    let res;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new Error(`could not fetch ${url.href}: ${e.message} (a network error, or the server ` +
        'does not allow CORS: this page is cross-origin isolated with COEP require-corp, so a file ' +
        'from another site loads only if its server sends Access-Control-Allow-Origin)');
    }
    if (!res.ok) {
      throw new Error(`could not fetch ${url.href}: HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`);
    }
    const total = Number(res.headers.get('content-length')) || 0;
    if (total > MAX_BYTES) {
      await res.body?.cancel();
      throw new Error(`${url.href} is ${mb(total)} MB, larger than the ${mb(MAX_BYTES, 0)} MB limit: ` +
        'it is not an AlexNet weight file');
    }
    let bytes;
    try {
      bytes = await readAll(res.body, total, (n) => progress('downloading', n, total));
    } catch (e) {
      throw new Error(`could not download ${url.href}: ${e.message}`);
    }
    // The bytes move to the worker; the cache gets this copy if they turn out valid.
    const copy = new Blob([bytes]);
    let info;
    try {
      info = await validate(bytes, name, 'url');
    } catch (e) {
      throw new Error(`${name} (from ${url.href}): ${e.message}. The previous model is still loaded.`);
    }
    await keep(name, copy, info);
  }

  async function fromCache(key) {
    const name = nameOfKey(key);
    const store = await storeReady;
    const res = store && await store.match(key);
    if (!res) {
      if (recall() === key) forget();
      await refreshList();
      throw new Error(`${name} is no longer in the browser cache`);
    }
    const size = Number(res.headers.get(H.size)) || 0;
    const bytes = await readAll(res.body, size, (n) => progress('reading the cache', n, size));
    try {
      await validate(bytes, name, 'cache');
    } catch (e) {
      // An entry the worker refuses (e.g. after an update of the parser) would fail every visit.
      await store.delete(key);
      if (recall() === key) forget();
      await refreshList();
      throw new Error(`${name} in the browser cache is no longer a usable weight file (${e.message}); ` +
        'it was removed from the cache. The previous model is still loaded.');
    }
    current = key;
    remember(key);
    note.textContent = `Loaded ${name} from the browser cache.`;
    await refreshList();
  }

  async function remove(key) {
    const store = await storeReady;
    await store.delete(key);
    if (recall() === key) forget();
    if (key === current) {
      current = null;
      note.textContent = `Removed ${nameOfKey(key)} from the cache; it stays loaded until you load ` +
        'another model or reload the page.';
    } else {
      note.textContent = `Removed ${nameOfKey(key)} from the cache.`;
    }
    await refreshList();
  }

  async function refreshList() {
    const store = await storeReady;
    if (!store) {
      list.replaceChildren();
      empty.textContent = 'This browser offers no Cache API here, so models are not kept between visits.';
      empty.hidden = false;
      return;
    }
    const entries = [];
    for (const req of await store.keys()) {
      const res = await store.match(req);
      if (!res) continue; // removed meanwhile (another tab)
      const h = (k) => res.headers.get(k);
      entries.push({ key: req.url, size: Number(h(H.size)), family: h(H.family), params: Number(h(H.params)), time: Number(h(H.time)) });
    }
    entries.sort((a, b) => b.time - a.time);
    list.replaceChildren(...entries.map((e) => {
      const name = nameOfKey(e.key);
      const li = document.createElement('li');
      li.classList.toggle('current', e.key === current);
      const title = document.createElement('b');
      title.textContent = name;
      const meta = document.createElement('span');
      meta.textContent = ` ${mb(e.size, e.size < 1e7 ? 2 : 1)} MB · ${e.family} variant · ` +
        `${fmt(e.params)} parameters${e.key === current ? ' · loaded now' : ''}`;
      meta.title = `cached ${new Date(e.time).toLocaleString()}`;
      const load = button('load', 'cached-load', `load ${name} from the cache`, () => run(() => fromCache(e.key)));
      const del = button('remove', 'cached-remove', `remove ${name} from the cache`, () => run(() => remove(e.key)));
      li.append(title, meta, ' ', load, ' ', del);
      return li;
    }));
    empty.textContent = 'No cached models yet: a model that loads is kept here.';
    empty.hidden = entries.length > 0;
  }

  $('weights-input').addEventListener('change', (e) => {
    const file = e.target.files[0];
    e.target.value = ''; // picking the same file again must fire another change
    if (file) run(() => fromFile(file));
  });

  // dragover must be cancelled for the browser to allow a drop here.
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('over'); });
  }
  drop.addEventListener('dragleave', (e) => {
    if (!drop.contains(e.relatedTarget)) drop.classList.remove('over');
  });
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const files = e.dataTransfer?.files || [];
    if (files.length !== 1) {
      showError(files.length ? 'drop one weight file at a time' : 'that was not a file: drop a .onnx or .safetensors file');
      return;
    }
    run(() => fromFile(files[0]));
  });

  root.querySelector('form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('weights-url').value.trim();
    run(() => fromUrl(text));
  });

  const listed = refreshList().catch((e) => showError(`could not list the cached models: ${e.message}`));

  return {
    async restore() {
      await listed;
      const key = recall();
      if (!key) return false;
      const store = await storeReady;
      if (!store || !(await store.match(key))) {
        forget(); // removed in another tab, or evicted by the browser: nothing to restore
        return false;
      }
      return run(() => fromCache(key));
    },
  };
}
