//! `alexnet train` and `alexnet eval`: the command-line side of [`crate::train`] (datasets
//! from disk, the progress line, checkpoint files, the backend choice).

use crate::augment::Augment;
use crate::backend::{BackendKind, Runner};
use crate::data::{Images, FASHION_MNIST_DIR};
use crate::error::{Error, Result};
use crate::io;
use crate::model::Arch;
use crate::model::{Model, Params};
use crate::train::{self, Data, Engine, EpochLog, Hooks, Init, Progress, Recipe, State};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The built-in config to train from scratch (mini is the app's embedded model)
    #[arg(long, default_value = "mini")]
    config: String,
    /// fashion-mnist (60,000 training images; --val of them held out for the schedule)
    #[arg(long)]
    dataset: String,
    /// Where the dataset's IDX files are
    #[arg(long, default_value = FASHION_MNIST_DIR)]
    data_dir: PathBuf,
    /// Epochs at most (default 30); with --resume, extends or shortens the checkpoint's run
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    #[arg(long, default_value_t = 0.0005)]
    weight_decay: f32,
    /// paper (weights N(0, 0.01), biases 1 in conv2/4/5 and the hidden fc layers) or he
    /// (N(0, 2 / fan_in), biases 0: what a small net needs, see src/train.rs)
    #[arg(long, default_value = "paper")]
    init: String,
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
    #[arg(long)]
    backend: Option<String>,
    /// CPU threads (default: all cores)
    #[arg(long)]
    threads: Option<usize>,
    /// Write a PNG of 64 augmented training images (epoch 1's first) and exit
    #[arg(long)]
    show_augmented: Option<PathBuf>,
}

fn load_data(dataset: &str, dir: &Path, val: usize) -> Result<Data> {
    if dataset != "fashion-mnist" {
        return Err(Error::Dataset(format!(
            "unknown dataset {dataset:?}: the one supported is fashion-mnist"
        )));
    }
    let mut train = Images::fashion_mnist(dir, true)?;
    let val = train.split_off(val)?;
    let pca = train.pca();
    Ok(Data { train, val, pca })
}

fn recipe(a: &TrainArgs) -> Result<Recipe> {
    let init = match a.init.as_str() {
        "paper" => Init::Paper { std: 0.01 },
        "he" => Init::He,
        other => {
            return Err(Error::Other(format!(
                "unknown --init {other:?}: use paper or he"
            )))
        }
    };
    if a.batch == 0 {
        return Err(Error::Other("--batch must be at least 1".into()));
    }
    Ok(Recipe {
        epochs: a.epochs.unwrap_or(30),
        batch: a.batch,
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
    })
}

fn backend_kind(b: &Option<String>) -> Result<BackendKind> {
    match b {
        Some(b) => b.parse(),
        None => Ok(BackendKind::native_default()),
    }
}

fn engine(
    kind: BackendKind,
    model: Model,
    momentum: Option<crate::model::Params>,
    state: &State,
    threads: usize,
) -> Result<Box<dyn Engine>> {
    Ok(match kind {
        BackendKind::Gpu => {
            let ctx = pollster::block_on(crate::gpu::GpuContext::new())?;
            Box::new(train::GpuEngine::new(
                ctx,
                &model,
                momentum.as_ref(),
                state.recipe.batch,
                state.sgd(),
            )?)
        }
        BackendKind::Cpu => Box::new(train::CpuEngine::new(
            model,
            momentum,
            state.sgd(),
            threads,
        )?),
        BackendKind::Reference => {
            return Err(Error::Other(
                "training runs on cpu or gpu (ref is the forward oracle only)".into(),
            ))
        }
    })
}

/// Writes `bytes` to `path` through a temporary file, so a crash never leaves half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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

pub fn train(a: &TrainArgs) -> Result<()> {
    let ckpt = a.checkpoint.clone().unwrap_or_else(|| {
        let stem = a
            .out
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model");
        a.out.with_file_name(format!("{stem}.ckpt.safetensors"))
    });
    let t = Instant::now();
    let data = load_data(&a.dataset, &a.data_dir, a.val)?;
    eprintln!(
        "{}: {} training and {} validation images of {}x{} (read in {:.1} s); RGB PCA \
         eigenvalues {:?}",
        a.dataset,
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
        let r = recipe(a)?;
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
    let mut engine = engine(backend_kind(&a.backend)?, model, momentum, &state, threads)?;
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
        max_steps: a.max_steps,
        clock: &clock,
    };
    train::run(
        engine.as_mut(),
        &arch,
        &data,
        &mut state,
        &sitting,
        &mut hooks,
    )?;
    // the model so far and its record, whether the run finished or stopped for now
    let bytes = io::safetensors::save(&engine.model()?)?;
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
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    eprintln!(
        "wrote {} ({} augmented images: {:?})",
        path.display(),
        idx.len(),
        r.augment
    );
    Ok(())
}

