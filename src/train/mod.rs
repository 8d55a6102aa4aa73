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

pub mod engine;
pub mod run;
pub mod session;

pub use engine::{first_rows, pad_batch, CpuEngine, Engine, GpuEngine};
pub use run::{
    evaluate, evaluate_views, run, Data, Examples, Hooks, Logits, Progress, Scores, Sitting,
};

use crate::augment::Augment;
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
    let named = |conv: bool| -> Vec<&str> {
        arch.layers
            .iter()
            .filter_map(|l| match l {
                Layer::Conv(c) if conv => Some(c.name.as_str()),
                Layer::Linear(f) if !conv => Some(f.name.as_str()),
                _ => None,
            })
            .collect()
    };
    let (convs, fcs) = (named(true), named(false));
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
