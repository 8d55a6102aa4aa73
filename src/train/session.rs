//! A training run held by the page between requests: the page's training demo (the mini
//! net from scratch on the shipped Fashion-MNIST subset) and fine-tuning on a person's
//! photos are both a [`RunSession`], advanced a few steps per request by the one loop
//! ([`super::run`]) on the CPU until the person moves it to WebGPU.

use super::{run, Data, Engine, EpochLog, Examples, Hooks, Init, Progress, Recipe, Sitting, State};
use crate::augment::Augment;
use crate::data::Images;
use crate::error::{Error, Result};
use crate::inspect::{self, Picture};
use crate::model::{Arch, Layer, Model, Params};

/// A run between requests.
pub struct RunSession<E> {
    pub arch: Arch,
    pub data: Data<E>,
    pub state: State,
    pub engine: Engine,
}

/// What one `steps` request did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StepsReport {
    pub step: u64,
    pub epoch: usize,
    pub epochs: usize,
    pub batch_in_epoch: usize,
    pub batches: usize,
    /// Mean loss of the steps this request took.
    pub loss: f64,
    pub lr: f32,
    /// Steps this request took, of `batch` images each.
    pub taken: usize,
    pub batch: usize,
    pub backend: &'static str,
    /// The epochs this request finished (validated on the held-out examples).
    pub finished: Vec<EpochLog>,
    /// The run's epochs are done (or its schedule ended it).
    pub done: bool,
}

/// Collects what a request's steps report.
#[derive(Default)]
struct Collect {
    losses: f64,
    taken: usize,
    finished: Vec<EpochLog>,
}

impl Hooks for Collect {
    fn progress(&mut self, p: &Progress) {
        self.losses += p.step_loss as f64;
        self.taken += 1;
    }
    fn epoch(&mut self, log: &EpochLog) {
        self.finished.push(log.clone());
    }
    fn checkpoint(&mut self, _: &Model, _: &Params, _: &State) -> Result<()> {
        Ok(())
    }
}

impl<E: Examples> RunSession<E> {
    /// Takes up to `n` steps (fewer when the run ends); an epoch that ends among them is
    /// validated and the schedule applied.
    pub async fn steps(&mut self, n: usize) -> Result<StepsReport> {
        let mut c = Collect::default();
        run(
            &mut self.engine,
            &self.arch,
            &self.data,
            &mut self.state,
            &Sitting::steps(n as u64),
            &mut c,
        )
        .await?;
        let s = &self.state;
        Ok(StepsReport {
            step: s.step,
            epoch: s.epoch,
            epochs: s.recipe.epochs,
            batch_in_epoch: s.batch_in_epoch,
            batches: self.data.train.len() / s.recipe.batch.max(1),
            loss: c.losses / c.taken.max(1) as f64,
            lr: s.lr,
            taken: c.taken,
            batch: s.recipe.batch,
            backend: self.engine.kind(),
            finished: c.finished,
            done: s.finished || s.epoch >= s.recipe.epochs,
        })
    }

    /// Moves the run to a new WebGPU device (the weights and frozen layers so far; the
    /// momentum restarts at zero); on an error the CPU run goes on. The adapter's name.
    pub async fn use_gpu(&mut self) -> Result<String> {
        let ctx = crate::gpu::GpuContext::new().await?;
        let name = ctx.report().name;
        let sgd = self.state.sgd();
        self.engine
            .move_to_gpu(ctx, self.state.recipe.batch, sgd)
            .await?;
        Ok(name)
    }

    /// The current weights as safetensors bytes (config and classes in the metadata).
    pub async fn snapshot(&mut self) -> Result<Vec<u8>> {
        crate::io::safetensors::save(&self.engine.model().await?)
    }

    /// The learning rate, momentum and weight decay of the next steps.
    pub fn set_sgd(&mut self, lr: f32, momentum: f32, weight_decay: f32) -> Result<()> {
        let sgd = crate::elementwise::Sgd {
            lr,
            momentum,
            weight_decay,
        };
        sgd.check()?;
        self.state.lr = lr;
        self.state.recipe.momentum = momentum;
        self.state.recipe.weight_decay = weight_decay;
        self.engine.set_sgd(self.state.sgd())
    }

    /// Each augmentation on or off for the next batches.
    pub fn set_augment(&mut self, crops: bool, flips: bool, pca_std: f32) {
        self.state.recipe.augment = Augment {
            crops,
            flips,
            pca_std: pca_std.max(0.0),
        };
    }
}

