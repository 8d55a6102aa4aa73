// The Web Worker that owns the wasm core: all network work happens here so the page never
// freezes. Protocol: {id, type, ...args} in; {id, ok: result} or {id, error: message} out.
// Requests run one at a time, in arrival order (the model's GPU state is used by one request
// at a time).
//
// Backend: WebGPU when the browser has an adapter (the page may force the CPU with
// backend: 'cpu'), else the fast CPU backend (wasm SIMD128). A GPU failure during a request
// (e.g. a lost device) drops to the CPU for that request and reports the switch.
import init, { WasmModel, builtinInfo } from './pkg/alexnet.js';

let model = null;
let want = 'auto'; // 'auto' (WebGPU if there is an adapter) or 'cpu'
let backend = { kind: 'cpu', reason: 'not started' };
const ready = init();

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
      backend = { kind: 'cpu', reason: `WebGPU failed: ${e && e.message ? e.message : e}` };
    }
  }
  return backend;
}

const handlers = {
  async init({ config, seed, backend: b }) {
    want = b === 'cpu' ? 'cpu' : 'auto';
    model = WasmModel.random(config, seed);
    return { info: model.info(), backend: await attachBackend() };
  },
  async builtin({ name }) {
    return builtinInfo(name);
  },
  async load({ bytes }) {
    const m = WasmModel.fromBytes(new Uint8Array(bytes));
    if (model) model.free();
    model = m;
    return { info: model.info(), backend: await attachBackend() };
  },
  async classify({ bytes, top, tta }) {
    if (!model) throw new Error('no model loaded');
    const img = new Uint8Array(bytes);
    const t0 = performance.now();
    let preds;
    if (backend.kind === 'gpu') {
      try {
        preds = await model.classifyGpu(img, top, tta);
      } catch (e) {
        const msg = e && e.message ? e.message : String(e);
        // a bad image is the image's fault, not the GPU's: report it as it is
        if (/^image/.test(msg)) throw e;
        model.disableGpu();
        backend = { kind: 'cpu', reason: `WebGPU failed (${msg}); switched to the CPU` };
      }
    }
    if (!preds) preds = model.classify(img, top, tta);
    return { preds, ms: performance.now() - t0, backend };
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
      self.postMessage({ id, ok: await h(args) });
    } catch (e) {
      self.postMessage({ id, error: e && e.message ? e.message : String(e) });
    }
  });
};
