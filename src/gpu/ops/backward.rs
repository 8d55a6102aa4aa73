//! The backward ops and the optimiser.
//!
//! Every backward kernel is a gather: one invocation per element of the gradient it writes
//! (WGSL has no float atomics). Each writes its gradient (never accumulates), except
//! `linear_backward`'s dx across weight blocks, which its own dispatches chain in order.

use super::*;
use crate::error::{Error, Result};
use crate::gpu::context::{grid, Dispatch, GpuContext, WG};
use crate::gpu::kernels::Kernel;
use crate::gpu::params::*;
use crate::model::{AvgPoolGeom, ConvGeom, LinearGeom, LrnGeom, PoolGeom};

/// Convolution gradients, as `reference::conv2d_backward`: `dx (N, C_in, H, W)` from
/// `dout (N, C_out, OH, OW)` and `w`; `dw (C_out, C_in/G, KH, KW)` from `dout` and the
/// forward's input `x`; `db (C_out)`. Data, weight and bias dispatches, independent of
/// each other (the tiled weight gradient may add a split-K reduction).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    ctx: &GpuContext,
    g: &ConvGeom,
    algo: ConvAlgo,
    dout: &wgpu::Buffer,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
    dw: &wgpu::Buffer,
    db: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let mut ds = vec![conv2d_backward_data(ctx, g, algo, dout, w, dx)?];
    ds.extend(conv2d_backward_params(ctx, g, algo, dout, x, dw, db)?);
    Ok(ds)
}

/// The input-gradient kernel for a layer when `preferred` is asked for: the tiled
/// transposed conv only at stride 1 (with stride s all but 1/s^2 of its taps are zeros), and
/// on a software adapter only with at least 64 input channels per group (its tile rows):
/// there mini's conv2 with 32 measured 1.3x slower than the gather on lavapipe, conv3 with 128
/// 1.4x faster. A hardware GPU takes the tiles at any width (a CPU emulating a GPU pays
/// more for workgroup memory and barriers than for the wasted rows). Otherwise the gather.
pub fn conv_backward_data_algo(ctx: &GpuContext, g: &ConvGeom, preferred: ConvAlgo) -> ConvAlgo {
    let wide_enough = g.cin_g() >= 64 || !ctx.report().software;
    if g.sh == 1 && g.sw == 1 && wide_enough {
        preferred
    } else {
        ConvAlgo::Naive
    }
}

/// Only `dx` of [`conv2d_backward`] (one dispatch).
pub fn conv2d_backward_data(
    ctx: &GpuContext,
    g: &ConvGeom,
    algo: ConvAlgo,
    dout: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    check_conv(g)?;
    let in_len: usize = g.inp_shape().iter().product();
    need(
        dout,
        g.out_shape().iter().product(),
        "conv dout (N, C_out, OH, OW)",
    )?;
    need(w, g.weight_shape().iter().product(), "conv weight")?;
    need(dx, in_len, "conv dx (N, C_in, H, W)")?;
    let tiled = match algo {
        ConvAlgo::Tiled => tiles(ctx, g.n * g.h * g.w, TILE as usize)
            .zip(tiles(ctx, g.cin_g(), TILE as usize))
            .zip(tiles(ctx, g.groups, 1)),
        ConvAlgo::Naive => None,
    };
    match tiled {
        Some(((x, y), z)) => ctx.dispatch(
            Kernel::ConvBwdDataTiled,
            &ConvParams::new(g)?,
            &[dout, w, dx],
            [x, y, z],
        ),
        None => ctx.dispatch(
            Kernel::ConvBwdData,
            &ConvParams::new(g)?,
            &[dout, w, dx],
            grid(in_len, WG as usize, max_groups(ctx)),
        ),
    }
}

/// Splits of the tiled weight gradient's reduction over `cols = N*OH*OW` terms: enough
/// workgroups to fill a large GPU (~1024: an H200 holds 8 per SM on 132 SMs) when the weight
/// itself has few tiles (conv1: 96 x 363, 12 tiles), but at least 1024 terms per split, so
/// partial sums stay few and long.
fn weight_grad_splits(tiles: usize, cols: usize) -> usize {
    const TARGET_WORKGROUPS: usize = 1024;
    const MIN_TERMS: usize = 1024;
    TARGET_WORKGROUPS
        .div_ceil(tiles.max(1))
        .min(cols / MIN_TERMS)
        .max(1)
}

