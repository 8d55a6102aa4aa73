//! The forward ops: one function per layer op, its dispatches from the layer's geometry.

use super::*;
use crate::error::{Error, Result};
use crate::gpu::context::{grid, Dispatch, GpuContext, WG};
use crate::gpu::kernels::Kernel;
use crate::gpu::params::*;
use crate::model::{AvgPoolGeom, ConvGeom, LinearGeom, LrnGeom, PoolGeom};

/// `out = conv(x, w) + bias`, optionally followed by ReLU. Shapes as `reference::conv`:
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
    check_conv(g)?;
    need(x, g.inp_shape().iter().product(), "conv x (N, C_in, H, W)")?;
    need(w, g.weight_shape().iter().product(), "conv weight")?;
    need(bias, g.c_out, "conv bias (C_out)")?;
    let out_len: usize = g.out_shape().iter().product();
    need(out, out_len, "conv out (N, C_out, OH, OW)")?;
    let params = ConvParams {
        co_base: 0,
        relu: relu as u32,
        ..ConvParams::new(g)?
    };
    let (kernel, groups) = match algo {
        ConvAlgo::Naive => (
            Kernel::ConvNaive,
            grid(out_len, WG as usize, max_groups(ctx)),
        ),
        ConvAlgo::Tiled => match (
            tiles(ctx, g.n * g.oh * g.ow, TILE as usize),
            tiles(ctx, g.cout_g(), TILE as usize),
            tiles(ctx, g.groups, 1),
        ) {
            (Some(x), Some(y), Some(z)) => (Kernel::ConvTiled, [x, y, z]),
            // past the per-dimension workgroup limit: the naive kernel's grid folds
            _ => (
                Kernel::ConvNaive,
                grid(out_len, WG as usize, max_groups(ctx)),
            ),
        },
    };
    ctx.dispatch(kernel, &params, &[x, w, bias, out], groups)
}

/// `y = x W^T + b`, optionally followed by ReLU, with W given as row blocks (one dispatch
/// each). Shapes as `reference::linear`: `x (N, IN)`, `bias (OUT)`, `y (N, OUT)`.
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
            let params = LinearParams {
                batch: u32_of(g.n)?,
                in_f: u32_of(g.in_features)?,
                out_total: u32_of(g.out_features)?,
                row0: u32_of(b.row0)?,
                rows: u32_of(b.rows)?,
                relu: relu as u32,
            };
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
                        [
                            wg(g.n.div_ceil(TILE as usize)),
                            wg(b.rows.div_ceil(TILE as usize)),
                            1,
                        ],
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
    per_element(ctx, Kernel::Relu, &CountParams::new(count)?, &[x, y], count)
}

/// LRN across channels; writes `out` and the saved `scale` (all `(N, C, H, W)`).
pub fn lrn(
    ctx: &GpuContext,
    g: &LrnGeom,
    algo: LrnAlgo,
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
    let params = LrnParams::new(count, g)?;
    match lrn_blocks(ctx, g, algo) {
        Some(groups) => ctx.dispatch(Kernel::LrnTiled, &params, &[x, out, scale], groups),
        None => per_element(ctx, Kernel::Lrn, &params, &[x, out, scale], count),
    }
}

/// The tiled LRN kernels' workgroup counts, or `None` where the naive kernel runs (asked
/// for, a window over 33 channels, or a grid past the device's limit).
pub(super) fn lrn_blocks(ctx: &GpuContext, g: &LrnGeom, algo: LrnAlgo) -> Option<[u32; 3]> {
    if algo != LrnAlgo::Tiled || g.size > LRN_TILED_MAX_SIZE {
        return None;
    }
    Some([
        tiles(ctx, g.hw, LRN_PIX as usize)?,
        tiles(ctx, g.c, LRN_CHANNELS as usize)?,
        tiles(ctx, g.n, 1)?,
    ])
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
    let params = PoolParams::new(count, g)?;
    per_element(ctx, Kernel::MaxPool, &params, &[x, out, argmax], count)
}

/// Adaptive average pool, `(N, C, H, W) -> (N, C, OH, OW)`.
pub fn avgpool(
    ctx: &GpuContext,
    g: &AvgPoolGeom,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    let count: usize = g.out_shape().iter().product();
    let params = avgpool_params(count, g)?;
    need(x, g.inp_shape().iter().product(), "avgpool x")?;
    need(out, count, "avgpool out")?;
    per_element(ctx, Kernel::AvgPool, &params, &[x, out], count)
}

/// The uniform parameters of a training-mode dropout: rewrite them per step with
/// `GpuContext::set_params` to change the seed.
pub fn dropout_params(count: usize, p: f32, seed: u32) -> Result<DropoutParams> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::Arch(format!("dropout: p = {p} must be in [0, 1)")));
    }
    // the same f32 scale as elementwise::dropout_forward, so kept values match bit for bit
    let scale = 1.0 / (1.0 - p);
    Ok(DropoutParams {
        count: u32_of(count)?,
        seed,
        p,
        scale,
    })
}

/// Training-mode dropout over `count` elements with the mask of `elementwise::dropout_keep(seed, i, p)`.
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
    per_element(
        ctx,
        Kernel::Dropout,
        &dropout_params(count, p, seed)?,
        &[x, y],
        count,
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
        &SoftmaxParams {
            rows: u32_of(n)?,
            k: u32_of(k)?,
            inv_n: 0.0,
        },
        &[x, y],
        grid(n, 1, max_groups(ctx)),
    )
}
