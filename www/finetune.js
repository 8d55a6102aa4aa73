// Fine-tuning the page's network on a person's own classes (the core's
// finetune::session): classes, photos, the webcam, progress and the result.
import { $, MAX_IMAGE_BYTES, el, fmt, mb, num, onDrop, showError } from './ui.js';

let call = null;
let modelChanged = null;
let showBackend = null;

// ---- fine-tuning on the person's classes ------------------------------------------------

const ft = { classes: [], running: false };
let camera = null;

function addClass(name) {
  const c = { files: [] };
  const nameInput = el('input', { type: 'text', value: name, placeholder: 'class name' });
  nameInput.dataset.testid = 'ft-class-name';
  const thumbs = el('div', { className: 'thumbs' });
  const count = el('span', { className: 'hint', textContent: '0 photos' });
  const add = (files) => {
    for (const f of files) {
      if (f.size > MAX_IMAGE_BYTES) {
        showError(`${f.name}: too large for a training photo (${mb(f.size)} MB)`);
        continue;
      }
      c.files.push(f);
      thumbs.append(el('img', { src: URL.createObjectURL(f), alt: f.name, title: f.name }));
    }
    count.textContent = `${c.files.length} photo${c.files.length === 1 ? '' : 's'}`;
  };
  const drop = el('div', { className: 'drop', textContent: 'drop photos here' });
  drop.dataset.testid = 'ft-class-drop';
  onDrop(drop, add);
  const input = el('input', { type: 'file', accept: 'image/*', multiple: true });
  input.dataset.testid = 'ft-class-input';
  input.addEventListener('change', () => { add([...input.files]); input.value = ''; });
  const capture = el('button', { type: 'button', textContent: 'capture from the webcam' });
  capture.dataset.testid = 'ft-class-capture';
  capture.hidden = !navigator.mediaDevices?.getUserMedia;
  capture.addEventListener('click', async () => {
    try {
      const f = await captureFrame(`${nameInput.value || 'class'}-${c.files.length + 1}.png`);
      add([f]);
    } catch (e) {
      showError(`webcam: ${e.message}`);
    }
  });
  const remove = el('button', { type: 'button', textContent: 'remove' });
  remove.addEventListener('click', () => {
    ft.classes = ft.classes.filter((x) => x !== c);
    box.remove();
  });
  const box = el('div', { className: 'ft-class' }, nameInput, ' ', remove, drop, input, capture, count, thumbs);
  box.dataset.testid = 'ft-class';
  c.name = () => nameInput.value.trim();
  ft.classes.push(c);
  $('ft-classes').append(box);
}

// One frame of the webcam (asked for on first use) as a PNG file.
async function captureFrame(name) {
  const video = $('ft-video');
  if (!camera) {
    camera = await navigator.mediaDevices.getUserMedia({ video: true });
    video.srcObject = camera;
    video.hidden = false;
    await new Promise((r) => { video.onloadedmetadata = r; });
  }
  const c = el('canvas', { width: video.videoWidth, height: video.videoHeight });
  c.getContext('2d').drawImage(video, 0, 0);
  const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
  return new File([blob], name, { type: 'image/png' });
}

async function finetune() {
  if (ft.running) return;
  const status = $('ft-status');
  const classes = ft.classes.map((c) => c.name());
  const bad = ft.classes.find((c) => !c.name() || c.files.length === 0);
  if (ft.classes.length < 2 || bad) {
    status.textContent = 'give at least two classes, each with a name and a photo';
    return;
  }
  if (new Set(classes).size !== classes.length) {
    status.textContent = 'class names must differ';
    return;
  }
  ft.running = true;
  $('ft-start').disabled = true;
  const progress = $('ft-progress');
  try {
    const photos = [];
    const labels = [];
    for (const [i, c] of ft.classes.entries()) {
      for (const f of c.files) {
        photos.push(await f.arrayBuffer());
        labels.push(i);
      }
    }
    status.textContent = 'decoding photos and planning…';
    const options = { lr: num('ft-lr'), epochs: Math.round(num('ft-epochs')), batch: Math.round(num('ft-batch')),
      budgetMb: 1024 };
    const gpu = $('backend').dataset.kind === 'gpu';
    const { plan, on } = await call('finetuneInit', { classes, photos, labels, depth: $('ft-depth').value, options, gpu }, photos);
    const m = plan.memory;
    const planText = `${plan.trainImages} photos to learn from, ${plan.heldOut} held out; batch ${plan.batch}; ` +
      `${plan.frozen.length ? `frozen: ${plan.frozen.join(', ')}` : 'every layer trained'}; training needs ` +
      `${(m.parameters / 1e6).toFixed(0)} MB for weights, gradients and momentum + ${(m.per_image / 1e6).toFixed(1)} MB ` +
      `an image = ${(m.total / 1e6).toFixed(0)} MB, within the ${plan.budgetMb} MB budget; on ${on}`;
    progress.hidden = false;
    progress.max = plan.epochs;
    let r;
    let acc = null;
    do {
      r = await call('finetuneSteps', { n: 4 });
      progress.value = r.epoch + r.batchInEpoch / r.batches;
      for (const [, , a] of r.finishedEpochs) if (a != null) acc = a;
      status.textContent = `epoch ${Math.min(r.epoch + 1, r.epochs)}/${r.epochs}, loss ${r.loss.toFixed(4)}` +
        `${acc !== null ? `, held-out accuracy ${(acc * 100).toFixed(0)}%` : ''} — ${planText}`;
    } while (!r.done);
    const v = await call('finetuneApply');
    await modelChanged(v.info, `fine-tuned on your ${classes.length} classes (${classes.join(', ')}; ` +
      `${$('ft-depth').selectedOptions[0].textContent})`);
    status.textContent = `done: ${r.epochs} epochs, final loss ${r.loss.toFixed(4)}` +
      `${acc !== null ? `, held-out accuracy ${(acc * 100).toFixed(0)}%` : ' (no held-out photos: give a class 3 or more)'}` +
      ` — the page now classifies with your classes. ${planText}`;
    status.dataset.done = 'true';
  } catch (e) {
    status.textContent = `fine-tuning failed: ${e.message}`;
  } finally {
    ft.running = false;
    $('ft-start').disabled = false;
  }
}

export function setupFinetune(deps) {
  ({ call, modelChanged, showBackend } = deps);
  addClass('class A');
  addClass('class B');
  $('ft-add-class').addEventListener('click', () => addClass(`class ${String.fromCharCode(65 + ft.classes.length)}`));
  $('ft-start').addEventListener('click', finetune);
}
