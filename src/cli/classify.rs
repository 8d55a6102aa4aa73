//! `alexnet classify`: the top-K classes of each image; one bad image is reported and the
//! others go on.

use super::{load, NetArg};
use crate::classify;
use crate::error::{Error, Result};
use pollster::block_on;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    net: NetArg,
    /// Average the softmax over the paper's 10 crops (4 corners + centre, and mirrors)
    #[arg(long)]
    tta: bool,
    /// How many classes to print
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    top: u64,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub(super) fn run(a: Args) -> Result<()> {
    let m = load(&a.net.model)?;
    let top = a.top as usize;
    let mut runner = a.net.backend.runner(&m)?;
    println!("backend: {}", runner.describe());
    let mut failed = 0;
    for path in &a.images {
        match std::fs::read(path)
            .map_err(|e| Error::io(path, e))
            .and_then(|b| classify::prepare_input(&m, &b, a.tta))
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
                let e = Error::InFile {
                    path: path.display().to_string(),
                    source: Box::new(e),
                };
                // A lone image's error is the command's one line; one bad image among
                // several does not stop the others.
                if a.images.len() == 1 {
                    return Err(e);
                }
                eprintln!("alexnet: error: {e}");
                failed += 1;
            }
        }
    }
    super::note_fallback(&runner);
    if failed > 0 {
        return Err(Error::Failed {
            failed,
            total: a.images.len(),
        });
    }
    Ok(())
}
