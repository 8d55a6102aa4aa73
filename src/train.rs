//! The paper's training recipe (section 5), one implementation for every backend:
//! SGD with momentum 0.9 and weight decay 5e-4 in the paper's form (`elementwise::sgd_update`, the
//! GPU's `sgd.wgsl`), batch 128, learning rate 0.01 divided by 10 when the validation error
//! stops improving (at most `max_drops` times, the paper's three), dropout 0.5 in fc6 and
//! fc7 (in the architecture), and the augmentations of [`crate::augment`].
//!
//! Initialisation: the paper's is weights `N(0, 0.01)`, biases 1 in conv2, conv4, conv5 and
//! the hidden fully connected layers (so their ReLUs start in their linear part), 0
//! elsewhere ([`Init::Paper`]). That suits the paper's net (it trained for 90 epochs), not a
//! small one: with std 0.01 the signal shrinks by about `0.01 sqrt(fan_in)` per layer (conv1
//! of the mini net has a fan-in of 75), and the constant biases then dominate every layer,
//! so the output hardly depends on the input and the first epochs learn nothing. Measured
//! on tests/train.rs's tiny net (16 images, 150 steps at lr 0.005): with the paper's biases
//! the loss stays at chance (2.3) whatever the weight scale; with zero biases and He
//! weights it falls to ~1.1. [`Init::He`] (weights `N(0, 2 / fan_in)`, He et al. 2015,
//! biases 0) is the small-net choice; `alexnet train --init paper|he`.

//! A run is resumable: [`State`] (epoch, batch within it, learning rate, schedule, history)
//! and the momentum travel with the weights in a checkpoint, every random draw (shuffle,
//! augmentation, dropout) is seeded from `(seed, epoch, step)`, so a resumed run takes the
//! same steps as an uninterrupted one.

use crate::augment::{Augment, Pca};
use crate::data::Images;
use crate::elementwise::Sgd;
use crate::error::{Error, Result};
use crate::model::{Arch, Layer};
use crate::model::{Model, Params};
use crate::tensor::{splitmix64, Rng, Tensor};

/// How the weights start.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// The paper's: weights `N(0, std)` (0.01), biases 1 in conv2, conv4, conv5 and the
    /// hidden fully connected layers.
    Paper { std: f32 },
    /// Weights `N(0, 2 / fan_in)`, biases 0 (for small nets; see the module docs).
    He,
}

/// Everything that decides a run (stored in its checkpoints).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Recipe {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub init: Init,
    pub augment: Augment,
    /// Epochs without a better validation error before the learning rate is divided by 10.
    pub patience: usize,
    /// How many times it may be divided; one more plateau ends the run.
    pub max_drops: usize,
    pub seed: u64,
}

impl Default for Recipe {
    fn default() -> Recipe {
        let sgd = Sgd::default();
        Recipe {
            epochs: 30,
            batch: 128,
            lr: sgd.lr,
            momentum: sgd.momentum,
            weight_decay: sgd.weight_decay,
            init: Init::Paper { std: 0.01 },
            augment: Augment::default(),
            patience: 2,
            max_drops: 3,
            seed: 1,
        }
    }
}

/// One finished epoch.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub lr: f32,
    pub train_loss: f64,
    pub val_top1_err: f64,
    pub val_top5_err: f64,
    pub seconds: f64,
}

/// Where a run is (stored in its checkpoints).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub recipe: Recipe,
    /// The epoch under way (0-based) and how many of its batches are done.
    pub epoch: usize,
    pub batch_in_epoch: usize,
    /// Steps taken in the whole run.
    pub step: u64,
    pub lr: f32,
    /// The best validation top-1 error so far (none before the first epoch ends).
    pub best_val_top1_err: Option<f64>,
    pub epochs_since_best: usize,
    pub drops: usize,
    /// The running loss of the epoch under way.
    pub loss_sum: f64,
    pub epoch_seconds: f64,
    pub history: Vec<EpochLog>,
    /// The schedule ended the run (or its epochs are done).
    pub finished: bool,
    /// The command that started the run (kept through resumes, for the record).
    #[serde(default)]
    pub command: String,
}

