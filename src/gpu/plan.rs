//! [`GpuPlan`]: a whole network on the GPU, planned once per `(Model, batch size)`.
//!
//! `new` uploads every parameter once (fully connected weights in row blocks that each fit
//! `max_storage_buffer_binding_size`: fc6's 151 MB weight is two blocks on a 128 MiB
//! device such as lavapipe), allocates every activation buffer and every saved-for-backward
//! buffer (max-pool argmax, LRN scale) up front, and builds every dispatch with its bind
//! group. A forward then writes the input, records ALL the layers it needs into ONE command
//! encoder, submits ONCE, and reads back only the requested outputs (async: it works in a
//! browser).
//!
//! Layers without a kernel: Flatten reuses its input's buffer (same bytes, new shape);
//! Dropout at inference is a buffer copy (identity), in training the `dropout.wgsl` kernel
//! with the CPU's mask. Every layer's output stays in its own buffer, so `forward_all` can
//! return them and a backward pass can read them.

use super::context::{Dispatch, GpuContext};
use super::ops::{self, ConvAlgo, LinearAlgo, LrnAlgo, WeightBlock};
use super::timer::{Phase, Span, Timer};
use crate::elementwise;
use crate::error::{Error, Result};
use crate::model::{Arch, Layer};
use crate::model::{Geom, Step};
use crate::model::{Mode, Model};
use crate::tensor::Tensor;

/// Choices a caller (or a test) can make; `Default` is what `GpuPlan::new` uses.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Convolution kernel: `None` = tiled.
    pub conv: Option<ConvAlgo>,
    /// LRN kernels (forward and, in a trainer, backward): `None` = naive, which measured
    /// faster than the workgroup-memory version on every adapter we have (see
    /// `ops::LrnAlgo`).
    pub lrn: Option<LrnAlgo>,
    /// Fully connected kernel: `None` = `LinearAlgo::for_batch(batch)`.
    pub linear: Option<LinearAlgo>,
    /// Largest weight block in bytes: `None` = the device's storage binding limit. Tests set
    /// it lower to exercise the split on any device.
    pub max_weight_block: Option<u64>,
}

/// What a layer's step does at run time.
#[derive(Debug)]
enum Op {
    /// Kernel launches, in order.
    Run(Vec<Dispatch>),
    /// No work: the output is the input's buffer (Flatten).
    Alias,
    /// Dropout: a copy in eval mode; the kernel (seed rewritten per run) in training.
    Dropout {
        dispatch: Dispatch,
        p: f32,
        count: usize,
    },
}

/// Where one layer's parameters live in `GpuPlan::params`: its weight's row blocks
/// `(row0, rows, index)` and its bias's index.
type ParamSlots = (Vec<(usize, usize, usize)>, usize);

/// A network resident on the GPU for one batch size.
#[derive(Debug)]
pub struct GpuPlan {
    arch: Arch,
    batch: usize,
    /// `bufs[0]` is the input; layer `i` writes `bufs[out_buf[i]]`.
    bufs: Vec<wgpu::Buffer>,
    out_buf: Vec<usize>,
    /// Per-layer output shapes with the batch dimension.
    shapes: Vec<Vec<usize>>,
    ops: Vec<Op>,
    /// Parameter buffers (bind groups hold them too; `layer_params` hands them to a trainer).
    params: Vec<wgpu::Buffer>,
    /// What each layer saved for backward: max-pool argmax (u32), LRN scale.
    saved: Vec<Option<wgpu::Buffer>>,
    /// Per layer, how many buffers its weight is split into (0 without parameters).
    weight_blocks: Vec<usize>,
    /// Per layer with parameters: where its buffers are in `params`.
    layer_params: Vec<Option<ParamSlots>>,
}

impl GpuPlan {
    /// Plans `model` for batches of exactly `batch` images, with the default kernels.
    pub async fn new(ctx: &GpuContext, model: &Model, batch: usize) -> Result<GpuPlan> {
        GpuPlan::with_options(ctx, model, batch, &GpuOptions::default()).await
    }