/// Only `dw` and `db` of [`conv2d_backward`]: what the first layer of a network needs,
/// whose input gradient nobody reads. Tiled: the weight GEMM (split along N*OH*OW into a
/// scratch buffer this allocates, then summed), naive: one gather per weight; then the bias.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_params(
    ctx: &GpuContext,
    g: &ConvGeom,
    algo: ConvAlgo,
    dout: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
    db: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    check_conv(g)?;
    let w_len: usize = g.weight_shape().iter().product();
    need(
        dout,
        g.out_shape().iter().product(),
        "conv dout (N, C_out, OH, OW)",
    )?;
    need(x, g.inp_shape().iter().product(), "conv x (N, C_in, H, W)")?;
    need(dw, w_len, "conv dweight")?;
    need(db, g.c_out, "conv dbias (C_out)")?;
    let big_k = g.cin_g() * g.kh * g.kw;
    let cols = g.n * g.oh * g.ow;
    let tx = tiles(ctx, big_k, TILE as usize);
    let ty = tiles(ctx, g.cout_g(), TILE as usize);
    let mut ds = Vec::new();
    match (algo, tx, ty) {
        (ConvAlgo::Tiled, Some(tx), Some(ty)) => {
            let splits = weight_grad_splits((tx * ty) as usize * g.groups, cols);
            let splits = splits
                .min(max_groups(ctx) as usize / g.groups.max(1))
                .max(1);
            let k = TILE_K as usize;
            let per_split = cols.div_ceil(splits).div_ceil(k) * k;
            let splits = cols.div_ceil(per_split);
            let tz = tiles(ctx, g.groups * splits, 1).ok_or_else(|| {
                Error::Gpu(format!(
                    "conv weight gradient: {} groups x {splits} splits",
                    g.groups
                ))
            })?;
            let params = ConvParams {
                splits: u32_of(splits)?,
                cols_per_split: u32_of(per_split)?,
                ..ConvParams::new(g)?
            };
            if splits == 1 {
                ds.push(ctx.dispatch(
                    Kernel::ConvBwdWeightTiled,
                    &params,
                    &[dout, x, dw],
                    [tx, ty, tz],
                )?);
            } else {
                let part = ctx.storage("conv dweight partial sums", splits * w_len)?;
                ds.push(ctx.dispatch(
                    Kernel::ConvBwdWeightTiled,
                    &params,
                    &[dout, x, &part],
                    [tx, ty, tz],
                )?);
                ds.push(per_element(
                    ctx,
                    Kernel::SumSplits,
                    &SumSplitsParams {
                        count: u32_of(w_len)?,
                        splits: u32_of(splits)?,
                    },
                    &[&part, dw],
                    w_len,
                )?);
            }
        }
        _ => ds.push(ctx.dispatch(
            Kernel::ConvBwdWeight,
            &ConvParams::new(g)?,
            &[dout, x, dw],
            grid(w_len, WG as usize, max_groups(ctx)),
        )?),
    }
    ds.push(bias_backward(ctx, g.n, g.c_out, g.oh * g.ow, dout, db)?);
    Ok(ds)
}

/// `db[c] = sum_{n, j < inner} dout[(n*C + c)*inner + j]`: a conv bias (`inner = OH*OW`) or
/// a fully connected one (`inner = 1`).
pub fn bias_backward(
    ctx: &GpuContext,
    n: usize,
    c: usize,
    inner: usize,
    dout: &wgpu::Buffer,
    db: &wgpu::Buffer,
) -> Result<Dispatch> {
    need(dout, n * c * inner, "bias dout (N, C, inner)")?;
    need(db, c, "dbias (C)")?;
    ctx.dispatch(
        Kernel::BiasBwd,
        &BiasBwdParams {
            n: u32_of(n)?,
            c: u32_of(c)?,
            inner: u32_of(inner)?,
        },
        &[dout, db],
        // one workgroup per channel
        grid(c * WG as usize, WG as usize, max_groups(ctx)),
    )
}