impl State {
    pub fn new(recipe: Recipe) -> State {
        State {
            lr: recipe.lr,
            recipe,
            epoch: 0,
            batch_in_epoch: 0,
            step: 0,
            best_val_top1_err: None,
            epochs_since_best: 0,
            drops: 0,
            loss_sum: 0.0,
            epoch_seconds: 0.0,
            history: Vec::new(),
            finished: false,
            command: String::new(),
        }
    }

    pub fn sgd(&self) -> Sgd {
        Sgd {
            lr: self.lr,
            momentum: self.recipe.momentum,
            weight_decay: self.recipe.weight_decay,
        }
    }

    /// The next step's input `(batch, 3, side, side)` (augmented), labels and dropout seed:
    /// batch `batch_in_epoch` of this epoch's shuffled order.
    pub fn next_batch(&self, arch: &Arch, data: &Data) -> Result<(Tensor, Vec<usize>, u64)> {
        let r = &self.recipe;
        let order = epoch_order(data.train.len(), r.seed, self.epoch);
        let b = self.batch_in_epoch;
        let idx = order
            .get(b * r.batch..(b + 1) * r.batch)
            .ok_or_else(|| Error::Training(format!("batch {b} is past the epoch's images")))?;
        let aug = (&r.augment, &data.pca, augment_seed(r.seed, self.epoch));
        let x = data
            .train
            .batch(idx, arch.input[1], &arch.preprocess, Some(aug))?;
        Ok((x, data.train.label_vec(idx), step_seed(r.seed, self.step)))
    }

    /// Counts a step that took `seconds` and had mean loss `loss`; a non-finite loss stops
    /// the run with an error.
    pub fn record_step(&mut self, loss: f32, seconds: f64) -> Result<()> {
        if !loss.is_finite() {
            return Err(Error::Training(format!(
                "the loss became {loss} at epoch {}, batch {} (learning rate {}); training \
                 stopped and the last checkpoint keeps the last good weights",
                self.epoch + 1,
                self.batch_in_epoch,
                self.lr
            )));
        }
        self.epoch_seconds += seconds;
        self.loss_sum += loss as f64;
        self.batch_in_epoch += 1;
        self.step += 1;
        Ok(())
    }

    /// Closes the epoch (of `batches` steps) with its validation errors: logs it and applies
    /// the schedule (the paper: divide the learning rate by 10 when the validation error
    /// stops improving; after `max_drops` divisions the next plateau ends the run).
    pub fn end_epoch(&mut self, batches: usize, top1: f64, top5: f64) -> EpochLog {
        let r = &self.recipe;
        let log = EpochLog {
            epoch: self.epoch + 1,
            lr: self.lr,
            train_loss: self.loss_sum / batches.max(1) as f64,
            val_top1_err: top1,
            val_top5_err: top5,
            seconds: self.epoch_seconds,
        };
        self.history.push(log.clone());
        if self.best_val_top1_err.is_none_or(|best| top1 < best) {
            self.best_val_top1_err = Some(top1);
            self.epochs_since_best = 0;
        } else {
            self.epochs_since_best += 1;
            if self.epochs_since_best >= r.patience {
                if self.drops >= r.max_drops {
                    self.finished = true;
                } else {
                    self.lr /= 10.0;
                    self.drops += 1;
                    self.epochs_since_best = 0;
                }
            }
        }
        self.epoch += 1;
        self.batch_in_epoch = 0;
        self.loss_sum = 0.0;
        self.epoch_seconds = 0.0;
        if self.epoch >= r.epochs {
            self.finished = true;
        }
        log
    }
}

