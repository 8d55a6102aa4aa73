//! One function per layer op: a layer geometry (`model::ConvGeom`, `model::LrnGeom`, ...: the
//! shapes come from `model::geometry`, never recomputed here) plus the buffers in, the
//! [`Dispatch`]es out. The kernels' own headers (`shaders/*.wgsl`) say what each computes and
//! which dispatch it needs; the functions here provide exactly that dispatch and check that
//! every buffer is large enough first (a kernel reading past a buffer would read clamped
//! garbage, not fail).
//!
//! Backward kernels go here too: a function per op that takes the forward's saved buffers
//! (max-pool argmax, LRN scale, dropout seed) and returns its dispatches.

mod backward;
mod forward;

pub use backward::*;
pub use forward::*;

use super::context::{grid, Dispatch, GpuContext, WG};
use super::kernels::Kernel;
use super::params::*;
use crate::error::{Error, Result};
use crate::model::{AvgPoolGeom, ConvGeom};

/// Which convolution kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgo {
    /// `conv_naive.wgsl`: one invocation per output, the fallback and oracle.
    Naive,
    /// `conv_tiled.wgsl`: implicit GEMM with workgroup-memory tiles (the default).
    Tiled,
}

/// Which LRN kernel (forward and backward).
///
/// The default is `Naive`: LRN is memory bound and its 5-channel window is served from cache,
/// so the workgroup-memory version's extra barrier and staging did not pay off anywhere we
/// could measure (`alexnet bench --kernels tiled` vs default, GPU timestamps): bvlc batch 32
/// on an H200 norm1 0.105 vs 0.074 ms, on SwiftShader (mini batch 2) ~138 vs ~5 ms per
/// layer, on lavapipe about equal. LRN is ~1% of a forward either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrnAlgo {
    /// `lrn.wgsl` / `lrn_bwd.wgsl`: one invocation per element, reading its whole window from
    /// global memory; the default and the oracle.
    Naive,
    /// `lrn_tiled.wgsl` / `lrn_bwd_tiled.wgsl`: 32-channel x 64-pixel blocks with their
    /// window halo in workgroup memory (sizes up to 33).
    Tiled,
}

/// The largest LRN size the tiled kernels take (32 channels plus a halo of size - 1 rows in
/// 64 rows of workgroup memory).
pub(super) const LRN_TILED_MAX_SIZE: usize = 33;

/// Which fully connected kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearAlgo {
    /// `linear_gemv.wgsl`: a workgroup per output, split-K inside it.
    Gemv,
    /// `linear_gemm.wgsl`: 64 x 64 tiles.
    Gemm,
}

impl LinearAlgo {
    /// GEMV at batch 1 (a GEMM tile would be 63/64 idle), GEMM above.
    pub fn for_batch(n: usize) -> LinearAlgo {
        if n <= 1 {
            LinearAlgo::Gemv
        } else {
            LinearAlgo::Gemm
        }
    }
}

/// Rows `row0 .. row0 + rows` of a fully connected weight `(OUT, IN)`, in their own buffer.
#[derive(Clone, Copy, Debug)]
pub struct WeightBlock<'a> {
    pub buf: &'a wgpu::Buffer,
    pub row0: usize,
    pub rows: usize,
}

/// Splits `rows` rows of `row_len` f32 into consecutive blocks of at most `max_bytes` each:
/// `(row0, rows)`. fc6's `(4096, 9216)` weight is 151 MB; with 128 MiB bindings (lavapipe,
/// WebGPU's default) it becomes two blocks.
pub fn row_blocks(rows: usize, row_len: usize, max_bytes: u64) -> Result<Vec<(usize, usize)>> {
    let row_bytes = (row_len.max(1) as u64) * 4;
    let per = (max_bytes / row_bytes) as usize;
    if per == 0 {
        return Err(Error::Gpu(format!(
            "one weight row of {row_len} values ({row_bytes} bytes) is over the {max_bytes}-byte \
             binding limit"
        )));
    }
    Ok((0..rows.div_ceil(per))
        .map(|i| (i * per, per.min(rows - i * per)))
        .collect())
}

pub(super) fn need(buf: &wgpu::Buffer, len: usize, what: &str) -> Result<()> {
    if buf.size() < (len as u64) * 4 {
        return Err(Error::Gpu(format!(
            "{what}: buffer of {} bytes, needs {len} values",
            buf.size()
        )));
    }
    Ok(())
}

pub(super) fn max_groups(ctx: &GpuContext) -> u32 {
    ctx.limits.max_compute_workgroups_per_dimension
}

/// A kernel with one invocation per element of its `count`-long output, on the folded 2-D
/// grid every such kernel uses (so no dimension exceeds the workgroup-count limit).
pub(super) fn per_element<P: KernelParams>(
    ctx: &GpuContext,
    kernel: Kernel,
    params: &P,
    buffers: &[&wgpu::Buffer],
    count: usize,
) -> Result<Dispatch> {
    ctx.dispatch(
        kernel,
        params,
        buffers,
        grid(count, WG as usize, max_groups(ctx)),
    )
}

pub(super) fn check_conv(g: &ConvGeom) -> Result<()> {
    if g.groups == 0
        || !g.c_in.is_multiple_of(g.groups)
        || !g.c_out.is_multiple_of(g.groups)
        || g.sh == 0
        || g.sw == 0
    {
        return Err(Error::Arch(format!("conv: invalid geometry {g:?}")));
    }
    Ok(())
}

/// The tiled kernels' workgroup count along one dimension, or `None` past the device's
/// limit (the caller then falls back to the naive kernel, whose grid folds).
pub(super) fn tiles(ctx: &GpuContext, count: usize, tile: usize) -> Option<u32> {
    u32::try_from(count.div_ceil(tile))
        .ok()
        .filter(|&t| t <= max_groups(ctx))
}

// Adaptive average pool forward's and backward's uniform parameters, after checking the
/// geometry.
pub(super) fn avgpool_params(count: usize, g: &AvgPoolGeom) -> Result<AvgPoolParams> {
    if g.oh == 0 || g.ow == 0 || g.h == 0 || g.w == 0 {
        return Err(Error::Arch(format!("avgpool: invalid geometry {g:?}")));
    }
    AvgPoolParams::new(count, g)
}