/// Fully connected gradients, as `reference::linear_backward`, with the weight (and its gradient)
/// in the same row blocks as the forward: per block one `dx += dy_block W_block` dispatch (the
/// first overwrites) and one `dW_block = dy_block^T x`; then `db = sum_n dy`. `dw_blocks[i]`
/// has the rows of `blocks[i]`.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    ctx: &GpuContext,
    g: &LinearGeom,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    blocks: &[WeightBlock<'_>],
    dx: &wgpu::Buffer,
    dw_blocks: &[&wgpu::Buffer],
    db: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    need(dy, g.n * g.out_features, "linear dy (N, OUT)")?;
    need(x, g.n * g.in_features, "linear x (N, IN)")?;
    need(dx, g.n * g.in_features, "linear dx (N, IN)")?;
    need(db, g.out_features, "linear dbias (OUT)")?;
    let mut next = 0;
    for b in blocks {
        if b.row0 != next {
            break;
        }
        next += b.rows;
    }
    if next != g.out_features || blocks.len() != dw_blocks.len() || blocks.is_empty() {
        return Err(Error::Gpu(format!(
            "linear backward: weight blocks (and as many gradient blocks) must cover rows \
             0..{} in order",
            g.out_features
        )));
    }
    let wg = WG as usize;
    let mut out = Vec::with_capacity(2 * blocks.len() + 1);
    for (i, (b, dwb)) in blocks.iter().zip(dw_blocks).enumerate() {
        need(
            b.buf,
            b.rows * g.in_features,
            "linear weight block (rows, IN)",
        )?;
        need(
            dwb,
            b.rows * g.in_features,
            "linear dweight block (rows, IN)",
        )?;
        let params = LinearBwdParams {
            n: u32_of(g.n)?,
            in_f: u32_of(g.in_features)?,
            out_f: u32_of(g.out_features)?,
            row0: u32_of(b.row0)?,
            rows: u32_of(b.rows)?,
            accumulate: 0,
        };
        out.push(ctx.dispatch(
            Kernel::LinearBwdData,
            &LinearBwdParams {
                accumulate: (i > 0) as u32,
                ..params
            },
            &[dy, b.buf, dx],
            grid(g.n * g.in_features, wg, max_groups(ctx)),
        )?);
        out.push(ctx.dispatch(
            Kernel::LinearBwdWeight,
            &params,
            &[dy, x, dwb],
            grid(b.rows * g.in_features, wg, max_groups(ctx)),
        )?);
    }
    out.push(bias_backward(ctx, g.n, g.out_features, 1, dy, db)?);
    Ok(out)
}

/// `dx = x > 0 ? dout : 0` over `count` elements (`x`: the ReLU's input or output).
pub fn relu_backward(
    ctx: &GpuContext,
    count: usize,
    dout: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    need(dout, count, "relu dout")?;
    need(x, count, "relu x")?;
    need(dx, count, "relu dx")?;
    per_element(
        ctx,
        Kernel::ReluBwd,
        &CountParams::new(count)?,
        &[dout, x, dx],
        count,
    )
}

/// LRN backward (`reference::lrn_backward`) from the forward's input `x`, output `out` and saved
/// `scale`, all `(N, C, H, W)`.
#[allow(clippy::too_many_arguments)]
pub fn lrn_backward(
    ctx: &GpuContext,
    g: &LrnGeom,
    algo: LrnAlgo,
    dout: &wgpu::Buffer,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
    scale: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    let count = g.n * g.c * g.hw;
    if g.size == 0 || g.c == 0 {
        return Err(Error::Arch(format!("lrn: invalid geometry {g:?}")));
    }
    for (b, what) in [
        (dout, "lrn dout"),
        (x, "lrn x"),
        (out, "lrn out"),
        (scale, "lrn scale"),
        (dx, "lrn dx"),
    ] {
        need(b, count, what)?;
    }
    let params = LrnParams::new(count, g)?;
    let bufs = [dout, x, out, scale, dx];
    match lrn_blocks(ctx, g, algo) {
        Some(groups) => ctx.dispatch(Kernel::LrnBwdTiled, &params, &bufs, groups),
        None => per_element(ctx, Kernel::LrnBwd, &params, &bufs, count),
    }
}

/// Max-pool backward (`reference::maxpool_backward`) from the forward's saved `argmax`: a gather
/// per input element over the (overlapping) windows that can contain it.
pub fn maxpool_backward(
    ctx: &GpuContext,
    g: &PoolGeom,
    dout: &wgpu::Buffer,
    argmax: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    let out_len: usize = g.out_shape().iter().product();
    let count: usize = g.inp_shape().iter().product();
    if g.sh == 0 || g.sw == 0 {
        return Err(Error::Arch(format!("maxpool: invalid geometry {g:?}")));
    }
    need(dout, out_len, "maxpool dout")?;
    need(argmax, out_len, "maxpool argmax")?;
    need(dx, count, "maxpool dx")?;
    let params = PoolParams::new(count, g)?;
    per_element(ctx, Kernel::MaxPoolBwd, &params, &[dout, argmax, dx], count)
}