/// The paper's initial weights for `arch` (see the module docs), seeded.
pub fn init_model(arch: Arch, init: Init, seed: u64) -> Result<Model> {
    // The layers whose biases start at 1: conv2, conv4, conv5 (the 2nd, 4th and 5th
    // convolutions) and every fully connected layer but the last.
    let convs: Vec<&str> = arch
        .layers
        .iter()
        .filter_map(|l| match l {
            Layer::Conv(c) => Some(c.name.as_str()),
            _ => None,
        })
        .collect();
    let fcs: Vec<&str> = arch
        .layers
        .iter()
        .filter_map(|l| match l {
            Layer::Linear(f) => Some(f.name.as_str()),
            _ => None,
        })
        .collect();
    let mut ones: Vec<&str> = [1, 3, 4]
        .iter()
        .filter_map(|&i| convs.get(i).copied())
        .collect();
    ones.extend(fcs.iter().take(fcs.len().saturating_sub(1)));
    let mut rng = Rng::new(seed);
    let mut params = Params::new();
    for (name, shape) in arch.param_shapes() {
        let mut t = Tensor::zeros(&shape);
        match name.strip_suffix(".weight") {
            Some(_) => {
                let fan_in: usize = shape[1..].iter().product();
                let std = match init {
                    Init::Paper { std } => std,
                    Init::He => (2.0 / fan_in as f32).sqrt(),
                };
                rng.fill_normal(&mut t.data, std);
            }
            None => {
                let layer = name.strip_suffix(".bias").unwrap_or(&name);
                if matches!(init, Init::Paper { .. }) && ones.contains(&layer) {
                    t.data.fill(1.0);
                }
            }
        }
        params.insert(name, t);
    }
    Model::new(arch, params)
}

/// A backend that takes training steps: forward, loss, backward and the SGD update.
pub trait Engine {
    /// One step on `(N, C, H, W)` with `labels`; dropout seeded with `seed`. The mean loss
    /// before the update.
    fn step(&mut self, x: &Tensor, labels: &[usize], seed: u64) -> Result<f32>;
    fn set_sgd(&mut self, sgd: Sgd) -> Result<()>;
    /// Stops updating the parameters of these layers (by name); empty trains them all.
    fn set_frozen(&mut self, layers: &[String]) -> Result<()>;
    /// Eval-mode logits `(N, classes)` (any N).
    fn logits(&mut self, x: &Tensor) -> Result<Tensor>;
    /// The current weights.
    fn model(&mut self) -> Result<Model>;
    /// The current momentum of every parameter.
    fn velocities(&mut self) -> Result<Params>;
    /// Which backend, in words.
    fn describe(&self) -> String;
}

/// Training on the fast CPU backend (`cpu::loss_and_grads` and `elementwise::sgd_update`).
pub struct CpuEngine {
    model: Model,
    velocities: Params,
    ws: crate::cpu::Workspace,
    sgd: Sgd,
    /// Layers not updated.
    frozen: Vec<String>,
}

impl CpuEngine {
    /// `velocities`: from a checkpoint, or `None` for zeros.
    pub fn new(model: Model, velocities: Option<Params>, sgd: Sgd, threads: usize) -> Result<Self> {
        let velocities = match velocities {
            Some(v) => {
                check_velocities(&model, &v)?;
                v
            }
            None => model
                .params
                .iter()
                .map(|(k, t)| (k.clone(), Tensor::zeros(&t.shape)))
                .collect(),
        };
        Ok(CpuEngine {
            model,
            velocities,
            ws: crate::cpu::Workspace::new(threads),
            sgd,
            frozen: Vec::new(),
        })
    }
}

fn check_velocities(model: &Model, v: &Params) -> Result<()> {
    for (k, t) in &model.params {
        match v.get(k) {
            Some(m) if m.shape == t.shape => {}
            _ => {
                return Err(Error::Weights(format!(
                    "the checkpoint's momentum for {k} is missing or has the wrong shape"
                )))
            }
        }
    }
    Ok(())
}