/// The page's training demo: what a person sets (every field has the paper's default).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DemoOptions {
    pub config: String,
    pub batch: usize,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub dropout: f32,
    pub crops: bool,
    pub flips: bool,
    pub pca_std: f32,
    /// "he" or "paper" (see [`Init`]).
    pub init: String,
    pub seed: u32,
}

impl Default for DemoOptions {
    fn default() -> DemoOptions {
        let r = Recipe::default();
        DemoOptions {
            config: "mini".into(),
            batch: 32,
            lr: r.lr,
            momentum: r.momentum,
            weight_decay: r.weight_decay,
            dropout: 0.5,
            crops: true,
            flips: true,
            pca_std: 0.1,
            init: "he".into(),
            seed: 1,
        }
    }
}

/// A fresh run of `o.config` from the paper's recipe on a training and a test set (IDX
/// bytes, gzipped or not), on the CPU (one thread, as in the browser) until `use_gpu`.
pub fn demo(
    train_images: &[u8],
    train_labels: &[u8],
    test_images: &[u8],
    test_labels: &[u8],
    o: &DemoOptions,
) -> Result<RunSession<Images>> {
    if o.batch == 0 || o.batch > 512 {
        return Err(Error::Training("batch size must be 1..=512".into()));
    }
    if !(0.0..1.0).contains(&o.dropout) {
        return Err(Error::Training("dropout must be in [0, 1)".into()));
    }
    let train = Images::from_idx(train_images, train_labels)?;
    let val = Images::from_idx(test_images, test_labels)?;
    let pca = train.pca();
    let mut arch = Arch::builtin(&o.config)?;
    for l in arch.layers.iter_mut() {
        if let Layer::Dropout(d) = l {
            d.p = o.dropout;
        }
    }
    let init = match o.init.as_str() {
        "paper" => Init::Paper { std: 0.01 },
        _ => Init::He,
    };
    let recipe = Recipe {
        // the page runs until paused; the schedule still divides the rate on plateaus
        epochs: 1_000_000,
        batch: o.batch,
        lr: o.lr,
        momentum: o.momentum,
        weight_decay: o.weight_decay,
        init,
        augment: Augment {
            crops: o.crops,
            flips: o.flips,
            pca_std: o.pca_std,
        },
        patience: 3,
        max_drops: 3,
        seed: o.seed as u64,
    };
    let model = super::init_model(arch.clone(), init, o.seed as u64)?;
    let state = State::new(recipe);
    let engine = Engine::cpu(model, None, state.sgd(), 1)?;
    Ok(RunSession {
        arch,
        data: Data { train, val, pca },
        state,
        engine,
    })
}

/// One test image with its label and the net's prediction.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Example {
    pub label: String,
    pub predicted: String,
    pub probability: f32,
    pub correct: bool,
}

impl RunSession<Images> {
    /// The first `n` test images with their label and the net's prediction, and their
    /// pictures.
    pub async fn examples(&mut self, n: usize) -> Result<(Vec<Example>, Vec<Picture>)> {
        let val = &self.data.val;
        let idx: Vec<usize> = (0..n.min(val.len())).collect();
        let x = val.inputs(&idx, &self.arch, None)?;
        let logits = self.engine.logits(&x).await?;
        let probs = crate::classify::probabilities(&self.arch, logits)?;
        let k = probs.shape[1];
        let labels = val.label_vec(&idx);
        let names = &self.arch.labels;
        let examples = probs
            .data
            .chunks_exact(k)
            .zip(&labels)
            .map(|(row, &label)| {
                let (best, p) = crate::classify::top_k(row, 1)[0];
                Example {
                    label: crate::labels::name(names, label),
                    predicted: crate::labels::name(names, best),
                    probability: p,
                    correct: best == label,
                }
            })
            .collect();
        let pics = idx.iter().map(|&i| inspect::grey_picture(val, i)).collect();
        Ok((examples, pics))
    }

    /// `n` augmented training images as the net gets them (this epoch's draws).
    pub fn samples(&self, n: usize) -> Result<Vec<Picture>> {
        let s = &self.state;
        let r = &s.recipe;
        let order = super::epoch_order(self.data.train.len(), r.seed, s.epoch);
        let idx = &order[..n.min(order.len())];
        let aug = (
            &r.augment,
            &self.data.pca,
            super::augment_seed(r.seed, s.epoch),
        );
        let x = self.data.train.inputs(idx, &self.arch, Some(aug))?;
        Ok((0..idx.len())
            .map(|b| inspect::input_picture(&x, b, &self.arch.preprocess))
            .collect())
    }
}
