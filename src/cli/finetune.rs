//! `alexnet finetune`: a model taught new classes from folders of photos, with the loop the
//! page's "Teach it your classes" runs (`finetune::prepare`, then `train::run`).

use super::{load, write_atomic, ModelArg};
use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::finetune::{self, Depth};
use crate::model::{Model, Params};
use crate::train::{self, EpochLog, Hooks, Progress, State};
use pollster::block_on;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// A class and the folder of its photos, NAME=DIR (at least two; every image file in
    /// DIR is read, a file that is not an image is an error naming it)
    #[arg(long = "class", value_name = "NAME=DIR", required = true, value_parser = class_arg)]
    classes: Vec<(String, PathBuf)>,
    /// How much of the net learns: the new last layer, every fully connected layer, or all
    #[arg(long, value_enum, default_value_t = Depth::Head)]
    depth: Depth,
    /// The fine-tuned model (.safetensors, its classes in the metadata)
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = finetune::Options::default().epochs)]
    epochs: usize,
    #[arg(long, default_value_t = finetune::Options::default().lr)]
    lr: f32,
    /// The largest batch wanted (the plan takes the largest that fits --budget-mb)
    #[arg(long, default_value_t = finetune::Options::default().batch)]
    batch: usize,
    /// Memory the training plan may take, in MB
    #[arg(long, default_value_t = finetune::Options::default().budget_mb)]
    budget_mb: f64,
    /// Seed of the new layer's weights and of the batches and augmentations
    #[arg(long = "train-seed", default_value_t = finetune::Options::default().seed)]
    train_seed: u32,
    /// cpu or gpu (default: gpu on a hardware adapter, else cpu)
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// CPU threads (default: all cores)
    #[arg(long)]
    threads: Option<usize>,
}

fn class_arg(s: &str) -> std::result::Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("{s:?} is not NAME=DIR")),
    }
}

const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif"];

/// The image files of `dir` (by extension, sorted by name), decoded.
fn photos_in(dir: &Path) -> Result<Vec<image::RgbImage>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            crate::preprocess::decode(&bytes)
                .map_err(|e| Error::Image(format!("{}: {e}", p.display())))
        })
        .collect()
}

struct Report;

impl Hooks for Report {
    fn progress(&mut self, _: &Progress) {}
    fn epoch(&mut self, l: &EpochLog) {
        eprintln!(
            "epoch {}: train loss {:.4}, held-out accuracy {:.1}%",
            l.epoch,
            l.train_loss,
            (1.0 - l.val_top1_err) * 100.0
        );
    }
    fn checkpoint(&mut self, _: &Model, _: &Params, _: &State) -> Result<()> {
        Ok(())
    }
}

pub(super) fn run(a: Args) -> Result<()> {
    let base = load(&a.model)?;
    let names: Vec<String> = a.classes.iter().map(|(n, _)| n.clone()).collect();
    // every folder read before anything is printed: a bad photo is the only line
    let folders = a
        .classes
        .iter()
        .map(|(_, dir)| photos_in(dir))
        .collect::<Result<Vec<_>>>()?;
    let counts: Vec<usize> = folders.iter().map(Vec::len).collect();
    let mut photos = Vec::new();
    for (c, imgs) in folders.into_iter().enumerate() {
        photos.extend(imgs.into_iter().map(|img| (img, c)));
    }
    let o = finetune::Options {
        lr: a.lr,
        epochs: a.epochs,
        batch: a.batch,
        budget_mb: a.budget_mb,
        seed: a.train_seed,
        ..finetune::Options::default()
    };
    let mut run = finetune::prepare(&base, &names, photos, a.depth, &o)?;
    for ((name, dir), n) in a.classes.iter().zip(&counts) {
        eprintln!("class {name:?}: {n} photos from {}", dir.display());
    }
    let p = &run.plan;
    eprintln!(
        "fine-tuning {:?} at depth {:?} (frozen: {}), {} photos to learn from and {} held out, \
         batch {}, {} epochs, plan {:.0} MB",
        p.classes,
        p.depth,
        if p.frozen.is_empty() {
            "none".to_string()
        } else {
            p.frozen.join(", ")
        },
        p.train_images,
        p.held_out,
        p.batch,
        p.epochs,
        p.memory.total as f64 / 1e6
    );
    let threads = a.threads.unwrap_or_else(crate::cpu::default_threads);
    let sgd = run.state.sgd();
    let kind = a.backend.unwrap_or_else(BackendKind::native_default);
    let mut engine = super::training_engine(kind, run.model.clone(), None, p.batch, sgd, threads)?;
    engine.set_frozen(&p.frozen)?;
    eprintln!("on the {}", engine.describe());
    let arch = run.model.arch.clone();
    block_on(train::run(
        &mut engine,
        &arch,
        &run.data,
        &mut run.state,
        &train::Sitting::steps(u64::MAX),
        &mut Report,
    ))?;
    let bytes = crate::io::safetensors::save(&block_on(engine.model())?)?;
    write_atomic(&a.out, &bytes)?;
    eprintln!("wrote {} ({} bytes)", a.out.display(), bytes.len());
    Ok(())
}
