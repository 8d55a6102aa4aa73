//! [`GpuTrainer`]: training on the GPU, planned once per `(Model, batch size)`.
//!
//! A step is ONE submission: the training-mode forward of [`GpuPlan`] (dropout masks from
//! `elementwise::dropout_layer_seed(seed, layer)`, exactly the CPU's), the fused softmax +
//! cross-entropy (`softmax_xent.wgsl`: per-example loss and `dlogits = (p - onehot) / N`),
//! the backward pass layer by layer (one gather kernel per gradient, `ops::*_backward`), and
//! the SGD-with-momentum update of every parameter in the paper's form (`sgd.wgsl`). Only
//! the N per-example losses are read back; their mean (f64) is the step's loss.
//!
//! As `Model::loss_and_grads`, a terminal `Softmax` layer is not run: the fused loss includes
//! it. Gradients are written (not accumulated) every step, so nothing needs zeroing;
//! velocities start at zero (fresh buffers are zeroed).
//!
//! Buffers: one gradient buffer per layer output (Flatten shares its input's), parameter
//! gradients in the same row blocks as the parameters (fc6's weight is split on a 128 MiB
//! device), one velocity per parameter buffer. The first layer's input gradient is never
//! computed.

use super::context::{Dispatch, GpuContext};
use super::ops::{self, ConvAlgo, LrnAlgo, Sgd};
use super::plan::{GpuOptions, GpuPlan};
use super::timer::{Phase, Span, Timer};
use crate::elementwise;
use crate::error::{Error, Result};
use crate::model::Geom;
use crate::model::{Arch, Layer};
use crate::model::{Mode, Model, Params};
use crate::tensor::Tensor;

/// One parameter tensor's gradient and velocity buffers, per row block.
#[derive(Debug)]
struct ParamState {
    /// `"{layer}.weight"` or `"{layer}.bias"`.
    name: String,
    shape: Vec<usize>,
    /// Layer index and, for each block, its element count.
    layer: usize,
    bias: bool,
    block_lens: Vec<usize>,
    grads: Vec<wgpu::Buffer>,
    velocities: Vec<wgpu::Buffer>,
}

/// A model being trained on the GPU at one batch size.
#[derive(Debug)]
pub struct GpuTrainer {
    model: GpuPlan,
    arch: Arch,
    batch: usize,
    classes: usize,
    /// Layers run: all but a terminal Softmax.
    end: usize,
    labels: wgpu::Buffer,
    losses: wgpu::Buffer,
    /// Activation gradients (one per layer output, Flatten aliased).
    #[allow(dead_code)]
    dbufs: Vec<wgpu::Buffer>,
    loss: Dispatch,
    backward: Vec<Dispatch>,
    /// The layer each `backward` dispatch belongs to (for timing).
    backward_layer: Vec<usize>,
    /// Dropout backward dispatches: (layer index, index into `backward`, p, count).
    dropouts: Vec<(usize, usize, f32, usize)>,
    params: Vec<ParamState>,
    sgd: Vec<Dispatch>,
    /// The layer each `sgd` dispatch updates (for timing).
    sgd_layer: Vec<usize>,
    opt: Sgd,
    /// Layers whose parameters are not updated (`set_frozen`).
    frozen: Vec<usize>,
}

impl GpuTrainer {
    /// Plans `model` for training at batch `batch` with the default kernels.
    pub async fn new(ctx: &GpuContext, model: &Model, batch: usize, opt: Sgd) -> Result<Self> {
        GpuTrainer::with_options(ctx, model, batch, opt, &GpuOptions::default()).await
    }

    /// Plans `model` for training: uploads the parameters (a [`GpuPlan`]), allocates every
    /// gradient, velocity and loss buffer and builds every dispatch.
    pub async fn with_options(
        ctx: &GpuContext,
        model: &Model,
        batch: usize,
        opt: Sgd,
        opts: &GpuOptions,
    ) -> Result<Self> {
        let gm = GpuPlan::with_options(ctx, model, batch, opts).await?;
        ctx.checked("planning the training step", || {
            build(
                ctx,
                gm,
                &model.arch,
                batch,
                opt,
                opts.conv.unwrap_or(ConvAlgo::Tiled),
                opts.lrn.unwrap_or(LrnAlgo::Naive),
            )
        })
        .await
    }

