// The benchmark's Web Worker: times our backends (wasm core: ref, cpu, gpu) and
// onnxruntime-web (wasm and WebGPU execution providers) on the SAME model (our weights exported
// as ONNX) and the SAME input (the seeded batch from the core), one after the other.
// Protocol: {id, type: 'bench', ...config} in; {id, progress: text}* then {id, ok: result} or
// {id, error: message} out.
import init, { WasmBench } from './pkg/alexnet.js';

const ready = init();
const ORT_DIR = new URL('./vendor/ort/', import.meta.url).href;
let ortModule = null;
let ortThreads = null;

async function loadOrt(threads) {
  if (!ortModule) {
    try {
      ortModule = await import('./vendor/ort/ort.min.mjs');
    } catch (e) {
      throw new Error('onnxruntime-web is not in www/vendor/ort: run `node tools/bench-browser.mjs --copy-only` ' +
        `(it copies the files from node_modules) (${e.message})`);
    }
    // Local files only, never a CDN; set once (the wasm module is shared by both EPs).
    ortModule.env.wasm.wasmPaths = ORT_DIR;
    ortModule.env.wasm.numThreads = threads;
    ortModule.env.wasm.proxy = false;
    ortModule.env.logLevel = 'error';
    ortThreads = threads;
  }
  return ortModule;
}

async function adapterInfo() {
  if (!self.navigator || !navigator.gpu) return { text: 'no WebGPU in this browser', software: null };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { text: 'navigator.gpu exists but no adapter was found', software: null };
  const i = adapter.info || {};
  const name = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unnamed adapter';
  const software = !!(i.isFallbackAdapter || adapter.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|software/i.test(name));
  return { text: `${name}${software ? ' (a software adapter: a CPU emulating a GPU)' : ' (hardware)'}`, software };
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

async function runOrt(ep, onnx, input, shape, runs, threads) {
  const ort = await loadOrt(threads);
  let t = performance.now();
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: [ep], graphOptimizationLevel: 'all',
  });
  const setup_ms = performance.now() - t;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input, shape) };
  const out = session.outputNames[0];
  t = performance.now();
  let r = await session.run(feeds);
  const warmup_ms = performance.now() - t;
  const runs_ms = [];
  let output = null;
  for (let i = 0; i < runs; i++) {
    t = performance.now();
    r = await session.run(feeds); // outputs come back to the CPU, as our forward's do
    runs_ms.push(performance.now() - t);
    output = r[out].data;
  }
  await session.release();
  return {
    backend: `ORT-web ${ort.env.versions?.web || ''} ${ep} EP` +
      (ep === 'wasm' ? ` (${ortThreads} thread${ortThreads === 1 ? '' : 's'}, SIMD)` : ' (JSEP)'),
    batch: shape[0], runs, setup_ms, warmup_ms, total_ms: median(runs_ms), runs_ms, layers: [], output,
  };
}

function maxAbsDiff(a, b) {
  if (!a || !b || a.length !== b.length) return null;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function bench({ model, seed, batch, runs, backends, perLayer, gpuPerLayer, train, ortThreads: threads }, progress) {
  await ready;
  const env = {
    userAgent: navigator.userAgent,
    crossOriginIsolated: self.crossOriginIsolated,
    hardwareConcurrency: navigator.hardwareConcurrency,
    adapter: await adapterInfo(),
  };
  progress(`building ${model} (seed ${seed})`);
  const b = WasmBench.random(model, seed);
  const info = b.info();
  const shape = [batch, ...info.input];
  const input = b.input(batch);
  let onnx = null;
  const rows = [];
  let refOut = null;
  for (const name of backends) {
    progress(`${name}: batch ${batch}, ${runs} run(s)`);
    let row;
    try {
      if (name === 'ort-wasm' || name === 'ort-webgpu') {
        // onnxruntime-web's inference sessions do not train: a training comparison has no ORT rows
        if (train) continue;
        if (!onnx) onnx = b.exportOnnx();
        row = await runOrt(name === 'ort-wasm' ? 'wasm' : 'webgpu', onnx, input, shape, runs, threads);
      } else {
        const layers = perLayer && (name !== 'gpu' || gpuPerLayer);
        row = await b.run(name, batch, runs, layers, !!train);
        row.backend = {
          ref: 'ours ref (plain loops)',
          cpu: 'ours cpu (im2col+GEMM, wasm SIMD128, 1 thread)',
          gpu: `ours gpu (WebGPU via wgpu${row.software_adapter ? ', software adapter' : ''})`,
        }[name] || `ours ${name}`;
      }
      row.output = Float32Array.from(row.output);
      if (!train) {
        if (!refOut) refOut = row.output;
        row.max_abs_diff = maxAbsDiff(refOut, row.output);
      } else {
        row.max_abs_diff = null;
      }
    } catch (e) {
      row = { backend: name, error: e && e.message ? e.message : String(e) };
    }
    row.id = name;
    delete row.output;
    rows.push(row);
  }
  b.free();
  return { model, seed, batch, runs, train: !!train, info: { family: info.family, params: info.params, macs: info.macs, input: info.input }, env, rows };
}

self.onmessage = async (ev) => {
  const { id, type, ...args } = ev.data;
  try {
    if (type !== 'bench') throw new Error(`unknown request ${type}`);
    const result = await bench(args, (text) => self.postMessage({ id, progress: text }));
    self.postMessage({ id, ok: result });
  } catch (e) {
    self.postMessage({ id, error: e && e.message ? e.message : String(e) });
  }
};