impl Engine for CpuEngine {
    fn step(&mut self, x: &Tensor, labels: &[usize], seed: u64) -> Result<f32> {
        let (loss, grads) =
            crate::cpu::train::loss_and_grads(&mut self.ws, &self.model, x, labels, seed)?;
        for (name, w) in self.model.params.iter_mut() {
            let layer = name.rsplit_once('.').map_or(name.as_str(), |(l, _)| l);
            if self.frozen.iter().any(|f| f == layer) {
                continue;
            }
            let g = grads
                .get(name)
                .ok_or_else(|| Error::Training(format!("no gradient for {name}")))?;
            let v = self
                .velocities
                .get_mut(name)
                .ok_or_else(|| Error::Training(format!("no momentum for {name}")))?;
            crate::elementwise::sgd_update(&self.sgd, &mut w.data, &mut v.data, &g.data)?;
        }
        Ok(loss)
    }

    fn set_sgd(&mut self, sgd: Sgd) -> Result<()> {
        self.sgd = sgd;
        Ok(())
    }

    fn set_frozen(&mut self, layers: &[String]) -> Result<()> {
        for l in layers {
            self.model.arch.layer_index(l)?;
        }
        self.frozen = layers.to_vec();
        Ok(())
    }

    fn logits(&mut self, x: &Tensor) -> Result<Tensor> {
        crate::cpu::FastCpu::with_threads(&self.model, self.ws.threads())?.forward(x)
    }

    fn model(&mut self) -> Result<Model> {
        Ok(self.model.clone())
    }

    fn velocities(&mut self) -> Result<Params> {
        Ok(self.velocities.clone())
    }

    fn describe(&self) -> String {
        format!("fast CPU backend, {} thread(s)", self.ws.threads())
    }
}

/// Training on a GPU: `GpuTrainer` (one submission per step), evaluated on the same
/// parameter buffers.
#[cfg(not(target_arch = "wasm32"))]
pub struct GpuEngine {
    ctx: crate::gpu::GpuContext,
    trainer: crate::gpu::GpuTrainer,
}

