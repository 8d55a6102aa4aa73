//! Weight files in and out. `load_bytes` picks the format from the content, so a file's
//! name never decides how it is parsed.

pub mod onnx;
pub mod safetensors;

use crate::error::{Error, Result};
use crate::model::Model;

/// The formats we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Onnx,
    Safetensors,
}

/// Guesses the format from the first bytes: safetensors starts with a little-endian u64
/// header length followed by `{`; an ONNX ModelProto starts with a protobuf field key.
pub fn sniff(bytes: &[u8]) -> Result<Format> {
    if bytes.len() >= 9 && bytes[8] == b'{' {
        return Ok(Format::Safetensors);
    }
    // ModelProto fields: ir_version (1, varint -> 0x08), opset_import (8 -> 0x42),
    // producer_name (2 -> 0x12), graph (7 -> 0x3a), ...
    if matches!(
        bytes.first(),
        Some(0x08 | 0x12 | 0x1a | 0x22 | 0x2a | 0x32 | 0x3a | 0x42)
    ) {
        return Ok(Format::Onnx);
    }
    Err(Error::Weights(
        "not a weight file we know: expected ONNX (.onnx) or safetensors (.safetensors)".into(),
    ))
}

/// Loads a model from the bytes of an ONNX or safetensors file.
pub fn load_bytes(bytes: &[u8]) -> Result<Model> {
    match sniff(bytes)? {
        Format::Onnx => onnx::import(bytes),
        Format::Safetensors => safetensors::load(bytes),
    }
}

/// Loads a model file from disk (native only: the browser hands us bytes).
#[cfg(not(target_arch = "wasm32"))]
pub fn load_path(path: &std::path::Path) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_bytes(&bytes)
}
