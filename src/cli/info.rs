//! `alexnet info`: the layers with their output shapes, parameters and multiply-adds, the
//! preprocessing and the classes.

use super::ModelArg;
use crate::error::Result;
use crate::model::Arch;
use crate::{io, labels};
use std::path::Path;

pub(super) fn run(arg: &ModelArg) -> Result<()> {
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
