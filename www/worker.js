// The Web Worker that owns the wasm core: all network work happens here so the page never
// freezes. Protocol: {id, type, ...args} in; {id, ok: result} or {id, error: message} out.
// Requests run one at a time, in arrival order: the model's GPU session and its last run's
// activations are used by one request at a time.
//
// Backend: WebGPU when the browser has an adapter (the page may force the CPU with
// backend: 'cpu'), else the fast CPU backend (wasm SIMD128). The core re-creates a lost
// device by itself; any other GPU failure runs that image on the CPU and leaves the GPU off.
import init, { WasmModel, builtinInfo } from './pkg/alexnet.js';

let model = null;
let want = 'auto'; // 'auto' (WebGPU if there is an adapter) or 'cpu'
let backend = { kind: 'cpu', reason: 'not started' };
const ready = init();

const message = (e) => (e && e.message ? e.message : String(e));

async function attachBackend() {
  if (want === 'cpu') {
    backend = { kind: 'cpu', reason: 'the CPU backend was asked for' };
  } else if (!self.navigator || !navigator.gpu) {
    backend = { kind: 'cpu', reason: 'this browser has no WebGPU' };
  } else {
    try {
      const adapter = await model.enableGpu();
      // wgpu's browser backend leaves the name empty: JS's adapter.info has it
      const info = (await navigator.gpu.requestAdapter())?.info || {};
      const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
      if (name) adapter.name = name;
      if (info.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|software/i.test(name)) adapter.software = true;
      adapter.backend = 'WebGPU';
      backend = { kind: 'gpu', adapter };
    } catch (e) {
      backend = { kind: 'cpu', reason: `WebGPU failed: ${message(e)}` };
    }
  }
  return backend;
}

// Pictures carry their pixels in typed arrays: hand them over without a copy.
const transferOf = (pics) => pics.map((p) => p.rgba.buffer);

const handlers = {
  async init({ config, seed, backend: b }) {
    want = b === 'cpu' ? 'cpu' : 'auto';
    model = WasmModel.random(config, seed);
    return { info: model.info(), backend: await attachBackend() };
  },
  async builtin({ name }) {
    return builtinInfo(name);
  },
  // A new network keeps the GPU device (only the plans are rebuilt); a bad file throws
  // and the current network stays.
  async load({ bytes }) {
    const data = new Uint8Array(bytes);
    if (model) {
      model.replace(data);
    } else {
      model = WasmModel.fromBytes(data);
      await attachBackend();
    }
    return { info: model.info(), backend };
  },
  async analyze({ bytes, top, tta }) {
    if (!model) throw new Error('no model loaded');
    const t0 = performance.now();
    const r = await model.analyze(new Uint8Array(bytes), top, tta, backend.kind === 'gpu');
    const ms = performance.now() - t0;
    if (r.gpuError) backend = { kind: 'cpu', reason: `WebGPU failed (${r.gpuError}); switched to the CPU` };
    if (r.recovered && backend.kind === 'gpu') backend = { ...backend, recovered: r.recovered };
    return { result: { ...r, ms, backend }, transfer: [r.feature.buffer] };
  },
  async layer({ index }) {
    const pics = await model.layerPictures(index);
    return { result: pics, transfer: transferOf(pics) };
  },
  async filters() {
    const pics = model.filters();
    return { result: pics, transfer: transferOf(pics) };
  },
  async crops({ bytes, tta }) {
    const pics = model.crops(new Uint8Array(bytes), tta);
    return { result: pics, transfer: transferOf(pics) };
  },
  async loseDevice() {
    if (backend.kind !== 'gpu') throw new Error('WebGPU is not in use');
    model.loseGpuDevice();
    return true;
  },
};

let queue = Promise.resolve();
self.onmessage = (ev) => {
  const { id, type, ...args } = ev.data;
  queue = queue.then(async () => {
    try {
      await ready;
      const h = handlers[type];
      if (!h) throw new Error(`unknown request ${type}`);
      const out = await h(args);
      if (out && out.transfer) self.postMessage({ id, ok: out.result }, out.transfer);
      else self.postMessage({ id, ok: out });
    } catch (e) {
      self.postMessage({ id, error: message(e) });
    }
  });
};
