//! `alexnet bench`: per-layer and total times of a forward or a training step
//! (`crate::bench`, which the browser bench page runs too).

use super::{load, NetArg};
use crate::error::Result;
use crate::gpu::ops::{ConvAlgo, LrnAlgo};
use crate::gpu::plan::GpuOptions;
use pollster::block_on;

/// Which GPU kernels a benchmark runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Kernels {
    /// What the app runs: tiled conv, naive LRN
    Default,
    /// Every workgroup-memory kernel
    Tiled,
    /// One invocation per output: the oracles
    Naive,
}

#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    net: NetArg,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Measured runs after one warm-up
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only the total, without the per-layer breakdown
    #[arg(long)]
    total_only: bool,
    /// Time a whole training step (forward, loss, backward, SGD update) instead of a forward
    #[arg(long)]
    train: bool,
    /// GPU kernels, to compare them
    #[arg(long, value_enum, default_value_t = Kernels::Default)]
    kernels: Kernels,
}

pub(super) fn run(a: Args) -> Result<()> {
    let m = load(&a.net.model)?;
    let (conv, lrn) = match a.kernels {
        Kernels::Default => (None, None),
        Kernels::Tiled => (Some(ConvAlgo::Tiled), Some(LrnAlgo::Tiled)),
        Kernels::Naive => (Some(ConvAlgo::Naive), Some(LrnAlgo::Naive)),
    };
    let opts = crate::bench::Options {
        batch: a.batch as usize,
        runs: a.runs,
        per_layer: !a.total_only,
        train: a.train,
        gpu: GpuOptions {
            conv,
            lrn,
            ..GpuOptions::default()
        },
    };
    let t0 = std::time::Instant::now();
    let clock = move || t0.elapsed().as_secs_f64();
    let report = block_on(crate::bench::run(&m, a.net.backend.kind(), opts, &clock))?;
    print!("{}", report.render(&m)?);
    Ok(())
}