    /// Plans `model` for batches of `batch` images: uploads parameters, allocates every
    /// buffer and builds every dispatch. Device errors (out of memory, validation) come back
    /// as `Error::Gpu`.
    pub async fn with_options(
        ctx: &GpuContext,
        model: &Model,
        batch: usize,
        opts: &GpuOptions,
    ) -> Result<GpuPlan> {
        if batch == 0 {
            return Err(Error::Gpu("batch size must be at least 1".into()));
        }
        ctx.checked("planning the network", || build(ctx, model, batch, opts))
            .await
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The architecture this plan runs.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// The buffer holding layer `idx`'s output after a run (for backward kernels and tests).
    pub fn output_buffer(&self, idx: usize) -> Option<&wgpu::Buffer> {
        self.out_buf.get(idx).map(|&b| &self.bufs[b])
    }

    /// What layer `idx` saved for backward: max-pool's argmax (u32) or LRN's scale.
    pub fn saved_buffer(&self, idx: usize) -> Option<&wgpu::Buffer> {
        self.saved.get(idx).and_then(|s| s.as_ref())
    }

    /// The network input's buffer `(N, C, H, W)`.
    pub fn input_buffer(&self) -> &wgpu::Buffer {
        &self.bufs[0]
    }

    /// Layer `idx`'s parameter buffers (the ones the forward reads, so updating them in place
    /// updates the model): its weight as row blocks (one block for a conv) and its bias;
    /// `None` for a layer without parameters.
    pub fn layer_params(&self, idx: usize) -> Option<(Vec<WeightBlock<'_>>, &wgpu::Buffer)> {
        let (blocks, bias) = self.layer_params.get(idx)?.as_ref()?;
        let wb = blocks
            .iter()
            .map(|&(row0, rows, i)| WeightBlock {
                buf: &self.params[i],
                row0,
                rows,
            })
            .collect();
        Some((wb, &self.params[*bias]))
    }

    /// Layer `idx`'s output shape, with the batch dimension.
    pub fn output_shape(&self, idx: usize) -> Option<&[usize]> {
        self.shapes.get(idx).map(|s| s.as_slice())
    }

    /// How many row blocks layer `name`'s weight was split into (1 when it fits one
    /// binding, 0 for a layer without parameters).
    pub fn weight_blocks(&self, name: &str) -> Result<usize> {
        Ok(self.weight_blocks[self.arch.layer_index(name)?])
    }

    /// Inference: the last layer's output.
    pub async fn forward(&self, ctx: &GpuContext, x: &Tensor) -> Result<Tensor> {
        let last = self.ops.len().saturating_sub(1);
        let mut v = self.execute(ctx, x, Mode::Eval, last + 1, &[last]).await?;
        Ok(v.remove(0))
    }

    /// Inference up to and including `layer`: only that prefix runs.
    pub async fn forward_to(&self, ctx: &GpuContext, x: &Tensor, layer: &str) -> Result<Tensor> {
        let idx = self.arch.layer_index(layer)?;
        let mut v = self.execute(ctx, x, Mode::Eval, idx + 1, &[idx]).await?;
        Ok(v.remove(0))
    }

    /// Every layer's output in layer order (as `Model::forward_all`), in one submission.
    pub async fn forward_all(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        mode: Mode,
    ) -> Result<Vec<Tensor>> {
        let all: Vec<usize> = (0..self.ops.len()).collect();
        self.execute(ctx, x, mode, self.ops.len(), &all).await
    }

    /// An eval-mode forward through every layer in one submission, reading back only the
    /// outputs of the layers in `read` (e.g. the logits and fc7 for the page); the others
    /// stay on the GPU for [`GpuPlan::read_image`] until the next run.
    pub async fn forward_read(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        read: &[usize],
    ) -> Result<Vec<Tensor>> {
        if let Some(&bad) = read.iter().find(|&&i| i >= self.ops.len()) {
            return Err(Error::OutOfRange {
                what: "layer".into(),
                index: bad,
                len: self.ops.len(),
            });
        }
        self.execute(ctx, x, Mode::Eval, self.ops.len(), read).await
    }

    /// Layer `idx`'s output for image `image` of the last run, `(1, ...)`: one image's
    /// slice read back, nothing run.
    pub async fn read_image(&self, ctx: &GpuContext, idx: usize, image: usize) -> Result<Tensor> {
        let shape = self.shapes.get(idx).ok_or_else(|| Error::OutOfRange {
            what: "layer".into(),
            index: idx,
            len: self.shapes.len(),
        })?;
        if image >= self.batch {
            return Err(Error::OutOfRange {
                what: "image of the batch".into(),
                index: image,
                len: self.batch,
            });
        }
        let per: usize = shape[1..].iter().product();
        let data = ctx
            .read_at(&self.bufs[self.out_buf[idx]], image * per, per)
            .await?;
        let mut one = shape.clone();
        one[0] = 1;
        Tensor::new(&one, data)
    }

    /// Checks that `x` is `(batch, C, H, W)` and writes it into the input buffer (ordered
    /// before the next submission).
    pub fn write_input(&self, ctx: &GpuContext, x: &Tensor) -> Result<()> {
        let [c, h, w] = self.arch.input;
        let want = [self.batch, c, h, w];
        if x.shape != want || x.data.len() != want.iter().product::<usize>() {
            return Err(Error::Shape {
                what: format!("GPU network input (planned for batch {})", self.batch),
                expected: want.to_vec(),
                got: x.shape.clone(),
            });
        }
        ctx.write(&self.bufs[0], &x.data);
        Ok(())
    }

    /// Records layers `0..end` in `mode` into `enc` (training mode rewrites each dropout
    /// layer's seed, `elementwise::dropout_layer_seed(seed, idx)`, before the submission). The input
    /// must have been written (`write_input`).
    pub fn record_forward(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        mode: Mode,
        end: usize,
    ) -> Result<()> {
        self.record_forward_timed(ctx, enc, mode, end, None)
    }

    /// As [`GpuPlan::record_forward`]; with a timer every launch is timed on the GPU and
    /// labelled with its layer.
    pub fn record_forward_timed(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        mode: Mode,
        end: usize,
        mut timer: Option<&mut Timer>,
    ) -> Result<()> {
        // Untimed, consecutive kernel launches share one compute pass; a copy (eval
        // dropout) closes it and the next launches open another, all in this one encoder.
        let mut batch: Vec<&Dispatch> = Vec::new();
        for (idx, op) in self.ops.iter().enumerate().take(end) {
            let span = Span {
                phase: Phase::Forward,
                layer: idx,
            };
            match op {
                Op::Run(ds) => match timer.as_deref_mut() {
                    Some(t) => ctx.record_timed(enc, &ds.iter().collect::<Vec<_>>(), span, t)?,
                    None => batch.extend(ds.iter()),
                },
                Op::Alias => {}
                Op::Dropout { dispatch, p, count } => match mode {
                    Mode::Train { seed } => {
                        let s = elementwise::dropout_layer_seed(seed, idx);
                        ctx.set_params(dispatch, &ops::dropout_params(*count, *p, s)?)?;
                        match timer.as_deref_mut() {
                            Some(t) => ctx.record_timed(enc, &[dispatch], span, t)?,
                            None => batch.push(dispatch),
                        }
                    }
                    Mode::Eval => {
                        ctx.record(enc, &batch)?;
                        batch.clear();
                        let src = &self.bufs[self.input_buf(idx)];
                        let dst = &self.bufs[self.out_buf[idx]];
                        enc.copy_buffer_to_buffer(src, 0, dst, 0, (*count as u64) * 4);
                    }
                },
            }
        }
        ctx.record(enc, &batch)
    }

    /// How many kernel launches a forward through layers `0..end` records (what a
    /// [`Timer`] for it needs room for).
    pub fn dispatch_count(&self, end: usize) -> usize {
        self.ops
            .iter()
            .take(end)
            .map(|op| match op {
                Op::Run(ds) => ds.len(),
                Op::Alias => 0,
                Op::Dropout { .. } => 1,
            })
            .sum()
    }

    /// One eval-mode forward through every layer with each kernel launch timed on the GPU
    /// (`timer` from [`GpuContext::timer`] with room for [`GpuPlan::dispatch_count`]):
    /// the seconds each launch took, labelled with its layer. Nothing is read back but the
    /// timestamps.
    pub async fn profile_forward(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        timer: &mut Timer,
    ) -> Result<Vec<(Span, f64)>> {
        timer.clear();
        let staging = ctx
            .submit("timing the network", |enc| {
                self.write_input(ctx, x)?;
                let end = self.ops.len();
                self.record_forward_timed(ctx, enc, Mode::Eval, end, Some(&mut *timer))?;
                Ok(ctx.resolve_timer(enc, timer))
            })
            .await?;
        let words = ctx.read_staging(&staging).await?;
        Ok(ctx.timer_seconds(timer, words.first().map(Vec::as_slice).unwrap_or(&[])))
    }

    /// Runs layers `0..end` in one submission and reads back the outputs of `read`.
    async fn execute(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        mode: Mode,
        end: usize,
        read: &[usize],
    ) -> Result<Vec<Tensor>> {
        let staging = ctx
            .submit("running the network", |enc| {
                self.write_input(ctx, x)?;
                self.record_forward(ctx, enc, mode, end)?;
                let outs: Vec<(&wgpu::Buffer, usize)> = read
                    .iter()
                    .map(|&i| {
                        let n = self.shapes[i].iter().product();
                        (&self.bufs[self.out_buf[i]], n)
                    })
                    .collect();
                Ok(ctx.copy_out(enc, &outs))
            })
            .await?;
        let data = ctx.read_staging(&staging).await?;
        read.iter()
            .zip(data)
            .map(|(&i, d)| Tensor::new(&self.shapes[i], d))
            .collect()
    }

    fn input_buf(&self, idx: usize) -> usize {
        if idx == 0 {
            0
        } else {
            self.out_buf[idx - 1]
        }
    }
}

/// A layer whose plan step carries another layer's geometry (a bug, not a user error).
pub(crate) fn mismatch(step: &Step) -> Error {
    Error::Arch(format!(
        "layer {:?}: its plan step has the geometry {:?}",
        step.name(),
        step.geom
    ))
}

/// The plan: buffers, parameters and dispatches for every layer.
fn build(ctx: &GpuContext, model: &Model, batch: usize, opts: &GpuOptions) -> Result<GpuPlan> {
    let arch = &model.arch;
    let conv_algo = opts.conv.unwrap_or(ConvAlgo::Tiled);
    let lrn_algo = opts.lrn.unwrap_or(LrnAlgo::Naive);
    let linear_algo = opts.linear.unwrap_or(LinearAlgo::for_batch(batch));
    let max_block = opts
        .max_weight_block
        .unwrap_or(u64::MAX)
        .min(ctx.limits.max_storage_buffer_binding_size)
        .min(ctx.limits.max_buffer_size);

    let [c, h, w] = arch.input;
    let mut bufs = vec![ctx.storage("input", batch * c * h * w)?];
    let mut out_buf = Vec::new();
    let mut shapes = Vec::new();
    let mut ops_ = Vec::new();
    let mut params = Vec::new();
    let mut saved = Vec::new();
    let mut weight_blocks = Vec::new();
    let mut layer_params = Vec::new();
    let mut in_buf = 0usize;

    for step in arch.plan(batch)? {
        let layer = step.layer;
        let full = step.output.clone();
        let count = step.out_count();
        let own = |bufs: &mut Vec<wgpu::Buffer>| -> Result<usize> {
            bufs.push(ctx.storage(layer.name(), count)?);
            Ok(bufs.len() - 1)
        };
        let mut layer_saved = None;
        let mut nblocks = 0;
        let mut lp = None;
        let (ob, op) = match (layer, step.geom) {
            (Layer::Flatten { .. }, _) => (in_buf, Op::Alias),
            (Layer::Conv(spec), Geom::Conv(g)) => {
                let wt = ctx.upload(
                    &format!("{}.weight", spec.name),
                    &model.weight(&spec.name)?.data,
                )?;
                let b = ctx.upload(
                    &format!("{}.bias", spec.name),
                    &model.bias(&spec.name)?.data,
                )?;
                let ob = own(&mut bufs)?;
                let d = ops::conv2d(ctx, &g, conv_algo, false, &bufs[in_buf], &wt, &b, &bufs[ob])?;
                lp = Some((vec![(0, spec.out_channels, params.len())], params.len() + 1));
                params.extend([wt, b]);
                nblocks = 1;
                (ob, Op::Run(vec![d]))
            }
            (Layer::Linear(spec), Geom::Linear(g)) => {
                let weight = model.weight(&spec.name)?;
                let blocks = ops::row_blocks(spec.out_features, spec.in_features, max_block)?;
                let wbufs = blocks
                    .iter()
                    .enumerate()
                    .map(|(i, &(r0, rows))| {
                        let k = spec.in_features;
                        ctx.upload(
                            &format!("{}.weight[{i}]", spec.name),
                            &weight.data[r0 * k..(r0 + rows) * k],
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                let b = ctx.upload(
                    &format!("{}.bias", spec.name),
                    &model.bias(&spec.name)?.data,
                )?;
                let wb: Vec<WeightBlock> = blocks
                    .iter()
                    .zip(&wbufs)
                    .map(|(&(row0, rows), buf)| WeightBlock { buf, row0, rows })
                    .collect();
                let ob = own(&mut bufs)?;
                let ds = ops::linear(
                    ctx,
                    &g,
                    linear_algo,
                    false,
                    &bufs[in_buf],
                    &wb,
                    &b,
                    &bufs[ob],
                )?;
                nblocks = wbufs.len();
                let first = params.len();
                lp = Some((
                    blocks
                        .iter()
                        .enumerate()
                        .map(|(i, &(row0, rows))| (row0, rows, first + i))
                        .collect(),
                    first + wbufs.len(),
                ));
                params.extend(wbufs);
                params.push(b);
                (ob, Op::Run(ds))
            }
            (Layer::Relu { .. }, _) => {
                let ob = own(&mut bufs)?;
                let d = ops::relu(ctx, count, &bufs[in_buf], &bufs[ob])?;
                (ob, Op::Run(vec![d]))
            }
            (Layer::Lrn(spec), Geom::Lrn(g)) => {
                let ob = own(&mut bufs)?;
                let scale = ctx.storage(&format!("{}.scale", spec.name), count)?;
                let d = ops::lrn(ctx, &g, lrn_algo, &bufs[in_buf], &bufs[ob], &scale)?;
                layer_saved = Some(scale);
                (ob, Op::Run(vec![d]))
            }
            (Layer::MaxPool(spec), Geom::MaxPool(g)) => {
                let ob = own(&mut bufs)?;
                let argmax = ctx.storage(&format!("{}.argmax", spec.name), count)?;
                let d = ops::maxpool(ctx, &g, &bufs[in_buf], &bufs[ob], &argmax)?;
                layer_saved = Some(argmax);
                (ob, Op::Run(vec![d]))
            }
            (Layer::AdaptiveAvgPool(_spec), Geom::AvgPool(g)) => {
                let ob = own(&mut bufs)?;
                let d = ops::avgpool(ctx, &g, &bufs[in_buf], &bufs[ob])?;
                (ob, Op::Run(vec![d]))
            }
            (Layer::Dropout(spec), _) => {
                let ob = own(&mut bufs)?;
                let dispatch = ops::dropout(ctx, count, spec.p, 0, &bufs[in_buf], &bufs[ob])?;
                (
                    ob,
                    Op::Dropout {
                        dispatch,
                        p: spec.p,
                        count,
                    },
                )
            }
            (Layer::Softmax { .. }, _) => {
                let k = count / batch;
                let ob = own(&mut bufs)?;
                let d = ops::softmax(ctx, batch, k, &bufs[in_buf], &bufs[ob])?;
                (ob, Op::Run(vec![d]))
            }
            _ => return Err(mismatch(&step)),
        };
        out_buf.push(ob);
        shapes.push(full);
        ops_.push(op);
        saved.push(layer_saved);
        weight_blocks.push(nblocks);
        layer_params.push(lp);
        in_buf = ob;
    }
    Ok(GpuPlan {
        arch: model.arch.clone(),
        batch,
        bufs,
        out_buf,
        shapes,
        ops: ops_,
        params,
        saved,
        weight_blocks,
        layer_params,
    })
}

/// The plan for `batch`, built on first use (a per-batch cache of plans).
pub async fn plan_for<'p>(
    ctx: &GpuContext,
    plans: &'p mut std::collections::HashMap<usize, GpuPlan>,
    model: &Model,
    batch: usize,
    opts: &GpuOptions,
) -> Result<&'p GpuPlan> {
    Ok(match plans.entry(batch) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(GpuPlan::with_options(ctx, model, batch, opts).await?)
        }
    })
}

pub fn batch_of(x: &Tensor) -> Result<usize> {
    match x.shape.first() {
        Some(&n) if n > 0 => Ok(n),
        _ => Err(Error::Shape {
            what: "input with a batch dimension (N, ...)".into(),
            expected: vec![1],
            got: x.shape.clone(),
        }),
    }
}
