//! What a training-mode forward keeps for its backward: the contract every backend's
//! training pass shares (the fast CPU backend returns the reference's `Trace`, and the GPU
//! regenerates the same dropout masks from the same seeds).

use crate::tensor::Tensor;

/// Whether dropout is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Inference: dropout is the identity.
    Eval,
    /// Training: dropout layer `i` uses the mask of `elementwise::dropout_layer_seed(seed, i)`.
    Train { seed: u64 },
}

/// What one layer's forward saved for its backward (besides its input and output, which
/// the trace always keeps).
#[derive(Clone, Debug, PartialEq)]
pub enum Saved {
    /// Nothing beyond input and output.
    Nothing,
    /// Max pool: flat input index of each output's maximum, `(N, C, OH, OW)`.
    Argmax(Vec<u32>),
    /// LRN: `k + alpha_eff * sum a^2`, `(N, C, H, W)`.
    LrnScale(Vec<f32>),
    /// Dropout in training mode: the u32 seed its mask was drawn with.
    DropoutSeed(u32),
}

/// A forward pass kept for backward: `acts[0]` is the input, `acts[i + 1]` the output of
/// layer `i`, `saved[i]` what layer `i` saved. Covers the first `saved.len()` layers.
#[derive(Clone, Debug)]
pub struct Trace {
    pub mode: Mode,
    pub acts: Vec<Tensor>,
    pub saved: Vec<Saved>,
}

impl Trace {
    /// The last computed activation.
    pub fn output(&self) -> &Tensor {
        // acts always holds at least the input
        &self.acts[self.acts.len() - 1]
    }
}