    /// The network (its parameter buffers are the ones trained).
    pub fn model(&self) -> &GpuPlan {
        &self.model
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    pub fn sgd(&self) -> Sgd {
        self.opt
    }

    /// Changes the learning rate, momentum or weight decay for the following steps.
    pub fn set_sgd(&mut self, ctx: &GpuContext, opt: Sgd) -> Result<()> {
        // a frozen layer's update is v <- 0, w <- w + 0: its weights stay bit for bit
        let still = Sgd {
            lr: 0.0,
            momentum: 0.0,
            weight_decay: 0.0,
        };
        for ((d, len), layer) in self
            .sgd
            .iter()
            .zip(self.params.iter().flat_map(|p| p.block_lens.iter()))
            .zip(&self.sgd_layer)
        {
            let o = if self.frozen.contains(layer) {
                &still
            } else {
                &opt
            };
            ctx.set_params(d, &ops::sgd_params(o, *len)?)?;
        }
        self.opt = opt;
        Ok(())
    }

    /// Freezes the layers at these indices (fine-tuning only the top of a net): their
    /// parameters are no longer updated. An empty list trains every layer.
    pub fn set_frozen(&mut self, ctx: &GpuContext, layers: &[usize]) -> Result<()> {
        self.frozen = layers.to_vec();
        self.set_sgd(ctx, self.opt)
    }

    /// One training step in one submission: forward (training mode, dropout seeded with
    /// `seed`), loss, backward and the SGD update. Returns the mean loss before the update.
    pub async fn step(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        labels: &[usize],
        seed: u64,
    ) -> Result<f32> {
        Ok(self.run(ctx, x, labels, seed, true, None).await?.0)
    }

    /// Forward, loss and backward without the update (the gradients stay in their buffers
    /// for [`GpuTrainer::grads`]). Returns the mean loss.
    pub async fn loss_and_grads(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        labels: &[usize],
        seed: u64,
    ) -> Result<f32> {
        Ok(self.run(ctx, x, labels, seed, false, None).await?.0)
    }

    /// How many kernel launches one step records (what a [`Timer`] for
    /// [`GpuTrainer::profile_step`] needs room for).
    pub fn dispatch_count(&self) -> usize {
        self.model.dispatch_count(self.end) + 1 + self.backward.len() + self.sgd.len()
    }

    /// [`GpuTrainer::step`] with every kernel launch timed on the GPU: the mean loss and the
    /// seconds of each launch, labelled with its phase and layer.
    pub async fn profile_step(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        labels: &[usize],
        seed: u64,
        timer: &mut Timer,
    ) -> Result<(f32, Vec<(Span, f64)>)> {
        timer.clear();
        self.run(ctx, x, labels, seed, true, Some(timer)).await
    }

    async fn run(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        labels: &[usize],
        seed: u64,
        update: bool,
        mut timer: Option<&mut Timer>,
    ) -> Result<(f32, Vec<(Span, f64)>)> {
        if labels.len() != self.batch {
            return Err(Error::Shape {
                what: "training labels (N)".into(),
                expected: vec![self.batch],
                got: vec![labels.len()],
            });
        }
        let staging = ctx
            .submit("training step", |enc| {
                self.model.write_input(ctx, x)?;
                ops::write_labels(ctx, &self.labels, self.classes, labels)?;
                for &(layer, i, p, count) in &self.dropouts {
                    let s = elementwise::dropout_layer_seed(seed, layer);
                    ctx.set_params(&self.backward[i], &ops::dropout_params(count, p, s)?)?;
                }
                self.model.record_forward_timed(
                    ctx,
                    enc,
                    Mode::Train { seed },
                    self.end,
                    timer.as_deref_mut(),
                )?;
                match timer.as_deref_mut() {
                    None => {
                        let mut ds: Vec<&Dispatch> = vec![&self.loss];
                        ds.extend(self.backward.iter());
                        if update {
                            ds.extend(self.sgd.iter());
                        }
                        ctx.record(enc, &ds)?;
                    }
                    Some(t) => {
                        let span = |phase, layer| Span { phase, layer };
                        ctx.record_timed(enc, &[&self.loss], span(Phase::Loss, self.end), t)?;
                        for (d, &l) in self.backward.iter().zip(&self.backward_layer) {
                            ctx.record_timed(enc, &[d], span(Phase::Backward, l), t)?;
                        }
                        if update {
                            for (d, &l) in self.sgd.iter().zip(&self.sgd_layer) {
                                ctx.record_timed(enc, &[d], span(Phase::Update, l), t)?;
                            }
                        }
                    }
                }
                let mut staging = ctx.copy_out(enc, &[(&self.losses, self.batch)]);
                if let Some(t) = timer.as_deref() {
                    staging.extend(ctx.resolve_timer(enc, t));
                }
                Ok(staging)
            })
            .await?;
        let read = ctx.read_staging(&staging).await?;
        let sum: f64 = read
            .first()
            .map(|l| l.iter().map(|&v| v as f64).sum())
            .unwrap_or(0.0);
        let times = match (timer, read.get(1)) {
            (Some(t), Some(words)) => ctx.timer_seconds(t, words),
            _ => Vec::new(),
        };
        Ok(((sum / self.batch as f64) as f32, times))
    }

    /// Debug accessor: the gradients of the last step (keyed like `Model::params`), read
    /// back from the GPU.
    pub async fn grads(&self, ctx: &GpuContext) -> Result<Params> {
        self.read_per_param(ctx, |p| &p.grads).await
    }

    /// The momentum of every parameter (`"{layer}.weight"` / `"{layer}.bias"`), read back
    /// (for a checkpoint).
    pub async fn velocities(&self, ctx: &GpuContext) -> Result<Params> {
        self.read_per_param(ctx, |p| &p.velocities).await
    }

    /// One buffer set per parameter (its row blocks), read back and joined.
    async fn read_per_param(
        &self,
        ctx: &GpuContext,
        pick: impl Fn(&ParamState) -> &Vec<wgpu::Buffer>,
    ) -> Result<Params> {
        let mut out = Params::new();
        for p in &self.params {
            let outs: Vec<(&wgpu::Buffer, usize)> = pick(p)
                .iter()
                .zip(&p.block_lens)
                .map(|(b, &n)| (b, n))
                .collect();
            let data = ctx.run(&[], &outs).await?.concat();
            out.insert(p.name.clone(), Tensor::new(&p.shape, data)?);
        }
        Ok(out)
    }

    /// Sets every parameter's momentum (resuming from a checkpoint); each must be present
    /// with its parameter's shape.
    pub fn set_velocities(&self, ctx: &GpuContext, v: &Params) -> Result<()> {
        for p in &self.params {
            let t = v
                .get(&p.name)
                .ok_or_else(|| Error::Weights(format!("no momentum for {}", p.name)))?;
            if t.shape != p.shape {
                return Err(Error::Shape {
                    what: format!("momentum of {}", p.name),
                    expected: p.shape.clone(),
                    got: t.shape.clone(),
                });
            }
            let mut at = 0;
            for (buf, &n) in p.velocities.iter().zip(&p.block_lens) {
                ctx.write(buf, &t.data[at..at + n]);
                at += n;
            }
        }
        Ok(())
    }

    /// The current parameters, read back from the GPU, as a CPU [`Model`].
    pub async fn to_model(&self, ctx: &GpuContext) -> Result<Model> {
        let mut params = Params::new();
        for p in &self.params {
            let (blocks, bias) = self
                .model
                .layer_params(p.layer)
                .ok_or_else(|| Error::Gpu(format!("{}: no parameter buffers", p.name)))?;
            let outs: Vec<(&wgpu::Buffer, usize)> = if p.bias {
                vec![(bias, p.block_lens[0])]
            } else {
                blocks
                    .iter()
                    .map(|b| b.buf)
                    .zip(p.block_lens.iter().copied())
                    .collect()
            };
            let data = ctx.run(&[], &outs).await?.concat();
            params.insert(p.name.clone(), Tensor::new(&p.shape, data)?);
        }
        Model::new(self.arch.clone(), params)
    }
}

fn build(
    ctx: &GpuContext,
    model: GpuPlan,
    arch: &Arch,
    batch: usize,
    opt: Sgd,
    conv: ConvAlgo,
    lrn: LrnAlgo,
) -> Result<GpuTrainer> {
    let end = crate::model::loss_layers(arch);
    if end == 0 {
        return Err(Error::Arch(
            "nothing to train: no layers before the loss".into(),
        ));
    }
    let plan = arch.plan_to(batch, end)?;
    let classes = match &plan[end - 1].output[1..] {
        [k] if *k > 0 => *k,
        s => {
            return Err(Error::Arch(format!(
                "the loss needs (N, K) logits, the last layer gives (N, {s:?})"
            )))
        }
    };

    // gradient buffers of every layer output (Flatten shares its input's)
    let mut dbufs: Vec<wgpu::Buffer> = Vec::new();
    let mut dout_of: Vec<usize> = Vec::with_capacity(end);
    for step in &plan {
        let idx = step.index;
        if matches!(step.geom, Geom::Flatten) && idx > 0 {
            dout_of.push(dout_of[idx - 1]);
        } else {
            let count = step.out_count();
            dbufs.push(ctx.storage(&format!("d {}", step.name()), count)?);
            dout_of.push(dbufs.len() - 1);
        }
    }
    // a linear first layer still needs somewhere to write dx; conv first layers skip it
    let dinput = match arch.layers.first() {
        Some(Layer::Linear(_)) => {
            Some(ctx.storage("d input", batch * arch.input.iter().product::<usize>())?)
        }
        _ => None,
    };

    let labels = ctx.storage("labels", batch)?;
    let losses = ctx.storage("losses", batch)?;
    let logits = model
        .output_buffer(end - 1)
        .ok_or_else(|| Error::Gpu("no logits buffer".into()))?;
    let loss = ops::softmax_xent(
        ctx,
        batch,
        classes,
        logits,
        &labels,
        &losses,
        &dbufs[dout_of[end - 1]],
    )?;

    let mut backward = Vec::new();
    let mut backward_layer = Vec::new();
    let mut dropouts = Vec::new();
    let mut params = Vec::new();
    for step in plan.iter().rev() {
        let idx = step.index;
        backward_layer.resize(backward.len(), idx + 1);
        let layer = step.layer;
        let in_count = step.in_count();
        let x = if idx == 0 {
            model.input_buffer()
        } else {
            model
                .output_buffer(idx - 1)
                .ok_or_else(|| Error::Gpu(format!("no output buffer for layer {}", idx - 1)))?
        };
        let dout = &dbufs[dout_of[idx]];
        let din = if idx == 0 {
            dinput.as_ref()
        } else {
            Some(&dbufs[dout_of[idx - 1]])
        };
        match (layer, step.geom) {
            (Layer::Conv(spec), Geom::Conv(g)) => {
                let (blocks, _) = model
                    .layer_params(idx)
                    .ok_or_else(|| Error::Gpu(format!("{}: no parameters", spec.name)))?;
                let wbuf = blocks
                    .first()
                    .ok_or_else(|| Error::Gpu(format!("{}: no weight", spec.name)))?
                    .buf;
                let wlen: usize = g.weight_shape().iter().product();
                let dw = ctx.storage(&format!("d {}.weight", spec.name), wlen)?;
                let db = ctx.storage(&format!("d {}.bias", spec.name), g.c_out)?;
                if let Some(din) = din {
                    let algo = ops::conv_backward_data_algo(ctx, &g, conv);
                    backward.push(ops::conv2d_backward_data(ctx, &g, algo, dout, wbuf, din)?);
                }
                backward.extend(ops::conv2d_backward_params(
                    ctx, &g, conv, dout, x, &dw, &db,
                )?);
                let weight = (g.weight_shape().to_vec(), vec![wlen], vec![dw]);
                params.extend(param_states(ctx, &spec.name, idx, weight, (g.c_out, db))?);
            }
            (Layer::Linear(spec), Geom::Linear(g)) => {
                let (blocks, _) = model
                    .layer_params(idx)
                    .ok_or_else(|| Error::Gpu(format!("{}: no parameters", spec.name)))?;
                let lens: Vec<usize> = blocks.iter().map(|b| b.rows * spec.in_features).collect();
                let dws = lens
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| ctx.storage(&format!("d {}.weight[{i}]", spec.name), n))
                    .collect::<Result<Vec<_>>>()?;
                let db = ctx.storage(&format!("d {}.bias", spec.name), spec.out_features)?;
                let din = din.ok_or_else(|| Error::Gpu("linear: no input gradient".into()))?;
                let dwrefs: Vec<&wgpu::Buffer> = dws.iter().collect();
                backward.extend(ops::linear_backward(
                    ctx, &g, dout, x, &blocks, din, &dwrefs, &db,
                )?);
                let weight = (vec![spec.out_features, spec.in_features], lens, dws);
                params.extend(param_states(
                    ctx,
                    &spec.name,
                    idx,
                    weight,
                    (spec.out_features, db),
                )?);
            }
            _ if din.is_none() => {} // a parameterless first layer: nothing to compute
            (Layer::Flatten { .. }, _) => {}
            (Layer::Relu { .. }, _) => {
                let din = din.ok_or_else(|| Error::Gpu("relu: no input gradient".into()))?;
                backward.push(ops::relu_backward(ctx, in_count, dout, x, din)?);
            }
            (Layer::Lrn(_spec), Geom::Lrn(g)) => {
                let out = model
                    .output_buffer(idx)
                    .ok_or_else(|| Error::Gpu("lrn out".into()))?;
                let scale = model
                    .saved_buffer(idx)
                    .ok_or_else(|| Error::Gpu("lrn scale".into()))?;
                let din = din.ok_or_else(|| Error::Gpu("lrn: no input gradient".into()))?;
                backward.push(ops::lrn_backward(ctx, &g, lrn, dout, x, out, scale, din)?);
            }
            (Layer::MaxPool(_spec), Geom::MaxPool(g)) => {
                let argmax = model
                    .saved_buffer(idx)
                    .ok_or_else(|| Error::Gpu("maxpool argmax".into()))?;
                let din = din.ok_or_else(|| Error::Gpu("maxpool: no input gradient".into()))?;
                backward.push(ops::maxpool_backward(ctx, &g, dout, argmax, din)?);
            }
            (Layer::AdaptiveAvgPool(_spec), Geom::AvgPool(g)) => {
                let din = din.ok_or_else(|| Error::Gpu("avgpool: no input gradient".into()))?;
                backward.push(ops::avgpool_backward(ctx, &g, dout, din)?);
            }
            (Layer::Dropout(spec), _) => {
                let din = din.ok_or_else(|| Error::Gpu("dropout: no input gradient".into()))?;
                dropouts.push((idx, backward.len(), spec.p, in_count));
                backward.push(ops::dropout_backward(ctx, in_count, spec.p, 0, dout, din)?);
            }
            (Layer::Softmax { .. }, _) => {
                return Err(Error::Arch(format!(
                    "training through a Softmax that is not the last layer ({:?}) is not \
                     supported: the loss fuses the final softmax",
                    layer.name()
                )))
            }
            _ => return Err(super::plan::mismatch(step)),
        }
    }

