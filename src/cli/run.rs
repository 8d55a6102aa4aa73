//! `alexnet run`: the network (or a prefix of it) on a raw `(N, C, H, W)` .npy tensor.

use super::{load, read_file, write_file, NetArg};
use crate::error::Result;
use crate::npy;
use pollster::block_on;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    net: NetArg,
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    output: PathBuf,
    /// Return this layer's output instead of the last (e.g. fc7 for the 4096-d features)
    #[arg(long)]
    layer: Option<String>,
}

pub(super) fn run(a: Args) -> Result<()> {
    let m = load(&a.net.model)?;
    let x = npy::read(&read_file(&a.input)?)?;
    let mut runner = a.net.backend.runner(&m)?;
    let y = match &a.layer {
        Some(l) => block_on(runner.forward_to(&x, l))?,
        None => block_on(runner.forward(&x))?,
    };
    super::note_fallback(&runner);
    write_file(&a.output, &npy::write(&y)?)?;
    eprintln!(
        "wrote {} {:?} ({})",
        a.output.display(),
        y.shape,
        runner.describe()
    );
    Ok(())
}
