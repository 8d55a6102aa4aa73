//! One error type for the whole core. Every path that user input reaches returns
//! `Result<_, Error>`; the CLI prints it as one line and the wasm layer turns it into a
//! `JsError`.

use thiserror::Error;

/// Errors the core can report. Messages are written for the person who gave us the file or
/// image: they say what was wrong and, where it helps, what was expected.
#[derive(Debug, Error)]
pub enum Error {
    #[error("shape mismatch in {what}: expected {expected:?}, got {got:?}")]
    Shape {
        what: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("invalid architecture: {0}")]
    Arch(String),
    #[error("unknown model {0:?}: give a weight file (.onnx, .safetensors) or one of the built-in configs paper, bvlc, torchvision, mini")]
    UnknownModel(String),
    #[error("weight file: {0}")]
    Weights(String),
    #[error("weight {name}: {count} non-finite values (NaN or Inf); the file is corrupt or was saved after training diverged")]
    NonFinite { name: String, count: usize },
    #[error("safetensors: {0}")]
    Safetensors(String),
    #[error("ONNX: {0}")]
    Onnx(String),
    #[error("ONNX node {node:?} ({op}): {msg}")]
    OnnxNode {
        node: String,
        op: String,
        msg: String,
    },
    #[error("image: {0}")]
    Image(String),
    #[error("image is {width}x{height} = {pixels} pixels, over the limit of {limit} pixels; refusing to decode it")]
    ImageTooLarge {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("npy: {0}")]
    Npy(String),
    #[error("no layer named {0:?} in this model (see `alexnet info`)")]
    NoSuchLayer(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The WebGPU backend: no adapter, a limit the adapter cannot meet, a validation or
    /// out-of-memory error reported by the device, a failed readback.
    #[error("WebGPU: {0}")]
    Gpu(String),
    #[error("dataset: {0}")]
    Dataset(String),
    #[error("training: {0}")]
    Training(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
