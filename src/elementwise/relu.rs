//! Rectified linear unit, elementwise on any shape.
//!
//! Forward:  `out[i] = max(inp[i], 0)`.
//! Backward: `dinp[i] = dout[i]` if `inp[i] > 0`, else `0` (the subgradient at 0 is taken as 0,
//! as PyTorch does). `out[i] > 0` iff `inp[i] > 0`, so either buffer may be passed as `inp`.

use crate::error::Result;
use crate::tensor::check_len;

/// `out = max(inp, 0)`; `inp` and `out` have the same length.
pub fn relu_forward(inp: &[f32], out: &mut [f32]) -> Result<()> {
    check_len("relu_forward: out (same as inp)", out.len(), &[inp.len()])?;
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = if x > 0.0 { x } else { 0.0 };
    }
    Ok(())
}

/// `dinp = dout * [inp > 0]`.
pub fn relu_backward(dout: &[f32], inp: &[f32], dinp: &mut [f32]) -> Result<()> {
    check_len(
        "relu_backward: inp (same as dout)",
        inp.len(),
        &[dout.len()],
    )?;
    check_len(
        "relu_backward: dinp (same as dout)",
        dinp.len(),
        &[dout.len()],
    )?;
    for ((d, &g), &x) in dinp.iter_mut().zip(dout).zip(inp) {
        *d = if x > 0.0 { g } else { 0.0 };
    }
    Ok(())
}