#[cfg(not(target_arch = "wasm32"))]
impl GpuEngine {
    pub fn new(
        ctx: crate::gpu::GpuContext,
        model: &Model,
        velocities: Option<&Params>,
        batch: usize,
        sgd: Sgd,
    ) -> Result<Self> {
        let trainer = pollster::block_on(crate::gpu::GpuTrainer::new(&ctx, model, batch, sgd))?;
        if let Some(v) = velocities {
            check_velocities(model, v)?;
            trainer.set_velocities(&ctx, v)?;
        }
        Ok(GpuEngine { ctx, trainer })
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Engine for GpuEngine {
    fn step(&mut self, x: &Tensor, labels: &[usize], seed: u64) -> Result<f32> {
        pollster::block_on(self.trainer.step(&self.ctx, x, labels, seed))
    }

    fn set_sgd(&mut self, sgd: Sgd) -> Result<()> {
        self.trainer.set_sgd(&self.ctx, sgd)
    }

    fn set_frozen(&mut self, layers: &[String]) -> Result<()> {
        let arch = self.trainer.model().arch();
        let idx = layers
            .iter()
            .map(|l| arch.layer_index(l))
            .collect::<Result<Vec<_>>>()?;
        self.trainer.set_frozen(&self.ctx, &idx)
    }

    /// The training plan's batch size is fixed: a smaller batch is padded with zeros and
    /// the padding's rows dropped.
    fn logits(&mut self, x: &Tensor) -> Result<Tensor> {
        let n = x.shape[0];
        let padded = pad_batch(x, self.trainer.batch())?;
        let out = pollster::block_on(self.trainer.model().forward(&self.ctx, &padded))?;
        first_rows(out, n)
    }

    fn model(&mut self) -> Result<Model> {
        pollster::block_on(self.trainer.to_model(&self.ctx))
    }

    fn velocities(&mut self) -> Result<Params> {
        pollster::block_on(self.trainer.velocities(&self.ctx))
    }

    fn describe(&self) -> String {
        let a = self.ctx.report();
        format!("GPU {} ({})", a.name, a.backend)
    }
}

/// `x` `(n, ...)` padded with zero images to `(batch, ...)`: a GPU plan's batch is fixed.
pub fn pad_batch(x: &Tensor, batch: usize) -> Result<Tensor> {
    let n = x.shape.first().copied().unwrap_or(0);
    if n == 0 || n > batch {
        return Err(Error::Training(format!(
            "a batch of {n} does not fit the planned batch of {batch}"
        )));
    }
    let per = x.data.len() / n;
    let mut shape = x.shape.clone();
    shape[0] = batch;
    let mut data = x.data.clone();
    data.resize(batch * per, 0.0);
    Tensor::new(&shape, data)
}

/// The first `n` rows of `(N, K)` logits (dropping a padded batch's extra rows).
pub fn first_rows(out: Tensor, n: usize) -> Result<Tensor> {
    let k = out.shape.get(1).copied().unwrap_or(0);
    let rows = out
        .data
        .get(..n * k)
        .ok_or_else(|| Error::Training(format!("{n} rows asked of {:?}", out.shape)))?;
    Tensor::new(&[n, k], rows.to_vec())
}

/// Top-1 and top-5 error of the engine's current weights on `images` (centred, no
/// augmentation), in batches of `batch`.
pub fn evaluate(
    engine: &mut dyn Engine,
    arch: &Arch,
    images: &Images,
    batch: usize,
) -> Result<(f64, f64)> {
    let side = arch.input[1];
    let (mut top1, mut top5) = (0usize, 0usize);
    let all: Vec<usize> = (0..images.len()).collect();
    for idx in all.chunks(batch.max(1)) {
        let x = images.batch(idx, side, &arch.preprocess, None)?;
        let (a, b) = count_correct(&engine.logits(&x)?, &images.label_vec(idx));
        top1 += a;
        top5 += b;
    }
    let n = images.len().max(1) as f64;
    Ok((1.0 - top1 as f64 / n, 1.0 - top5 as f64 / n))
}

/// How many rows of `logits` `(N, K)` rank their label first, and within the first five
/// (ties count against: a label must beat every other logit to be first).
pub fn count_correct(logits: &Tensor, labels: &[usize]) -> (usize, usize) {
    let k = logits.shape.get(1).copied().unwrap_or(1).max(1);
    let (mut top1, mut top5) = (0, 0);
    for (row, &label) in logits.data.chunks_exact(k).zip(labels) {
        let Some(&mine) = row.get(label) else {
            continue;
        };
        let not_below = row.iter().filter(|&&v| v >= mine).count() - 1;
        top1 += (not_below == 0) as usize;
        top5 += (not_below < 5) as usize;
    }
    (top1, top5)
}

/// What the trainer reports while it runs.
#[derive(Clone, Debug)]
pub struct Progress {
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    /// Mean loss of the epoch so far.
    pub loss: f64,
    pub images_per_s: f64,
    pub lr: f32,
    /// Images per batch.
    pub batch_size: usize,
}

/// What the trainer calls back: progress after every step, a finished epoch, and a
/// checkpoint request (every `checkpoint_every` steps and after every epoch).
pub trait Hooks {
    fn progress(&mut self, p: &Progress);
    fn epoch(&mut self, log: &EpochLog);
    /// Keep `model` and its `momentum` at `state`: only ever called with finite weights.
    fn checkpoint(&mut self, model: &Model, momentum: &Params, state: &State) -> Result<()>;
}

/// Reads the engine's weights and momentum for a checkpoint, refusing non-finite ones: a
/// diverged run stops there, and the last checkpoint keeps the last good weights.
fn checkpoint(engine: &mut dyn Engine, state: &State, hooks: &mut dyn Hooks) -> Result<()> {
    let model = engine.model()?;
    let momentum = engine.velocities()?;
    let bad = model
        .params
        .iter()
        .chain(&momentum)
        .find(|(_, t)| t.data.iter().any(|v| !v.is_finite()));
    if let Some((name, _)) = bad {
        return Err(Error::Training(format!(
            "{name} became non-finite (NaN or Inf) by step {} (learning rate {}): the run \
             diverged; training stopped and the last checkpoint keeps the last good weights",
            state.step, state.lr
        )));
    }
    hooks.checkpoint(&model, &momentum, state)
}

/// The data a run reads.
pub struct Data {
    pub train: Images,
    pub val: Images,
    /// The PCA of the training images' RGB pixels (PCA lighting).
    pub pca: Pca,
}

/// Seeds of the per-epoch shuffle and augmentation, and of a step's dropout.
fn epoch_seed(seed: u64, epoch: usize, what: u64) -> u64 {
    splitmix64(splitmix64(seed ^ what) ^ epoch as u64)
}
/// The seed of epoch `epoch`'s augmentation draws.
pub fn augment_seed(seed: u64, epoch: usize) -> u64 {
    epoch_seed(seed, epoch, 2)
}
/// The dropout seed of step `step` of a run seeded with `seed`.
pub fn step_seed(seed: u64, step: u64) -> u64 {
    splitmix64(seed ^ 0x000d_4090_u64.wrapping_mul(step + 1))
}

/// The training images of `epoch` in their shuffled order (Fisher-Yates).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = Rng::new(epoch_seed(seed, epoch, 1));
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// How one sitting of a run goes: a checkpoint every `checkpoint_every` steps (0: only
/// after each epoch), at most `max_steps` steps, time from `clock` (seconds).
pub struct Sitting<'c> {
    pub checkpoint_every: u64,
    pub max_steps: Option<u64>,
    pub clock: &'c dyn Fn() -> f64,
}

impl Sitting<'_> {
    /// Checkpoints after every epoch only, no step limit, no clock (tests).
    pub fn whole() -> Sitting<'static> {
        Sitting {
            checkpoint_every: 0,
            max_steps: None,
            clock: &|| 0.0,
        }
    }
}