/// Prints the top-1 and top-5 error on the test set (each image centred); with `ten_crop`
/// also the paper's test-time error (softmax averaged over the ten views of
/// [`crate::augment::test_view`]). With `json`, also adds them to that file's JSON object (a
/// training record from `alexnet train`), creating it if needed.
pub fn eval(
    model: Model,
    kind: BackendKind,
    dataset: &str,
    dir: &Path,
    batch: usize,
    ten_crop: bool,
    json: Option<&Path>,
) -> Result<()> {
    if dataset != "fashion-mnist" {
        return Err(Error::Dataset(format!(
            "unknown dataset {dataset:?}: the one supported is fashion-mnist"
        )));
    }
    let test = Images::fashion_mnist(dir, false)?;
    let t = Instant::now();
    let mut runner = pollster::block_on(Runner::new(&model, kind))?;
    let (side, pp) = (model.arch.input[1], &model.arch.preprocess);
    // (top-1, top-5) correct: centre view, ten views
    let (mut centre, mut ten) = ((0usize, 0usize), (0usize, 0usize));
    let all: Vec<usize> = (0..test.len()).collect();
    for idx in all.chunks(batch.max(1)) {
        let labels = test.label_vec(idx);
        let logits = pollster::block_on(runner.forward(&test.batch(idx, side, pp, None)?))?;
        let (a, b) = train::count_correct(&logits, &labels);
        centre = (centre.0 + a, centre.1 + b);
        if ten_crop {
            // summed probabilities rank the classes as their mean does
            let mut sum = crate::classify::to_probabilities_of(&model.arch, logits)?;
            for view in (0..10).filter(|&v| v != 4) {
                let x = test.view_batch(idx, side, pp, view)?;
                let p = crate::classify::to_probabilities_of(
                    &model.arch,
                    pollster::block_on(runner.forward(&x))?,
                )?;
                sum.data.iter_mut().zip(&p.data).for_each(|(s, v)| *s += v);
            }
            let (a, b) = train::count_correct(&sum, &labels);
            ten = (ten.0 + a, ten.1 + b);
        }
    }
    let n = test.len() as f64;
    let line = |what: &str, (top1, top5): (usize, usize)| {
        println!(
            "{dataset} test set, {} images on {}, {what}: top-1 error {:.2}% (accuracy {:.2}%), \
             top-5 error {:.2}%",
            test.len(),
            runner.describe(),
            (1.0 - top1 as f64 / n) * 100.0,
            top1 as f64 / n * 100.0,
            (1.0 - top5 as f64 / n) * 100.0,
        )
    };
    line("centred", centre);
    if ten_crop {
        line("ten views averaged", ten);
    }
    println!("({:.1} s)", t.elapsed().as_secs_f64());
    let (top1, top5) = centre;
    if let Some(path) = json {
        let mut record: serde_json::Value = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Other(format!("{}: not JSON: {e}", path.display())))?,
            Err(_) => serde_json::json!({}),
        };
        let obj = record
            .as_object_mut()
            .ok_or_else(|| Error::Other(format!("{}: not a JSON object", path.display())))?;
        obj.insert("test_dataset".into(), dataset.into());
        obj.insert("test_images".into(), test.len().into());
        obj.insert("test_top1_accuracy".into(), (top1 as f64 / n).into());
        obj.insert("test_top5_accuracy".into(), (top5 as f64 / n).into());
        if ten_crop {
            obj.insert(
                "test_top1_accuracy_10view".into(),
                (ten.0 as f64 / n).into(),
            );
            obj.insert(
                "test_top5_accuracy_10view".into(),
                (ten.1 as f64 / n).into(),
            );
        } else {
            // a centred-only eval must not leave an older model's ten-view numbers behind
            obj.remove("test_top1_accuracy_10view");
            obj.remove("test_top5_accuracy_10view");
        }
        obj.insert("test_backend".into(), runner.describe().into());
        write_atomic(path, record.to_string().as_bytes())?;
    }
    Ok(())
}
