//! One function per layer op: a CPU geometry (`cpu::ConvGeom`, `cpu::LrnGeom`, ...: the
//! shapes come from `model.rs`'s rules, never recomputed here) plus the buffers in, the
//! [`Dispatch`]es out. The kernels' own headers (`shaders/*.wgsl`) say what each computes and
//! which dispatch it needs; the functions here provide exactly that dispatch and check that
//! every buffer is large enough first (a kernel reading past a buffer would read clamped
//! garbage, not fail).
//!
//! Backward kernels go here too: a function per op that takes the forward's saved buffers
//! (max-pool argmax, LRN scale, dropout seed) and returns its dispatches.

use super::context::{grid, Dispatch, GpuContext, Params, WG};
use super::kernels::Kernel;
use crate::cpu::{AvgPoolGeom, ConvGeom, LinearGeom, LrnGeom, PoolGeom};
use crate::error::{Error, Result};

/// Which convolution kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgo {
    /// `conv_naive.wgsl`: one invocation per output, the fallback and oracle.
    Naive,
    /// `conv_tiled.wgsl`: implicit GEMM with workgroup-memory tiles (the default).
    Tiled,
}

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

fn need(buf: &wgpu::Buffer, len: usize, what: &str) -> Result<()> {
    if buf.size() < (len as u64) * 4 {
        return Err(Error::Gpu(format!(
            "{what}: buffer of {} bytes, needs {len} values",
            buf.size()
        )));
    }
    Ok(())
}

fn max_groups(ctx: &GpuContext) -> u32 {
    ctx.limits.max_compute_workgroups_per_dimension
}

/// `out = conv(x, w) + bias`, optionally followed by ReLU. Shapes as `cpu::conv`:
/// `x (N, C_in, H, W)`, `w (C_out, C_in/G, KH, KW)`, `bias (C_out)`, `out (N, C_out, OH, OW)`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    ctx: &GpuContext,
    g: &ConvGeom,
    algo: ConvAlgo,
    relu: bool,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    if g.groups == 0
        || !g.c_in.is_multiple_of(g.groups)
        || !g.c_out.is_multiple_of(g.groups)
        || g.sh == 0
        || g.sw == 0
    {
        return Err(Error::Arch(format!("conv: invalid geometry {g:?}")));
    }
    need(x, g.inp_shape().iter().product(), "conv x (N, C_in, H, W)")?;
    need(w, g.weight_shape().iter().product(), "conv weight")?;
    need(bias, g.c_out, "conv bias (C_out)")?;
    let out_len: usize = g.out_shape().iter().product();
    need(out, out_len, "conv out (N, C_out, OH, OW)")?;
    let params = Params::new()
        .u(g.n)
        .u(g.c_in)
        .u(g.h)
        .u(g.w)
        .u(g.c_out)
        .u(g.oh)
        .u(g.ow)
        .u(g.kh)
        .u(g.kw)
        .u(g.sh)
        .u(g.sw)
        .u(g.pads.top)
        .u(g.pads.left)
        .u(g.cin_g())
        .u(g.cout_g())
        .u(g.groups)
        .u(0) // co_base
        .u(relu as usize);
    let (kernel, groups) = match algo {
        ConvAlgo::Naive => (
            Kernel::ConvNaive,
            grid(out_len, WG as usize, max_groups(ctx)),
        ),
        ConvAlgo::Tiled => {
            let cols = g.n * g.oh * g.ow;
            let wg = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
            (
                Kernel::ConvTiled,
                [
                    wg(cols.div_ceil(64)),
                    wg(g.cout_g().div_ceil(64)),
                    wg(g.groups),
                ],
            )
        }
    };
    ctx.dispatch(kernel, &params, &[x, w, bias, out], groups)
}

