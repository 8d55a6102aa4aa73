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
    /// A flat buffer whose length does not fit the shape asked of it.
    #[error("{what}: {len} values where the shape needs {want}")]
    Length {
        what: String,
        len: usize,
        want: usize,
    },
    /// A training label outside the model's classes.
    #[error("label {label} of example {index} is out of range: the model has {classes} classes")]
    Label {
        label: usize,
        index: usize,
        classes: usize,
    },
    /// An index a request gave (a layer, an image of a batch) outside what exists.
    #[error("{what} {index} is out of range 0..{len}")]
    OutOfRange {
        what: String,
        index: usize,
        len: usize,
    },
    /// A size this implementation cannot index (u32 element indices, as the GPU's).
    #[error("{0} is too large: element indices must fit in 32 bits")]
    TooLarge(String),
    /// Something that cannot be drawn as asked (`inspect`).
    #[error("cannot draw {0}")]
    Draw(String),
    /// A command-line argument or option value that cannot be used as given.
    #[error("{0}")]
    Usage(String),
    /// What went wrong with one of the files a command was given.
    #[error("{path}: {source}")]
    InFile {
        path: String,
        #[source]
        source: Box<Error>,
    },
    /// Some of a batch of images failed (each with its own error already reported).
    #[error("{failed} of {total} images failed")]
    Failed { failed: usize, total: usize },
    /// A JSON file we read or update that is not what it should be.
    #[error("{path}: {msg}")]
    Json { path: String, msg: String },
    /// A broken promise between two parts of the core (a bug, not bad input).
    #[error("internal error, please report it: {0}")]
    Internal(String),
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
