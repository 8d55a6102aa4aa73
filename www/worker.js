// The Web Worker that owns the wasm core: all network work happens here so the page never
// freezes. Protocol: {id, type, ...args} in; {id, ok: result} or {id, error: message} out.
// Requests run one at a time, in arrival order: the model's GPU session and its last run's
// activations are used by one request at a time.
//
// Backend: WebGPU when the browser has an adapter (the page may force the CPU with
// backend: 'cpu'), else the fast CPU backend (wasm SIMD128). The core re-creates a lost
// device by itself; any other GPU failure runs that image on the CPU and leaves the GPU off.
import init, { WasmFinetuner, WasmModel, WasmTrainer, builtinInfo } from './pkg/alexnet.js';

let model = null;
let trainer = null; // the page's training run (WasmTrainer)
let finetuner = null; // fine-tuning on the person's classes (WasmFinetuner)
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
  // The embedded default (www/models/mini-fashion.*, trained by `alexnet train`), or, where
  // a checkout has none, the mini config with random weights, said plainly by the page.
  async init({ seed, backend: b }) {
    want = b === 'cpu' ? 'cpu' : 'auto';
    let embedded = null;
    let embeddedError = null;
    try {
      const [meta, weights] = await Promise.all(['mini-fashion.json', 'mini-fashion.safetensors']
        .map((f) => fetch(new URL(`./models/${f}`, import.meta.url))));
      if (meta.ok && weights.ok) {
        const record = await meta.json();
        model = WasmModel.fromBytes(new Uint8Array(await weights.arrayBuffer()));
        embedded = record;
      }
    } catch (e) {
      embeddedError = message(e);
    }
    if (!model) model = WasmModel.random('mini', seed);
    return { info: model.info(), backend: await attachBackend(), embedded, embeddedError };
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
  // Training: a fresh run on the Fashion-MNIST subset shipped in www/data, on WebGPU when
  // asked and available, else the CPU.
  async trainInit({ options, gpu }) {
    const files = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
      't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];
    const bytes = await Promise.all(files.map(async (f) => {
      const r = await fetch(new URL(`./data/fashion-mnist/${f}`, import.meta.url));
      if (!r.ok) throw new Error(`the training data ${f} is missing (HTTP ${r.status})`);
      return new Uint8Array(await r.arrayBuffer());
    }));
    if (trainer) trainer.free();
    trainer = null;
    const t = new WasmTrainer(...bytes, options);
    let on = { kind: 'cpu', name: 'the fast CPU backend (wasm SIMD128)' };
    if (gpu && want !== 'cpu' && self.navigator && navigator.gpu) {
      try {
        await t.useGpu();
        on = { kind: 'gpu', name: backend.kind === 'gpu' && backend.adapter ? `WebGPU on ${backend.adapter.name}` : 'WebGPU' };
      } catch (e) {
        on = { kind: 'cpu', name: `the fast CPU backend (WebGPU failed: ${message(e)})` };
      }
    }
    trainer = t;
    return on;
  },
  async trainSteps({ n }) {
    if (!trainer) throw new Error('no training run: start one');
    return trainer.steps(n);
  },
  async trainSetSgd({ lr, momentum, weightDecay }) {
    if (trainer) trainer.setSgd(lr, momentum, weightDecay);
    return true;
  },
  async trainSetAugment({ crops, flips, pcaStd }) {
    if (trainer) trainer.setAugment(crops, flips, pcaStd);
    return true;
  },
  async trainExamples({ n }) {
    const r = await trainer.examples(n);
    return { result: r, transfer: transferOf(r.pictures) };
  },
  async trainSamples({ n }) {
    const pics = trainer.samples(n);
    return { result: pics, transfer: transferOf(pics) };
  },
  // The weights being trained become the page's model (filters, activations, classify).
  async trainView() {
    const bytes = await trainer.snapshot();
    if (model) model.replace(bytes); else model = WasmModel.fromBytes(bytes);
    return { info: model.info(), backend };
  },
  // Fine-tuning starts from the page's current network.
  async finetuneInit({ classes, photos, labels, depth, options, gpu }) {
    if (finetuner) finetuner.free();
    finetuner = null;
    const f = new WasmFinetuner(model, classes, photos.map((b) => new Uint8Array(b)), Uint32Array.from(labels), depth, options);
    let on = 'the fast CPU backend (wasm SIMD128)';
    if (gpu && want !== 'cpu' && self.navigator && navigator.gpu) {
      try {
        on = `WebGPU on ${await f.useGpu()}`;
      } catch (e) {
        on = `the fast CPU backend (WebGPU failed: ${message(e)})`;
      }
    }
    finetuner = f;
    return { plan: f.plan(), on };
  },
  async finetuneSteps({ n }) {
    if (!finetuner) throw new Error('no fine-tuning run');
    return finetuner.steps(n);
  },
  // The fine-tuned network becomes the page's: classification uses the new classes.
  async finetuneApply() {
    const bytes = await finetuner.snapshot();
    model.replace(bytes);
    return { info: model.info(), backend };
  },
  async exportModel({ format }) {
    const bytes = format === 'onnx' ? model.exportOnnx() : model.exportSafetensors();
    return { result: bytes, transfer: [bytes.buffer] };
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