/// Runs (or resumes) training until the recipe's epochs are done, the schedule ends it, or
/// the sitting's `max_steps` have been taken.
pub fn run(
    engine: &mut dyn Engine,
    arch: &Arch,
    data: &Data,
    state: &mut State,
    sitting: &Sitting,
    hooks: &mut dyn Hooks,
) -> Result<()> {
    let Sitting {
        checkpoint_every,
        max_steps,
        clock,
    } = *sitting;
    let r = state.recipe.clone();
    let batches = data.train.len() / r.batch;
    if batches == 0 {
        return Err(Error::Training(format!(
            "{} training images make no batch of {}",
            data.train.len(),
            r.batch
        )));
    }
    engine.set_sgd(state.sgd())?;
    let mut taken = 0u64;
    while !state.finished && state.epoch < r.epochs {
        let mut t_mark = clock();
        let mut images_mark = 0usize;
        let mut rate = 0.0;
        while state.batch_in_epoch < batches {
            if max_steps.is_some_and(|m| taken >= m) {
                return checkpoint(engine, state, hooks);
            }
            let (x, labels, seed) = state.next_batch(arch, data)?;
            let t0 = clock();
            let loss = engine.step(&x, &labels, seed)?;
            let now = clock();
            state.record_step(loss, now - t0)?;
            taken += 1;
            images_mark += r.batch;
            if now - t_mark >= 1.0 {
                rate = images_mark as f64 / (now - t_mark);
                t_mark = now;
                images_mark = 0;
            }
            hooks.progress(&Progress {
                epoch: state.epoch,
                epochs: r.epochs,
                batch: state.batch_in_epoch,
                batches,
                loss: state.loss_sum / state.batch_in_epoch as f64,
                images_per_s: rate,
                lr: state.lr,
                batch_size: r.batch,
            });
            if checkpoint_every > 0 && state.step.is_multiple_of(checkpoint_every) {
                checkpoint(engine, state, hooks)?;
            }
        }
        let (top1, top5) = evaluate(engine, arch, &data.val, r.batch)?;
        let lr = state.lr;
        hooks.epoch(&state.end_epoch(batches, top1, top5));
        if state.lr != lr {
            engine.set_sgd(state.sgd())?;
        }
        checkpoint(engine, state, hooks)?;
    }
    Ok(())
}
