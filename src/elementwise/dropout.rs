//! Inverted dropout with a mask regenerated from `(seed, index)`, never stored.
//!
//! Forward (training):  `out[i] = keep(seed, i) ? inp[i] / (1 - p) : 0`.
//! Backward (training): `dinp[i] = keep(seed, i) ? dout[i] / (1 - p) : 0`.
//! At inference dropout is the identity (the network does not call these then).
//! `i` is the flat element index into the whole `(N, F)` (or any-shaped) tensor.
//!
//! The mask uses only u32 arithmetic so a WGSL kernel computes the identical mask:
//! ```text
//! pcg_hash(v) : state = v * 747796405 + 2891336453            (wrapping u32)
//!               word  = ((state >> ((state >> 28) + 4)) ^ state) * 277803737
//!               return (word >> 22) ^ word
//! h       = pcg_hash(index ^ pcg_hash(seed))
//! u       = f32(h >> 8) * 2^-24                                (exact: 24 bits, in [0, 1))
//! keep    = u >= p
//! ```
//! (`pcg_hash` is the PCG-RXS-M-XS hash of Jarzynski and Olano, "Hash Functions for GPU
//! Rendering", JCGT 2020.) The per-layer `seed` is a u32 the host derives from the training
//! step's u64 seed and the layer's index with `dropout_layer_seed`.

use crate::error::{Error, Result};
use crate::tensor::check_len;
use crate::tensor::splitmix64;

/// PCG-RXS-M-XS 32-bit hash (see the module doc); a bijection on u32.
pub fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// Whether element `index` is kept: `f32(pcg_hash(index ^ pcg_hash(seed)) >> 8) * 2^-24 >= p`.
pub fn dropout_keep(seed: u32, index: u32, p: f32) -> bool {
    let h = pcg_hash(index ^ pcg_hash(seed));
    let u = (h >> 8) as f32 * (1.0 / 16_777_216.0);
    u >= p
}

/// The u32 seed of the dropout layer at `layer_index` for a training step seeded with
/// `seed`: the low 32 bits of `splitmix64(seed ^ splitmix64(layer_index))`. Computed on the
/// host; shaders receive the u32.
pub fn dropout_layer_seed(seed: u64, layer_index: usize) -> u32 {
    splitmix64(seed ^ splitmix64(layer_index as u64)) as u32
}

fn check_p(p: f32, len: usize) -> Result<()> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::Arch(format!("dropout: p = {p} must be in [0, 1)")));
    }
    if len > u32::MAX as usize {
        return Err(Error::TooLarge("dropout's tensor".into()));
    }
    Ok(())
}

/// Training-mode forward: `out = mask * inp / (1 - p)`.
pub fn dropout_forward(p: f32, seed: u32, inp: &[f32], out: &mut [f32]) -> Result<()> {
    check_p(p, inp.len())?;
    check_len(
        "dropout_forward: out (same as inp)",
        out.len(),
        &[inp.len()],
    )?;
    let scale = 1.0 / (1.0 - p);
    for (i, (o, &x)) in out.iter_mut().zip(inp).enumerate() {
        *o = if dropout_keep(seed, i as u32, p) {
            x * scale
        } else {
            0.0
        };
    }
    Ok(())
}

/// Training-mode backward: `dinp = mask * dout / (1 - p)` with the same `(p, seed)`.
pub fn dropout_backward(p: f32, seed: u32, dout: &[f32], dinp: &mut [f32]) -> Result<()> {
    dropout_forward(p, seed, dout, dinp)
}
