//! The `alexnet` command line (native only): info, classify, run, export. Every error is
//! printed as one line and the exit status is 1; usage errors exit 2 (clap).

use crate::backend::{BackendKind, Runner};
use crate::classify;
use crate::error::{Error, Result};
use crate::gpu::model::GpuOptions;
use crate::gpu::ops::{ConvAlgo, LrnAlgo};
use crate::model::Arch;
use crate::model::Model;
use crate::{io, labels, npy};
use clap::{Parser, Subcommand};
use pollster::block_on;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "alexnet",
    version,
    about = "AlexNet (Krizhevsky, Sutskever, Hinton 2012): inspect, run and classify"
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
    #[arg(long)]
    backend: Option<String>,
}

impl BackendArg {
    fn kind(&self) -> Result<BackendKind> {
        match &self.backend {
            Some(b) => b.parse(),
            None => Ok(BackendKind::native_default()),
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
    Classify {
        #[command(flatten)]
        model: ModelArg,
        #[command(flatten)]
        backend: BackendArg,
        /// Average the softmax over the paper's 10 crops (4 corners + centre, and mirrors)
        #[arg(long)]
        tta: bool,
        /// How many classes to print
        #[arg(long, default_value_t = 5)]
        top: usize,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Run the network on a raw (N, C, H, W) float32 .npy tensor and write the output as .npy
    Run {
        #[command(flatten)]
        model: ModelArg,
        #[command(flatten)]
        backend: BackendArg,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        /// Return this layer's output instead of the last (e.g. fc7 for the 4096-d features)
        #[arg(long)]
        layer: Option<String>,
    },
    /// Time the forward pass per layer and in total (median of several runs)
    Bench {
        #[command(flatten)]
        model: ModelArg,
        #[command(flatten)]
        backend: BackendArg,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Measured runs after one warm-up
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Only the total, without the per-layer breakdown
        #[arg(long)]
        total_only: bool,
        /// Time a whole training step (forward, loss, backward, SGD update) instead of a
        /// forward
        #[arg(long)]
        train: bool,
        /// GPU kernels: default (what the app runs: tiled conv, naive LRN), tiled (every
        /// workgroup-memory kernel) or naive (one invocation per output: the oracles), to
        /// compare them
        #[arg(long, default_value = "default")]
        kernels: String,
    },
    /// List the GPU adapters wgpu finds (Vulkan natively), saying which are software
    Adapters,
    /// Train with the paper's recipe (SGD momentum 0.9, weight decay 5e-4, lr 0.01 / 10 on
    /// plateaus, dropout, crops, flips, PCA lighting); checkpoints as it goes and resumes
    Train(crate::train_cli::TrainArgs),
    /// Top-1 and top-5 error on a dataset's test images
    Eval {
        #[command(flatten)]
        model: ModelArg,
        #[command(flatten)]
        backend: BackendArg,
        /// fashion-mnist (the 10,000 test images)
        #[arg(long)]
        dataset: String,
        /// Where the dataset's IDX files are
        #[arg(long, default_value = crate::data::FASHION_MNIST_DIR)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Also the paper's test-time error: softmax averaged over ten views of each image
        /// (the four corners and the centre of the canvas, and their mirrors)
        #[arg(long)]
        ten_crop: bool,
        /// Also add the results to this JSON file (e.g. the training record OUT.json)
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Write the model as .safetensors (config in the metadata) or .onnx
    Export {
        #[command(flatten)]
        model: ModelArg,
        /// Output file; the format follows the extension
        #[arg(long)]
        out: PathBuf,
        /// With .safetensors and a torchvision model: torchvision's key names
        /// (features.0.weight ...) so PyTorch's load_state_dict takes it
        #[arg(long)]
        torchvision_keys: bool,
        /// With .safetensors: store the tensors as half precision (F16), half the bytes (the
        /// app's embedded model ships this way); loads back as f32 everywhere
        #[arg(long)]
        f16: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_vulkan_loader();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alexnet: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Info { model } => info(&model),
        Cmd::Bench {
            model,
            backend,
            batch,
            runs,
            total_only,
            train,
            kernels,
        } => {
            if batch == 0 {
                return Err(Error::Other("--batch must be at least 1".into()));
            }
            let m = load(&model)?;
            let (conv, lrn) = match kernels.as_str() {
                "default" => (None, None),
                "tiled" => (Some(ConvAlgo::Tiled), Some(LrnAlgo::Tiled)),
                "naive" => (Some(ConvAlgo::Naive), Some(LrnAlgo::Naive)),
                other => {
                    return Err(Error::Other(format!(
                        "unknown --kernels {other:?}: use default, tiled or naive"
                    )))
                }
            };
            let opts = crate::bench::Options {
                batch,
                runs,
                per_layer: !total_only,
                train,
                gpu: GpuOptions {
                    conv,
                    lrn,
                    ..GpuOptions::default()
                },
            };
            let t0 = std::time::Instant::now();
            let clock = move || t0.elapsed().as_secs_f64();
            let report = block_on(crate::bench::run(&m, backend.kind()?, opts, &clock))?;
            print!("{}", report.render(&m)?);
            Ok(())
        }
        Cmd::Adapters => {
            let all = crate::gpu::native_adapters();
            if all.is_empty() {
                println!("no GPU adapter found (install a Vulkan driver; mesa-vulkan-drivers gives the lavapipe software adapter)");
            }
            for a in all {
                let kind = if a.software {
                    "software: a CPU emulating a GPU"
                } else {
                    "hardware"
                };
                println!(
                    "{} ({}, {}, {}) [{kind}]",
                    a.name, a.backend, a.device_type, a.driver
                );
            }
            Ok(())
        }
        Cmd::Classify {
            model,
            backend,
            tta,
            top,
            images,
        } => {
            let m = load(&model)?;
            if top == 0 {
                return Err(Error::Other("--top must be at least 1".into()));
            }
            let mut runner = block_on(Runner::new(&m, backend.kind()?))?;
            println!("backend: {}", runner.describe());
            let mut failed = 0;
            for path in &images {
                match std::fs::read(path)
                    .map_err(|e| Error::io(path, e))
                    .and_then(|b| classify::prepare_input(&m, &b, tta))
                    .and_then(|x| block_on(runner.forward(&x)))
                    .and_then(|out| classify::rank(&m, out, top))
                {
                    Ok(preds) => {
                        println!("{}", path.display());
                        for p in preds {
                            println!(
                                "  {:>7.3}%  {:>4}  {}",
                                p.probability * 100.0,
                                p.index,
                                p.label
                            );
                        }
                    }
                    Err(e) => {
                        // One bad image does not stop the others.
                        eprintln!("alexnet: error: {}: {e}", path.display());
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                return Err(Error::Other(format!(
                    "{failed} of {} images failed",
                    images.len()
                )));
            }
            Ok(())
        }
        Cmd::Run {
            model,
            backend,
            input,
            output,
            layer,
        } => {
            let m = load(&model)?;
            let x = npy::read(&read_file(&input)?)?;
            let mut runner = block_on(Runner::new(&m, backend.kind()?))?;
            let y = match layer {
                Some(l) => block_on(runner.forward_to(&x, &l))?,
                None => block_on(runner.forward(&x))?,
            };
            write_file(&output, &npy::write(&y)?)?;
            eprintln!(
                "wrote {} {:?} ({})",
                output.display(),
                y.shape,
                runner.describe()
            );
            Ok(())
        }
        Cmd::Train(args) => crate::train_cli::train(&args),
        Cmd::Eval {
            model,
            backend,
            dataset,
            data_dir,
            batch,
            ten_crop,
            json,
        } => {
            let m = load(&model)?;
            crate::train_cli::eval(
                m,
                backend.kind()?,
                &dataset,
                &data_dir,
                batch,
                ten_crop,
                json.as_deref(),
            )
        }
        Cmd::Export {
            model,
            out,
            torchvision_keys,
            f16,
        } => {
            let m = load(&model)?;
            let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
            let bytes = match (ext, torchvision_keys, f16) {
                ("safetensors", false, false) => io::safetensors::save(&m)?,
                ("safetensors", false, true) => io::safetensors::save_f16(&m)?,
                ("safetensors", true, false) => io::safetensors::save_torchvision(&m)?,
                ("onnx", false, false) => io::onnx::export(&m)?,
                _ => {
                    return Err(Error::Other(format!(
                        "cannot export to {:?}: use .safetensors or .onnx (--torchvision-keys or --f16 only with .safetensors, not both)",
                        out.display().to_string()
                    )))
                }
            };
            write_file(&out, &bytes)?;
            eprintln!("wrote {} ({} bytes)", out.display(), bytes.len());
            Ok(())
        }
    }
}

fn read_file(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Error::io(p, e))
}

fn write_file(p: &Path, b: &[u8]) -> Result<()> {
    std::fs::write(p, b).map_err(|e| Error::io(p, e))
}

/// A file path, else a built-in config (with --seed for random weights).
fn load(arg: &ModelArg) -> Result<Model> {
    let path = Path::new(&arg.model);
    if path.exists() {
        if arg.seed.is_some() {
            return Err(Error::Other(
                "--seed is only for built-in configs, not weight files".into(),
            ));
        }
        return io::load_path(path);
    }
    let arch = Arch::builtin(&arg.model)?;
    match arg.seed {
        Some(seed) => Model::random(arch, seed),
        None => Err(Error::Other(format!(
            "the built-in {:?} config has no weights: give a weight file, or --seed N for seeded random weights",
            arg.model
        ))),
    }
}

fn info(arg: &ModelArg) -> Result<()> {
    let path = Path::new(&arg.model);
    let (arch, source) = if path.exists() {
        (
            io::load_path(path)?.arch,
            format!("file {}", path.display()),
        )
    } else {
        (
            Arch::builtin(&arg.model)?,
            format!("built-in config {:?}", arg.model),
        )
    };
    let rows = arch.summary()?;
    let [c, h, w] = arch.input;
    println!("model: {source}");
    println!("family: {}", arch.family.as_str());
    println!("input: (N, {c}, {h}, {w})");
    println!();
    println!(
        "{:<10} {:<8} {:<18} {:>12} {:>15}  settings",
        "layer", "op", "output (C,H,W)", "params", "mult-adds"
    );
    for r in &rows {
        let shape = r
            .output
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x");
        let line = format!(
            "{:<10} {:<8} {:<18} {:>12} {:>15}  {}",
            r.name,
            r.kind,
            shape,
            group(r.params),
            group(r.macs),
            r.settings
        );
        println!("{}", line.trim_end());
    }
    let macs = arch.macs()?;
    println!();
    println!("parameters: {}", group(arch.param_count()));
    println!(
        "multiply-adds per image: {} ({:.3} G)",
        group(macs),
        macs as f64 / 1e9
    );
    let pp = &arch.preprocess;
    println!(
        "preprocessing: shorter side to {}, centre crop {}x{}, {:?} order, value = (pixel * {} - mean) / std, mean {:?}, std {:?}",
        pp.resize, pp.crop, pp.crop, pp.channel_order, pp.scale, pp.mean, pp.std
    );
    let names = labels::names(&arch.labels);
    println!(
        "classes: {} ({} ...)",
        names.len(),
        names.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// 60965224 -> "60,965,224"
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
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
