//! The `alexnet` command line (native only), one file per command; each converts its
//! arguments and calls the core's use case (`classify`, `train::run`, `finetune`, `bench`,
//! ...), the same code the page runs. Every error is printed as one line: exit status 1 for
//! an error of the run, 2 for arguments clap refuses (also on one line, naming the values
//! it takes).

mod adapters;
mod bench;
mod classify;
mod eval;
mod export;
mod finetune;
mod info;
mod run;
mod train;

use crate::backend::{BackendKind, Runner};
use crate::error::{Error, Result};
use crate::io;
use crate::model::{Arch, Model};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "alexnet",
    version,
    about = "AlexNet (Krizhevsky, Sutskever, Hinton 2012): inspect, run, classify, train and fine-tune"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct ModelArg {
    /// A weight file (.onnx, .safetensors) or a built-in config: paper, bvlc, torchvision, mini
    #[arg(long, short)]
    model: String,
    /// Use seeded random weights for a built-in config (for tests and benchmarks)
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(clap::Args)]
struct BackendArg {
    /// ref (the plain CPU reference), cpu (the fast CPU backend) or gpu (WebGPU kernels;
    /// Vulkan natively). Default: gpu on a hardware adapter, else cpu (a software adapter is
    /// slower than the CPU)
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
}

/// A network and the backend it runs on.
#[derive(clap::Args)]
struct NetArg {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    backend: BackendArg,
}

impl BackendArg {
    fn kind(&self) -> BackendKind {
        self.backend.unwrap_or_else(BackendKind::native_default)
    }

    /// The backend asked for, else the default for this machine's adapters (a default GPU
    /// that fails leaves the run on the CPU, with a note on stderr saying why).
    fn runner<'m>(&self, model: &'m Model) -> Result<Runner<'m>> {
        pollster::block_on(Runner::choose(
            model,
            self.backend,
            &crate::gpu::native_adapters(),
        ))
    }
}

/// The training engine `kind` names for `model` (and its momentum from a checkpoint), for
/// `train` and `finetune`; the reference is the forward oracle, too slow to train on.
fn training_engine(
    kind: BackendKind,
    model: Model,
    momentum: Option<crate::model::Params>,
    batch: usize,
    sgd: crate::elementwise::Sgd,
    threads: usize,
) -> Result<crate::train::Engine> {
    use crate::train::Engine;
    match kind {
        BackendKind::Gpu => {
            let ctx = pollster::block_on(crate::gpu::GpuContext::new())?;
            pollster::block_on(Engine::gpu(ctx, &model, momentum.as_ref(), batch, sgd))
        }
        BackendKind::Cpu => Engine::cpu(model, momentum, sgd, threads),
        BackendKind::Reference => Err(Error::Usage(
            "training runs on cpu or gpu (ref is the forward oracle only)".into(),
        )),
    }
}

/// A note on stderr when a run moved from the GPU to the CPU.
fn note_fallback(runner: &Runner) {
    if let Some(why) = runner.fell_back() {
        eprintln!("alexnet: note: {why}");
    }
}

/// The datasets `train` and `eval` read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Dataset {
    /// Fashion-MNIST (Debian's dataset-fashion-mnist, or the subset the page ships)
    FashionMnist,
}

impl Dataset {
    fn name(self) -> &'static str {
        match self {
            Dataset::FashionMnist => "fashion-mnist",
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the layers with their output shapes, parameters, multiply-adds and preprocessing
    Info {
        #[command(flatten)]
        model: ModelArg,
    },
    /// Top-K classes for each image
    Classify(classify::Args),
    /// Run the network on a raw (N, C, H, W) float32 .npy tensor and write the output as .npy
    Run(run::Args),
    /// Time the forward pass per layer and in total (median of several runs)
    Bench(bench::Args),
    /// List the GPU adapters wgpu finds (Vulkan natively), saying which are software
    Adapters,
    /// Train with the paper's recipe (SGD momentum 0.9, weight decay 5e-4, lr 0.01 / 10 on
    /// plateaus, dropout, crops, flips, PCA lighting); checkpoints as it goes and resumes
    Train(train::Args),
    /// Top-1 and top-5 error on a dataset's test images
    Eval(eval::Args),
    /// Teach a model new classes from folders of photos (the page's "Teach it your
    /// classes"): a new last layer, trained at the chosen depth with the paper's crops,
    /// flips and PCA lighting
    Finetune(finetune::Args),
    /// Write the model as .safetensors (config in the metadata) or .onnx
    Export(export::Args),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprintln!("alexnet: error: {}", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
        // --help and --version
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    quiet_vulkan_loader();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alexnet: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// clap's message on one line: its lines joined, without the "error:" prefix and the
/// pointer to --help.
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("; ")
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Info { model } => info::run(&model),
        Cmd::Classify(a) => classify::run(a),
        Cmd::Run(a) => run::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Adapters => adapters::run(),
        Cmd::Train(a) => train::run(&a),
        Cmd::Eval(a) => eval::run(a),
        Cmd::Finetune(a) => finetune::run(a),
        Cmd::Export(a) => export::run(a),
    }
}

fn read_file(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Error::io(p, e))
}

fn write_file(p: &Path, b: &[u8]) -> Result<()> {
    std::fs::write(p, b).map_err(|e| Error::io(p, e))
}

/// Writes `bytes` to `path` through a temporary file, so a crash never leaves half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A file path, else a built-in config (with --seed for random weights).
fn load(arg: &ModelArg) -> Result<Model> {
    let path = Path::new(&arg.model);
    if path.exists() {
        if arg.seed.is_some() {
            return Err(Error::Usage(
                "--seed is only for built-in configs, not weight files".into(),
            ));
        }
        return io::load_path(path);
    }
    let arch = Arch::builtin(&arg.model)?;
    match arg.seed {
        Some(seed) => Model::random(arch, seed),
        None => Err(Error::Usage(format!(
            "the built-in {:?} config has no weights: give a weight file, or --seed N for seeded random weights",
            arg.model
        ))),
    }
}

/// The default directory of a dataset's files.
fn default_data_dir() -> PathBuf {
    PathBuf::from(crate::data::FASHION_MNIST_DIR)
}

/// Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on every adapter
/// query when the variable is missing (containers, CI, ssh sessions). That noise would break
/// our one-line error contract, so give the process a private 0700 runtime dir instead.
fn quiet_vulkan_loader() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let user = std::env::var("USER").unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("alexnet-runtime-{user}"));
    #[cfg(unix)]
    let made = {
        use std::os::unix::fs::DirBuilderExt;
        dir.is_dir() || std::fs::DirBuilder::new().mode(0o700).create(&dir).is_ok()
    };
    #[cfg(not(unix))]
    let made = dir.is_dir() || std::fs::create_dir(&dir).is_ok();
    if made {
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}
