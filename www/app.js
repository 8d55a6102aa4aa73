// The page: starts the worker (which runs the network; the main thread never does), shows
// which backend runs it and which model is loaded, and wires the sections together: the
// image queue (queue.js), the layers (activations.js), nearest images (neighbours.js),
// training (training.js), fine-tuning (finetune.js) and weight files (models.js).
import { setupActivations } from './activations.js';
import { setupFinetune } from './finetune.js';
import { setupWeights } from './models.js';
import { setupQueue } from './queue.js';
import { connect } from './rpc.js';
import { setupTraining, trainBackendChosen } from './training.js';
import { $, el, fmt, showError } from './ui.js';

const call = connect(new URL('./worker.js', import.meta.url), {
  onError: (msg) => { $('wasm-status').textContent = `failed to start the worker: ${msg}`; },
});

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
  if (!trainBackendChosen()) $('train-backend').value = b.kind === 'gpu' && !b.adapter.software ? 'gpu' : 'cpu';
}

// `?backend=cpu` forces the CPU backend (the fallback a browser without WebGPU gets).
const wantBackend = new URLSearchParams(location.search).get('backend') === 'cpu' ? 'cpu' : 'auto';

// ---- the model --------------------------------------------------------------------------

// `info`: the loaded network's (layers, views, towers, feature layer); `generation` bumps on
// every model change, so features of different nets never mix.
const page = { info: null, generation: 0 };
const activations = setupActivations({ call });
const queue = setupQueue({ call, page, activations, showBackend });

async function modelChanged(newInfo, what) {
  page.info = newInfo;
  page.generation++;
  $('model-status').textContent = describe(newInfo, what);
  $('feature-name').textContent = `${newInfo.feature_layer}, ${fmt(newInfo.feature_dim)}-d`;
  await activations.modelChanged(newInfo);
  queue.modelChanged();
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
    queue.failed(`the model did not load (${e.message})`);
    return;
  }
  queue.start();
  const tbody = document.querySelector('[data-testid="configs"] tbody');
  for (const name of ['paper', 'bvlc', 'torchvision', 'mini']) {
    const i = await call('builtin', { name });
    const tr = el('tr');
    for (const v of [name, i.input.join('x'), fmt(i.params), fmt(i.macs), i.layers.length]) {
      tr.append(el('td', { textContent: v }));
    }
    tbody.append(tr);
  }

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
        const a = el('a', { href: URL.createObjectURL(new Blob([bytes])), download: `alexnet-${page.info.family}.${format}` });
        a.click();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      } catch (e) {
        showError(`export: ${e.message}`);
      }
    });
  }
  setupTraining({ call, modelChanged });
  setupFinetune({ call, modelChanged, showBackend });
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
