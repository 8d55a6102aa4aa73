// The Web Worker that owns the wasm core: all network work happens here so the page never
// freezes. Protocol: {id, type, ...args} in; {id, ok: result} or {id, error: message} out.
import init, { WasmModel, builtinInfo } from './pkg/alexnet.js';

let model = null;
const ready = init();

const handlers = {
  async init({ config, seed }) {
    model = WasmModel.random(config, seed);
    return model.info();
  },
  async builtin({ name }) {
    return builtinInfo(name);
  },
  async load({ bytes }) {
    const m = WasmModel.fromBytes(new Uint8Array(bytes));
    if (model) model.free();
    model = m;
    return model.info();
  },
  async classify({ bytes, top, tta }) {
    if (!model) throw new Error('no model loaded');
    const t0 = performance.now();
    const preds = model.classify(new Uint8Array(bytes), top, tta);
    return { preds, ms: performance.now() - t0 };
  },
};

self.onmessage = async (ev) => {
  const { id, type, ...args } = ev.data;
  try {
    await ready;
    const h = handlers[type];
    if (!h) throw new Error(`unknown request ${type}`);
    self.postMessage({ id, ok: await h(args) });
  } catch (e) {
    self.postMessage({ id, error: e && e.message ? e.message : String(e) });
  }
};
