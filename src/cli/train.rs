//! `alexnet train`: the command-line side of [`crate::train`] (datasets from disk, the
//! progress line, checkpoint files, the backend choice) around the one training loop.

use super::{default_data_dir, write_atomic, Dataset};
use crate::augment::Augment;
use crate::backend::BackendKind;
use crate::data::Images;
use crate::error::{Error, Result};
use crate::io;
use crate::model::Arch;
use crate::model::{Model, Params};
use crate::train::{self, Data, EpochLog, Hooks, Init, Progress, Recipe, State};
use pollster::block_on;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the weights start (`train::Init`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum InitChoice {
    /// Weights N(0, 0.01), biases 1 in conv2/4/5 and the hidden fc layers (the paper's)
    Paper,
    /// Weights N(0, 2 / fan_in), biases 0: what a small net needs (see src/train/mod.rs)
    He,
}

#[derive(clap::Args)]
pub(super) struct Args {
    /// The built-in config to train from scratch (mini is the app's embedded model)
    #[arg(long, default_value = "mini")]
    config: String,
    /// The training images (fashion-mnist: 60,000; --val of them held out for the schedule)
    #[arg(long, value_enum)]
    dataset: Dataset,
    /// Where the dataset's IDX files are
    #[arg(long, default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
    /// Epochs at most (default 30); with --resume, extends or shortens the checkpoint's run
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    #[arg(long, default_value_t = 0.0005)]
    weight_decay: f32,
    /// How the weights start
    #[arg(long, value_enum, default_value_t = InitChoice::Paper)]
    init: InitChoice,
    /// Standard deviation of the PCA lighting coefficients (the paper: 0.1; 0 turns it off)
    #[arg(long, default_value_t = 0.1)]
    pca_std: f32,
    /// No random placement (crops)
    #[arg(long)]
    no_crops: bool,
    /// No horizontal flips
    #[arg(long)]
    no_flips: bool,
    /// Epochs without a better validation error before the learning rate is divided by 10
    #[arg(long, default_value_t = 2)]
    patience: usize,
    /// How many times the learning rate may be divided; one more plateau ends the run
    #[arg(long, default_value_t = 3)]
    max_drops: usize,
    /// Training images held out as the validation set the schedule watches
    #[arg(long, default_value_t = 5000)]
    val: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The trained model (.safetensors), written when the run ends
    #[arg(long)]
    out: PathBuf,
    /// Checkpoint file (default: OUT with .ckpt.safetensors)
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Steps between checkpoints (one is also written after every epoch)
    #[arg(long, default_value_t = 100)]
    checkpoint_every: u64,
    /// Continue from the checkpoint (its recipe; only --epochs may change it)
    #[arg(long)]
    resume: bool,
    /// Stop after this many steps in this sitting (a checkpoint is written; --resume goes on)
    #[arg(long)]
    max_steps: Option<u64>,
    /// cpu (the fast CPU backend) or gpu (WebGPU kernels on Vulkan). Default: gpu on a
    /// hardware adapter, else cpu
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// CPU threads (default: all cores)
    #[arg(long)]
    threads: Option<usize>,
    /// Write a PNG of 64 augmented training images (epoch 1's first) and exit
    #[arg(long)]
    show_augmented: Option<PathBuf>,
}

fn load_data(dataset: Dataset, dir: &Path, val: usize) -> Result<Data> {
    let Dataset::FashionMnist = dataset;
    let mut train = Images::fashion_mnist(dir, true)?;
    let val = train.split_off(val)?;
    let pca = train.pca();
    Ok(Data { train, val, pca })
}

fn recipe(a: &Args) -> Recipe {
    let init = match a.init {
        InitChoice::Paper => Init::Paper { std: 0.01 },
        InitChoice::He => Init::He,
    };
    Recipe {
        epochs: a.epochs.unwrap_or(30),
        batch: a.batch as usize,
        lr: a.lr,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        init,
        augment: Augment {
            crops: !a.no_crops,
            flips: !a.no_flips,
            pca_std: a.pca_std,
        },
        patience: a.patience,
        max_drops: a.max_drops,
        seed: a.seed,
    }
}

struct CliHooks {
    checkpoint: PathBuf,
    last_print: Instant,
}

impl Hooks for CliHooks {
    fn progress(&mut self, p: &Progress) {
        if self.last_print.elapsed().as_secs_f64() < 0.5 && p.batch != p.batches {
            return;
        }
        self.last_print = Instant::now();
        let width = 24;
        let done = p.batch * width / p.batches.max(1);
        let eta = if p.images_per_s > 0.0 {
            let left = ((p.batches - p.batch) * p.batch_size) as f64 / p.images_per_s;
            format!(" ~{left:.0} s left in the epoch")
        } else {
            String::new()
        };
        let _ = write!(
            std::io::stderr(),
            "\repoch {}/{} [{}{}] {}/{} loss {:.4} {:.0} img/s lr {}{eta}   ",
            p.epoch + 1,
            p.epochs,
            "#".repeat(done),
            ".".repeat(width - done),
            p.batch,
            p.batches,
            p.loss,
            p.images_per_s,
            p.lr,
        );
    }

    fn epoch(&mut self, l: &EpochLog) {
        eprintln!(
            "\repoch {}: train loss {:.4}, validation top-1 error {:.2}%, top-5 {:.2}%, lr {}, \
             {:.0} s                                        ",
            l.epoch,
            l.train_loss,
            l.val_top1_err * 100.0,
            l.val_top5_err * 100.0,
            l.lr,
            l.seconds
        );
    }

    fn checkpoint(&mut self, model: &Model, momentum: &Params, state: &State) -> Result<()> {
        let json = serde_json::to_string(state)
            .map_err(|e| Error::Training(format!("cannot write the state: {e}")))?;
        let bytes = io::safetensors::save_checkpoint(model, momentum, &json)?;
        write_atomic(&self.checkpoint, &bytes)
    }
}

pub(super) fn run(a: &Args) -> Result<()> {
    let ckpt = a.checkpoint.clone().unwrap_or_else(|| {
        let stem = a
            .out
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model");
        a.out.with_file_name(format!("{stem}.ckpt.safetensors"))
    });
    let t = Instant::now();
    let data = load_data(a.dataset, &a.data_dir, a.val)?;
    eprintln!(
        "{}: {} training and {} validation images of {}x{} (read in {:.1} s); RGB PCA \
         eigenvalues {:?}",
        a.dataset.name(),
        data.train.len(),
        data.val.len(),
        data.train.height,
        data.train.width,
        t.elapsed().as_secs_f64(),
        data.pca.values
    );
    let (model, momentum, mut state) = if a.resume {
        let bytes = std::fs::read(&ckpt).map_err(|e| Error::io(&ckpt, e))?;
        let (model, momentum, json) = io::safetensors::load_checkpoint(&bytes)?;
        let mut state: State = serde_json::from_str(&json)
            .map_err(|e| Error::Training(format!("{}: bad state: {e}", ckpt.display())))?;
        if let Some(e) = a.epochs {
            state.recipe.epochs = e;
            state.finished = state.finished && state.epoch >= e;
        }
        eprintln!(
            "resuming {} at epoch {}, batch {} (step {}, lr {})",
            ckpt.display(),
            state.epoch + 1,
            state.batch_in_epoch,
            state.step,
            state.lr
        );
        (model, Some(momentum), state)
    } else {
        let r = recipe(a);
        let arch = Arch::builtin(&a.config)?;
        let model = train::init_model(arch, r.init, r.seed)?;
        let mut state = State::new(r);
        state.command = std::env::args().collect::<Vec<_>>().join(" ");
        (model, None, state)
    };
    if let Some(path) = &a.show_augmented {
        return show_augmented(&model.arch, &data, &state.recipe, path);
    }
    let arch = model.arch.clone();
    let threads = a.threads.unwrap_or_else(crate::cpu::default_threads);
    let kind = a.backend.unwrap_or_else(BackendKind::native_default);
    let mut engine = super::training_engine(
        kind,
        model,
        momentum,
        state.recipe.batch,
        state.sgd(),
        threads,
    )?;
    eprintln!(
        "training {} ({} parameters) on the {}: {:?}",
        arch.family.as_str(),
        arch.param_count(),
        engine.describe(),
        state.recipe
    );
    let mut hooks = CliHooks {
        checkpoint: ckpt.clone(),
        last_print: Instant::now(),
    };
    let start = Instant::now();
    let clock = move || start.elapsed().as_secs_f64();
    let sitting = train::Sitting {
        checkpoint_every: a.checkpoint_every,
        checkpoints: true,
        max_steps: a.max_steps,
        clock: &clock,
    };
    block_on(train::run(
        &mut engine,
        &arch,
        &data,
        &mut state,
        &sitting,
        &mut hooks,
    ))?;
    // the model so far and its record, whether the run finished or stopped for now
    let bytes = io::safetensors::save(&block_on(engine.model())?)?;
    write_atomic(&a.out, &bytes)?;
    let record = a.out.with_extension("json");
    let best = state
        .history
        .iter()
        .map(|l| l.val_top1_err)
        .fold(f64::INFINITY, f64::min);
    let json = serde_json::json!({
        "command": state.command,
        "last_invocation": std::env::args().collect::<Vec<_>>().join(" "),
        "finished": state.finished,
        "epochs": state.history.len(),
        "steps": state.step,
        "best_val_top1_err": if best.is_finite() { Some(best) } else { None },
        "recipe": state.recipe,
        "history": state.history,
    });
    write_atomic(&record, json.to_string().as_bytes())?;
    if state.finished {
        eprintln!(
            "done after {} epochs; best validation top-1 error {:.2}%; wrote {} ({} bytes) and {}",
            state.history.len(),
            best * 100.0,
            a.out.display(),
            bytes.len(),
            record.display()
        );
    } else {
        eprintln!(
            "\nstopped after --max-steps at epoch {}, batch {}; wrote the model so far to {} and \
             {}; checkpoint {} (continue with --resume)",
            state.epoch + 1,
            state.batch_in_epoch,
            a.out.display(),
            record.display(),
            ckpt.display()
        );
    }
    Ok(())
}

/// A PNG grid of 64 augmented training images as the network gets them (normalisation
/// undone), 3x enlarged.
fn show_augmented(arch: &Arch, data: &Data, r: &Recipe, path: &Path) -> Result<()> {
    let side = arch.input[1];
    let order = train::epoch_order(data.train.len(), r.seed, 0);
    let idx = &order[..64.min(order.len())];
    let seed = train::augment_seed(r.seed, 0);
    let x = data.train.batch(
        idx,
        side,
        &arch.preprocess,
        Some((&r.augment, &data.pca, seed)),
    )?;
    let pp = &arch.preprocess;
    let (cols, zoom, gap) = (8usize, 3usize, 2usize);
    let rows = idx.len().div_ceil(cols);
    let cell = side * zoom + gap;
    let mut img = image::RgbImage::from_pixel(
        (cols * cell) as u32,
        (rows * cell) as u32,
        image::Rgb([255, 255, 255]),
    );
    for (b, _) in idx.iter().enumerate() {
        let (x0, y0) = ((b % cols) * cell, (b / cols) * cell);
        for y in 0..side * zoom {
            for xx in 0..side * zoom {
                let mut px = [0u8; 3];
                for (c, p) in px.iter_mut().enumerate() {
                    let v = x.data[((b * 3 + c) * side + y / zoom) * side + xx / zoom];
                    let raw = (v * pp.std[c] + pp.mean[c]) / pp.scale;
                    *p = raw.round().clamp(0.0, 255.0) as u8;
                }
                img.put_pixel((x0 + xx) as u32, (y0 + y) as u32, image::Rgb(px));
            }
        }
    }
    img.save(path)
        .map_err(|e| Error::Image(format!("{}: {e}", path.display())))?;
    eprintln!(
        "wrote {} ({} augmented images: {:?})",
        path.display(),
        idx.len(),
        r.augment
    );
    Ok(())
}