/// `y = x W^T + b`, optionally followed by ReLU, with W given as row blocks (one dispatch
/// each). Shapes as `cpu::linear`: `x (N, IN)`, `bias (OUT)`, `y (N, OUT)`.
#[allow(clippy::too_many_arguments)]
pub fn linear(
    ctx: &GpuContext,
    g: &LinearGeom,
    algo: LinearAlgo,
    relu: bool,
    x: &wgpu::Buffer,
    blocks: &[WeightBlock<'_>],
    bias: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    need(x, g.n * g.in_features, "linear x (N, IN)")?;
    need(bias, g.out_features, "linear bias (OUT)")?;
    need(y, g.n * g.out_features, "linear y (N, OUT)")?;
    let covered: usize = blocks.iter().map(|b| b.rows).sum();
    if covered != g.out_features
        || blocks
            .iter()
            .scan(0, |next, b| {
                let ok = b.row0 == *next;
                *next += b.rows;
                Some(ok)
            })
            .any(|ok| !ok)
    {
        return Err(Error::Gpu(format!(
            "linear: weight blocks must cover rows 0..{} in order",
            g.out_features
        )));
    }
    blocks
        .iter()
        .map(|b| {
            need(
                b.buf,
                b.rows * g.in_features,
                "linear weight block (rows, IN)",
            )?;
            let params = Params::new()
                .u(g.n)
                .u(g.in_features)
                .u(g.out_features)
                .u(b.row0)
                .u(b.rows)
                .u(relu as usize);
            let (kernel, groups) = match algo {
                LinearAlgo::Gemv => {
                    let [gx, gy, _] = grid(b.rows, 1, max_groups(ctx));
                    let n = u32::try_from(g.n).unwrap_or(u32::MAX);
                    (Kernel::LinearGemv, [gx, gy, n])
                }
                LinearAlgo::Gemm => {
                    let wg = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
                    (
                        Kernel::LinearGemm,
                        [wg(g.n.div_ceil(64)), wg(b.rows.div_ceil(64)), 1],
                    )
                }
            };
            ctx.dispatch(kernel, &params, &[x, b.buf, bias, y], groups)
        })
        .collect()
}

/// `y = max(x, 0)` over `count` elements.
pub fn relu(
    ctx: &GpuContext,
    count: usize,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    need(x, count, "relu x")?;
    need(y, count, "relu y")?;
    ctx.dispatch(
        Kernel::Relu,
        &Params::new().u(count),
        &[x, y],
        grid(count, WG as usize, max_groups(ctx)),
    )
}

/// LRN across channels; writes `out` and the saved `scale` (all `(N, C, H, W)`).
pub fn lrn(
    ctx: &GpuContext,
    g: &LrnGeom,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
    scale: &wgpu::Buffer,
) -> Result<Dispatch> {
    let count = g.n * g.c * g.hw;
    if g.size == 0 || g.c == 0 {
        return Err(Error::Arch(format!("lrn: invalid geometry {g:?}")));
    }
    need(x, count, "lrn x")?;
    need(out, count, "lrn out")?;
    need(scale, count, "lrn scale")?;
    let params = Params::new()
        .u(count)
        .u(g.c)
        .u(g.hw)
        .u(g.size)
        .f(g.alpha_eff)
        .f(g.beta)
        .f(g.k);
    ctx.dispatch(
        Kernel::Lrn,
        &params,
        &[x, out, scale],
        grid(count, WG as usize, max_groups(ctx)),
    )
}

/// Max pool; writes `out` and the saved `argmax` (u32 flat input indices), `(N, C, OH, OW)`.
pub fn maxpool(
    ctx: &GpuContext,
    g: &PoolGeom,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
    argmax: &wgpu::Buffer,
) -> Result<Dispatch> {
    let count: usize = g.out_shape().iter().product();
    need(x, g.inp_shape().iter().product(), "maxpool x")?;
    need(out, count, "maxpool out")?;
    need(argmax, count, "maxpool argmax")?;
    let params = Params::new()
        .u(count)
        .u(g.h)
        .u(g.w)
        .u(g.oh)
        .u(g.ow)
        .u(g.kh)
        .u(g.kw)
        .u(g.sh)
        .u(g.sw)
        .u(g.pad_top)
        .u(g.pad_left);
    ctx.dispatch(
        Kernel::MaxPool,
        &params,
        &[x, out, argmax],
        grid(count, WG as usize, max_groups(ctx)),
    )
}

/// Adaptive average pool, `(N, C, H, W) -> (N, C, OH, OW)`.
pub fn avgpool(
    ctx: &GpuContext,
    g: &AvgPoolGeom,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    let count: usize = g.out_shape().iter().product();
    if g.oh == 0 || g.ow == 0 || g.h == 0 || g.w == 0 {
        return Err(Error::Arch(format!("avgpool: invalid geometry {g:?}")));
    }
    need(x, g.inp_shape().iter().product(), "avgpool x")?;
    need(out, count, "avgpool out")?;
    let params = Params::new().u(count).u(g.h).u(g.w).u(g.oh).u(g.ow);
    ctx.dispatch(
        Kernel::AvgPool,
        &params,
        &[x, out],
        grid(count, WG as usize, max_groups(ctx)),
    )
}

/// The uniform parameters of a training-mode dropout: rewrite them per step with
/// `GpuContext::set_params` to change the seed.
pub fn dropout_params(count: usize, p: f32, seed: u32) -> Result<Params> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::Arch(format!("dropout: p = {p} must be in [0, 1)")));
    }
    // the same f32 scale as cpu::dropout_forward, so kept values match bit for bit
    let scale = 1.0 / (1.0 - p);
    Ok(Params::new().u(count).u(seed as usize).f(p).f(scale))
}

/// Training-mode dropout over `count` elements with the mask of `cpu::dropout_keep(seed, i, p)`.
pub fn dropout(
    ctx: &GpuContext,
    count: usize,
    p: f32,
    seed: u32,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    need(x, count, "dropout x")?;
    need(y, count, "dropout y")?;
    ctx.dispatch(
        Kernel::Dropout,
        &dropout_params(count, p, seed)?,
        &[x, y],
        grid(count, WG as usize, max_groups(ctx)),
    )
}

/// Row-wise softmax of `x (N, K)` into `y (N, K)`.
pub fn softmax(
    ctx: &GpuContext,
    n: usize,
    k: usize,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    if k == 0 {
        return Err(Error::Arch("softmax over 0 features".into()));
    }
    need(x, n * k, "softmax x")?;
    need(y, n * k, "softmax y")?;
    ctx.dispatch(
        Kernel::Softmax,
        &Params::new().u(n).u(k),
        &[x, y],
        grid(n, 1, max_groups(ctx)),
    )
}
