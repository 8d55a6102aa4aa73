//! The one training loop ([`run`]) and the one evaluation ([`evaluate`]), for every surface:
//! `alexnet train` (a whole run, checkpointed), the page's training demo (a few steps per
//! request) and fine-tuning on a person's photos (`alexnet finetune` and the page), on any
//! [`Engine`]. What a run reads is a set of [`Examples`]: the IDX datasets or the photos.

use super::engine::Engine;
use super::{augment_seed, count_correct, epoch_order, step_seed, EpochLog, State};
use crate::augment::{Augment, Pca};
use crate::data::Images;
use crate::error::{Error, Result};
use crate::model::{Arch, Model, Params};
use crate::tensor::Tensor;

/// Labelled images a run draws its batches from.
pub trait Examples {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Images `idx` as the network input `(len(idx), C, H, W)` of `arch`: centred, or with
    /// `aug` (training) augmented as drawn for `(seed, image index)`.
    fn inputs(
        &self,
        idx: &[usize],
        arch: &Arch,
        aug: Option<(&Augment, &Pca, u64)>,
    ) -> Result<Tensor>;
    fn labels(&self, idx: &[usize]) -> Vec<usize>;
    /// Images `idx` in the paper's test view `view` (0..10, see `augment::test_view`).
    fn view_inputs(&self, _idx: &[usize], _arch: &Arch, _view: usize) -> Result<Tensor> {
        Err(Error::Usage(
            "the paper's ten test views are defined for the IDX datasets only".into(),
        ))
    }
}

impl Examples for Images {
    fn len(&self) -> usize {
        Images::len(self)
    }
    fn inputs(
        &self,
        idx: &[usize],
        arch: &Arch,
        aug: Option<(&Augment, &Pca, u64)>,
    ) -> Result<Tensor> {
        self.batch(idx, arch.input[1], &arch.preprocess, aug)
    }
    fn labels(&self, idx: &[usize]) -> Vec<usize> {
        self.label_vec(idx)
    }
    fn view_inputs(&self, idx: &[usize], arch: &Arch, view: usize) -> Result<Tensor> {
        self.view_batch(idx, arch.input[1], &arch.preprocess, view)
    }
}

/// The data a run reads: its training examples, the held-out ones the schedule watches,
/// and the PCA of the training pixels (PCA lighting).
pub struct Data<E = Images> {
    pub train: E,
    pub val: E,
    pub pca: Pca,
}

impl State {
    /// The next step's input `(batch, 3, side, side)` (augmented), labels and dropout seed:
    /// batch `batch_in_epoch` of this epoch's shuffled order.
    pub fn next_batch<E: Examples>(
        &self,
        arch: &Arch,
        data: &Data<E>,
    ) -> Result<(Tensor, Vec<usize>, u64)> {
        let r = &self.recipe;
        let order = epoch_order(data.train.len(), r.seed, self.epoch);
        let b = self.batch_in_epoch;
        let idx = order
            .get(b * r.batch..(b + 1) * r.batch)
            .ok_or_else(|| Error::Training(format!("batch {b} is past the epoch's images")))?;
        let aug = (&r.augment, &data.pca, augment_seed(r.seed, self.epoch));
        let x = data.train.inputs(idx, arch, Some(aug))?;
        Ok((x, data.train.labels(idx), step_seed(r.seed, self.step)))
    }
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
    /// This step's loss.
    pub step_loss: f32,
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
async fn checkpoint(engine: &mut Engine, state: &State, hooks: &mut dyn Hooks) -> Result<()> {
    let model = engine.model().await?;
    let momentum = engine.velocities().await?;
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

/// How one sitting of a run goes: a checkpoint every `checkpoint_every` steps (0: only
/// after each epoch) unless `checkpoints` is off (the page keeps its run in memory), at
/// most `max_steps` steps, time from `clock` (seconds).
pub struct Sitting<'c> {
    pub checkpoint_every: u64,
    pub checkpoints: bool,
    pub max_steps: Option<u64>,
    pub clock: &'c dyn Fn() -> f64,
}

impl Sitting<'_> {
    /// Checkpoints after every epoch only, no step limit, no clock (tests).
    pub fn whole() -> Sitting<'static> {
        Sitting {
            checkpoint_every: 0,
            checkpoints: true,
            max_steps: None,
            clock: &|| 0.0,
        }
    }

    /// At most `steps` steps, no checkpoints, no clock: one request of the page.
    pub fn steps(steps: u64) -> Sitting<'static> {
        Sitting {
            checkpoint_every: 0,
            checkpoints: false,
            max_steps: Some(steps),
            clock: &|| 0.0,
        }
    }
}