    backward_layer.resize(backward.len(), 0);

    // parameters in the model's key order; SGD: one dispatch per parameter buffer, in the
    // order of `params` and their blocks (what `set_sgd` relies on)
    params.sort_by(|a, b| a.name.cmp(&b.name));
    let mut sgd = Vec::new();
    let mut sgd_layer = Vec::new();
    for p in &params {
        let (blocks, bias) = model
            .layer_params(p.layer)
            .ok_or_else(|| Error::Gpu(format!("{}: no parameter buffers", p.name)))?;
        let bufs: Vec<&wgpu::Buffer> = if p.bias {
            vec![bias]
        } else {
            blocks.iter().map(|b| b.buf).collect()
        };
        for (((w, v), g), &len) in bufs
            .iter()
            .zip(&p.velocities)
            .zip(&p.grads)
            .zip(&p.block_lens)
        {
            sgd.push(ops::sgd(ctx, &opt, len, w, v, g)?);
            sgd_layer.push(p.layer);
        }
    }

    Ok(GpuTrainer {
        model,
        arch: arch.clone(),
        batch,
        classes,
        end,
        labels,
        losses,
        dbufs,
        loss,
        backward,
        backward_layer,
        dropouts,
        params,
        sgd,
        sgd_layer,
        frozen: Vec::new(),
        opt,
    })
}

/// A weight's gradient blocks: its shape, each block's length and gradient buffer.
type WeightGrads = (Vec<usize>, Vec<usize>, Vec<wgpu::Buffer>);

/// The update state of layer `layer_name`'s weight (`weight`) and bias (its length and
/// gradient buffer, one block), momentum buffers allocated here.
fn param_states(
    ctx: &GpuContext,
    layer_name: &str,
    layer: usize,
    (shape, block_lens, grads): WeightGrads,
    (bias_len, db): (usize, wgpu::Buffer),
) -> Result<[ParamState; 2]> {
    let state = |bias: bool, shape, block_lens: Vec<usize>, grads| {
        let name = format!("{layer_name}.{}", if bias { "bias" } else { "weight" });
        let velocities = block_lens
            .iter()
            .enumerate()
            .map(|(i, &n)| ctx.storage(&format!("v {name}[{i}]"), n))
            .collect::<Result<Vec<_>>>()?;
        Ok(ParamState {
            name,
            shape,
            layer,
            bias,
            block_lens,
            grads,
            velocities,
        })
    };
    Ok([
        state(false, shape, block_lens, grads)?,
        state(true, vec![bias_len], vec![bias_len], vec![db])?,
    ])
}