/// Adaptive average pool backward (`reference::adaptive_avgpool_backward`).
pub fn avgpool_backward(
    ctx: &GpuContext,
    g: &AvgPoolGeom,
    dout: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    let count: usize = g.inp_shape().iter().product();
    let params = avgpool_params(count, g)?;
    need(dout, g.out_shape().iter().product(), "avgpool dout")?;
    need(dx, count, "avgpool dx")?;
    per_element(ctx, Kernel::AvgPoolBwd, &params, &[dout, dx], count)
}

/// Training-mode dropout backward: `dx = keep(seed, i) ? dout * scale : 0`, the forward
/// kernel itself (`elementwise::dropout_backward` is `dropout_forward` on `dout` too), with the
/// forward's `(p, seed)`.
pub fn dropout_backward(
    ctx: &GpuContext,
    count: usize,
    p: f32,
    seed: u32,
    dout: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    dropout(ctx, count, p, seed, dout, dx)
}

/// Fused softmax + cross-entropy on `logits (N, K)` with u32 `labels (N)`: per-row
/// `losses (N)` and `dlogits (N, K) = (softmax - onehot) / N`, the gradient of the mean.
/// The labels buffer's values must be `< k` (checked where they are uploaded:
/// [`upload_labels`]).
pub fn softmax_xent(
    ctx: &GpuContext,
    n: usize,
    k: usize,
    logits: &wgpu::Buffer,
    labels: &wgpu::Buffer,
    losses: &wgpu::Buffer,
    dlogits: &wgpu::Buffer,
) -> Result<Dispatch> {
    if k == 0 || n == 0 {
        return Err(Error::Arch(format!("softmax_xent over {n} x {k} logits")));
    }
    need(logits, n * k, "softmax_xent logits (N, K)")?;
    need(labels, n, "softmax_xent labels (N)")?;
    need(losses, n, "softmax_xent losses (N)")?;
    need(dlogits, n * k, "softmax_xent dlogits (N, K)")?;
    ctx.dispatch(
        Kernel::SoftmaxXent,
        &SoftmaxParams {
            rows: u32_of(n)?,
            k: u32_of(k)?,
            inv_n: 1.0 / n as f32,
        },
        &[logits, labels, losses, dlogits],
        grid(n, 1, max_groups(ctx)),
    )
}

/// Writes `labels` into `buf` as u32 after checking each is `< k` (an out-of-range label
/// would make the kernel read another row's logit).
pub fn write_labels(
    ctx: &GpuContext,
    buf: &wgpu::Buffer,
    k: usize,
    labels: &[usize],
) -> Result<()> {
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= k) {
        return Err(Error::Label {
            label: l,
            index: i,
            classes: k,
        });
    }
    need(buf, labels.len(), "labels (N)")?;
    let bits: Vec<f32> = labels.iter().map(|&l| f32::from_bits(l as u32)).collect();
    ctx.write(buf, &bits);
    Ok(())
}

/// A new u32 buffer holding `labels` (each checked `< k`).
pub fn upload_labels(ctx: &GpuContext, k: usize, labels: &[usize]) -> Result<wgpu::Buffer> {
    let buf = ctx.storage("labels", labels.len())?;
    write_labels(ctx, &buf, k, labels)?;
    Ok(buf)
}

pub use crate::elementwise::Sgd;

/// The `sgd.wgsl` uniform for `count` elements (rewrite it with `set_params` to change the
/// learning rate).
pub fn sgd_params(opt: &Sgd, count: usize) -> Result<SgdParams> {
    Ok(SgdParams {
        count: u32_of(count)?,
        lr: opt.lr,
        momentum: opt.momentum,
        wd: opt.weight_decay,
    })
}

/// One SGD-with-momentum update of `count` parameters `w` with velocity `v` and gradient `g`.
pub fn sgd(
    ctx: &GpuContext,
    opt: &Sgd,
    count: usize,
    w: &wgpu::Buffer,
    v: &wgpu::Buffer,
    g: &wgpu::Buffer,
) -> Result<Dispatch> {
    need(w, count, "sgd weight")?;
    need(v, count, "sgd velocity")?;
    need(g, count, "sgd gradient")?;
    per_element(
        ctx,
        Kernel::Sgd,
        &sgd_params(opt, count)?,
        &[w, v, g],
        count,
    )
}

/// `buf[0..count] = value`.
pub fn fill(ctx: &GpuContext, count: usize, value: f32, buf: &wgpu::Buffer) -> Result<Dispatch> {
    need(buf, count, "fill")?;
    per_element(
        ctx,
        Kernel::Fill,
        &FillParams {
            count: u32_of(count)?,
            value,
        },
        &[buf],
        count,
    )
}