/// Runs (or resumes) training until the recipe's epochs are done, the schedule ends it, or
/// the sitting's `max_steps` have been taken. Each epoch ends with [`evaluate`] on
/// `data.val` and the schedule ([`State::end_epoch`]).
pub async fn run<E: Examples>(
    engine: &mut Engine,
    arch: &Arch,
    data: &Data<E>,
    state: &mut State,
    sitting: &Sitting<'_>,
    hooks: &mut dyn Hooks,
) -> Result<()> {
    let Sitting {
        checkpoint_every,
        checkpoints,
        max_steps,
        clock,
    } = *sitting;
    let r = state.recipe.clone();
    let batches = data.train.len() / r.batch.max(1);
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
                if checkpoints {
                    checkpoint(engine, state, hooks).await?;
                }
                return Ok(());
            }
            let (x, labels, seed) = state.next_batch(arch, data)?;
            let t0 = clock();
            let loss = engine.step(&x, &labels, seed).await?;
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
                step_loss: loss,
                images_per_s: rate,
                lr: state.lr,
                batch_size: r.batch,
            });
            if checkpoints && checkpoint_every > 0 && state.step.is_multiple_of(checkpoint_every) {
                checkpoint(engine, state, hooks).await?;
            }
        }
        let (top1, top5) = evaluate(engine, arch, &data.val, r.batch).await?;
        let lr = state.lr;
        hooks.epoch(&state.end_epoch(batches, top1, top5));
        if state.lr != lr {
            engine.set_sgd(state.sgd())?;
        }
        if checkpoints {
            checkpoint(engine, state, hooks).await?;
        }
    }
    Ok(())
}

/// Anything that gives eval-mode logits `(N, classes)` of an input `(N, C, H, W)`: a
/// training [`Engine`], or an inference backend (`backend::Runner`).
pub trait Logits {
    fn logits(&mut self, x: &Tensor) -> impl std::future::Future<Output = Result<Tensor>>;
}

impl Logits for Engine {
    fn logits(&mut self, x: &Tensor) -> impl std::future::Future<Output = Result<Tensor>> {
        Engine::logits(self, x)
    }
}

impl Logits for crate::backend::Runner<'_> {
    fn logits(&mut self, x: &Tensor) -> impl std::future::Future<Output = Result<Tensor>> {
        self.forward(x)
    }
}

/// How many images an evaluation ranked right: their label first (top-1) or within the
/// first five (top-5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    pub images: usize,
    /// Each image centred: (top-1, top-5) correct.
    pub centre: (usize, usize),
    /// The softmax averaged over the paper's ten views (the four corners and the centre,
    /// and their mirrors), where asked for.
    pub ten_views: Option<(usize, usize)>,
}

impl Scores {
    /// `(top-1, top-5)` correct as errors; 1.0 for no images.
    pub fn errors(&self, (top1, top5): (usize, usize)) -> (f64, f64) {
        let n = self.images.max(1) as f64;
        (1.0 - top1 as f64 / n, 1.0 - top5 as f64 / n)
    }

    /// `(top-1, top-5)` correct as accuracies.
    pub fn accuracies(&self, (top1, top5): (usize, usize)) -> (f64, f64) {
        let n = self.images.max(1) as f64;
        (top1 as f64 / n, top5 as f64 / n)
    }
}

/// Top-1 and top-5 error of `net` on `examples` (centred, no augmentation), in batches of
/// `batch`; with `ten_views` also the paper's ten-view errors. 1.0 for no examples.
pub async fn evaluate_views<L: Logits, E: Examples>(
    net: &mut L,
    arch: &Arch,
    examples: &E,
    batch: usize,
    ten_views: bool,
) -> Result<Scores> {
    // (top-1, top-5) correct: centre view, ten views
    let (mut centre, mut ten) = ((0usize, 0usize), (0usize, 0usize));
    let all: Vec<usize> = (0..examples.len()).collect();
    for idx in all.chunks(batch.max(1)) {
        let labels = examples.labels(idx);
        let logits = net.logits(&examples.inputs(idx, arch, None)?).await?;
        let (a, b) = count_correct(&logits, &labels);
        centre = (centre.0 + a, centre.1 + b);
        if ten_views {
            // summed probabilities rank the classes as their mean does; view 4 is the
            // centre, already run
            let mut sum = crate::classify::probabilities(arch, logits)?;
            for view in (0..10).filter(|&v| v != 4) {
                let x = examples.view_inputs(idx, arch, view)?;
                let p = crate::classify::probabilities(arch, net.logits(&x).await?)?;
                sum.data.iter_mut().zip(&p.data).for_each(|(s, v)| *s += v);
            }
            let (a, b) = count_correct(&sum, &labels);
            ten = (ten.0 + a, ten.1 + b);
        }
    }
    Ok(Scores {
        images: examples.len(),
        centre,
        ten_views: ten_views.then_some(ten),
    })
}

/// Top-1 and top-5 error of `net` on `examples` (centred), in batches of `batch`: what the
/// schedule watches after every epoch.
pub async fn evaluate<L: Logits, E: Examples>(
    net: &mut L,
    arch: &Arch,
    examples: &E,
    batch: usize,
) -> Result<(f64, f64)> {
    let s = evaluate_views(net, arch, examples, batch, false).await?;
    Ok(s.errors(s.centre))
}
