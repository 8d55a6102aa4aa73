//! `alexnet export`: the model as .safetensors (ours, f16, or torchvision's keys) or .onnx.

use super::{load, write_file, ModelArg};
use crate::error::{Error, Result};
use crate::io;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(super) struct Args {
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
}

pub(super) fn run(a: Args) -> Result<()> {
    let m = load(&a.model)?;
    let ext = a.out.extension().and_then(|e| e.to_str()).unwrap_or("");
    let bytes = match (ext, a.torchvision_keys, a.f16) {
        ("safetensors", false, false) => io::safetensors::save(&m)?,
        ("safetensors", false, true) => io::safetensors::save_f16(&m)?,
        ("safetensors", true, false) => io::safetensors::save_torchvision(&m)?,
        ("onnx", false, false) => io::onnx::export(&m)?,
        _ => {
            return Err(Error::Usage(format!(
                "cannot export to {:?}: use .safetensors or .onnx (--torchvision-keys or --f16 only with .safetensors, not both)",
                a.out.display().to_string()
            )))
        }
    };
    write_file(&a.out, &bytes)?;
    eprintln!("wrote {} ({} bytes)", a.out.display(), bytes.len());
    Ok(())
}
