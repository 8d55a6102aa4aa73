// The page's training demo: the mini net from scratch on the shipped Fashion-MNIST subset,
// a few steps per worker request (the core's train::session), its curve and examples.
import { $, el, num, pictureCanvas } from './ui.js';

let call = null;
let modelChanged = null;
// the person picked the training backend: the page's default no longer overrides it
let backendChosen = false;
export const trainBackendChosen = () => backendChosen;

// ---- training in the page ---------------------------------------------------------------

const train = {
  state: 'none', // none | running | pausing (a request still in flight) | paused
  looping: false, // a trainLoop is running (at most one at a time)
  on: null, // where it runs, in words
  losses: [], // [step, mean loss of a call]
  val: [], // [step, validation top-1 accuracy]
  lastReport: null,
  rate: 0,
};

function trainOptions() {
  return {
    batch: Math.round(num('train-batch')),
    lr: num('train-lr'),
    momentum: num('train-momentum'),
    weightDecay: num('train-wd'),
    dropout: num('train-dropout'),
    crops: $('train-crops').checked,
    flips: $('train-flips').checked,
    pcaStd: num('train-pca'),
  };
}

function showTrainStatus(extra = '') {
  const r = train.lastReport;
  const st = $('train-status');
  const val = train.val.length ? `, validation accuracy ${(train.val[train.val.length - 1][1] * 100).toFixed(1)}%` : '';
  st.textContent = r
    ? `${train.state} on ${train.on} — step ${r.step}, epoch ${r.epoch + 1} (batch ${r.batchInEpoch}/${r.batches}), ` +
      `loss ${r.loss.toFixed(4)}${val}, ${train.rate.toFixed(0)} images/s, learning rate ${Number(r.lr.toPrecision(3))}${extra}`
    : `${train.state === 'none' ? 'not started' : train.state}${extra}`;
  st.dataset.state = train.state;
  st.dataset.steps = r ? r.step : 0;
  if (train.losses.length) {
    st.dataset.firstLoss = train.losses[0][1];
    st.dataset.lastLoss = train.losses[train.losses.length - 1][1];
  }
  st.dataset.valAccuracy = train.val.length ? train.val[train.val.length - 1][1] : '';
  $('train-start').disabled = train.state === 'running';
  $('train-pause').disabled = train.state !== 'running';
}

// Loss (left axis, blue) and validation accuracy (right axis, 0-100%, green) against steps.
function drawCurve() {
  const c = $('train-curve');
  const g = c.getContext('2d');
  const [w, h, pad] = [c.width, c.height, 30];
  g.fillStyle = '#fff';
  g.fillRect(0, 0, w, h);
  g.strokeStyle = '#ccc';
  g.strokeRect(pad, 8, w - 2 * pad, h - pad - 8);
  if (!train.losses.length) return;
  const maxStep = Math.max(...train.losses.map((p) => p[0]), 1);
  const maxLoss = Math.max(...train.losses.map((p) => p[1]), 1e-6);
  const x = (s) => pad + (s / maxStep) * (w - 2 * pad);
  const y = (v) => 8 + (1 - v) * (h - pad - 8);
  const line = (pts, colour, scale) => {
    g.strokeStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach(([s, v], i) => (i ? g.lineTo(x(s), y(v / scale)) : g.moveTo(x(s), y(v / scale))));
    g.stroke();
  };
  line(train.losses, '#1a66aa', maxLoss);
  if (train.val.length) line([[0, 0.1], ...train.val], '#1a6', 1);
  g.fillStyle = '#333';
  g.font = '11px sans-serif';
  g.fillText(`loss (max ${maxLoss.toFixed(2)})`, pad + 4, 20);
  g.fillText('validation accuracy, 0-100%', w - pad - 150, 20);
  g.fillText(`step ${maxStep}`, w - pad - 50, h - 10);
}

async function refreshExamples() {
  const r = await call('trainExamples', { n: 16 });
  $('train-examples').replaceChildren(...r.examples.map((e, i) => el('figure', {},
    pictureCanvas(r.pictures[i], 2, 'example-canvas'),
    el('figcaption', { className: e.correct ? 'right' : 'wrong',
      textContent: `${e.predicted} ${(e.probability * 100).toFixed(0)}%`, title: `truly: ${e.label}` }))));
  const s = await call('trainSamples', { n: 16 });
  $('train-samples').replaceChildren(...s.map((p) => pictureCanvas(p, 2, 'sample-canvas')));
}

async function viewTrained(r) {
  const v = await call('trainView');
  await modelChanged(v.info, `mini-AlexNet being trained in this page (epoch ${r.epoch}, step ${r.step})`);
}

async function trainLoop() {
  train.looping = true;
  try {
    await trainLoopSteps();
  } finally {
    train.looping = false;
  }
  // paused only once the last request's steps are in: the step count stays put from here
  if (train.state === 'pausing') {
    train.state = 'paused';
    showTrainStatus();
  }
}

async function trainLoopSteps() {
  while (train.state === 'running') {
    const t0 = performance.now();
    let r;
    try {
      r = await call('trainSteps', { n: 4 });
    } catch (e) {
      train.state = 'paused';
      showTrainStatus(` — stopped: ${e.message}`);
      return;
    }
    train.rate = r.images / ((performance.now() - t0) / 1000);
    train.lastReport = r;
    train.losses.push([r.step, r.loss]);
    for (const ep of r.epochs) train.val.push([r.step, 1 - ep.val_top1_err]);
    showTrainStatus();
    drawCurve();
    if (r.epochs.length) {
      await refreshExamples();
      if ($('train-live').checked) await viewTrained(r);
    }
  }
}

async function trainStart() {
  if (train.state === 'none') {
    train.losses = [];
    train.val = [];
    train.lastReport = null;
    showTrainStatus(' — setting up…');
    try {
      const on = await call('trainInit', { options: trainOptions(), gpu: $('train-backend').value === 'gpu' });
      train.on = on.name;
      await refreshExamples();
    } catch (e) {
      showTrainStatus(` — could not start: ${e.message}`);
      return;
    }
  }
  train.state = 'running';
  showTrainStatus();
  // a loop still finishing its last request before a pause simply goes on
  if (!train.looping) trainLoop();
}

export function setupTraining(deps) {
  ({ call, modelChanged } = deps);
  $('train-backend').addEventListener('change', () => { backendChosen = true; });
  $('train-start').addEventListener('click', trainStart);
  $('train-pause').addEventListener('click', () => {
    if (train.state !== 'running') return;
    train.state = train.looping ? 'pausing' : 'paused';
    showTrainStatus();
  });
  $('train-reset').addEventListener('click', () => {
    train.state = 'none';
    train.losses = [];
    train.val = [];
    train.lastReport = null;
    drawCurve();
    showTrainStatus(' (reset: start begins a new run with the settings above)');
  });
  for (const id of ['train-lr', 'train-momentum', 'train-wd']) {
    $(id).addEventListener('change', () => call('trainSetSgd', trainOptions()).catch((e) => showTrainStatus(` — ${e.message}`)));
  }
  for (const id of ['train-crops', 'train-flips', 'train-pca']) {
    $(id).addEventListener('change', () => call('trainSetAugment', trainOptions()));
  }
  drawCurve();
  showTrainStatus();
}
