//! A model = an architecture plus its parameters, and the CPU-reference forward and
//! backward passes through it (built from the per-layer functions in `crate::cpu`).
//! Parameters are keyed `"{layer}.weight"` / `"{layer}.bias"` (see `Arch::param_shapes`)
//! whatever file they came from; gradients use the same keys.
//!
//! Shapes: the network input is `(N, C, H, W)` with `(C, H, W) = arch.input`; every layer's
//! output carries the batch dimension: `(N, C, H, W)` or `(N, F)`.

use crate::cpu;
use crate::error::{Error, Result};
use crate::model::{Arch, Layer};
use crate::tensor::{Rng, Tensor};
use std::collections::BTreeMap;

pub type Params = BTreeMap<String, Tensor>;

#[derive(Clone, Debug)]
pub struct Model {
    pub arch: Arch,
    pub params: Params,
}

impl Model {
    /// Checks that `params` has exactly the tensors `arch` needs, with the right shapes, and
    /// that every value is finite (NaN/Inf weights are an error: such a model can only
    /// produce NaN, so loading it would hide the real problem).
    pub fn new(arch: Arch, params: Params) -> Result<Model> {
        arch.validate()?;
        let expected = arch.param_shapes();
        for (name, shape) in &expected {
            let t = params.get(name).ok_or_else(|| {
                Error::Weights(format!("missing tensor {name:?} (shape {shape:?})"))
            })?;
            if &t.shape != shape {
                return Err(Error::Shape {
                    what: format!("weight {name}"),
                    expected: shape.clone(),
                    got: t.shape.clone(),
                });
            }
            let bad = t.non_finite();
            if bad > 0 {
                return Err(Error::NonFinite {
                    name: name.clone(),
                    count: bad,
                });
            }
        }
        if let Some(extra) = params
            .keys()
            .find(|k| !expected.iter().any(|(n, _)| n == *k))
        {
            return Err(Error::Weights(format!(
                "unexpected tensor {extra:?}: this {} architecture has no such parameter",
                arch.family.as_str()
            )));
        }
        Ok(Model { arch, params })
    }

    /// Seeded random weights (N(0, std) with std = sqrt(2 / fan_in), He), biases uniform in
    /// [-0.1, 0.1]: used for tests and for the same-shaped stand-ins of real weight files. The
    /// paper's training init lives with the trainer.
    pub fn random(arch: Arch, seed: u64) -> Result<Model> {
        let mut rng = Rng::new(seed);
        let mut params = Params::new();
        for (name, shape) in arch.param_shapes() {
            let mut t = Tensor::zeros(&shape);
            if name.ends_with(".weight") {
                let fan_in: usize = shape[1..].iter().product();
                rng.fill_normal(&mut t.data, (2.0 / fan_in as f32).sqrt());
            } else {
                rng.fill_uniform(&mut t.data, -0.1, 0.1);
            }
            params.insert(name, t);
        }
        Model::new(arch, params)
    }

    pub fn weight(&self, layer: &str) -> Result<&Tensor> {
        self.param(&format!("{layer}.weight"))
    }

    pub fn bias(&self, layer: &str) -> Result<&Tensor> {
        self.param(&format!("{layer}.bias"))
    }

    fn param(&self, key: &str) -> Result<&Tensor> {
        self.params
            .get(key)
            .ok_or_else(|| Error::Weights(format!("missing tensor {key:?}")))
    }

    /// The layers, for callers that walk the network.
    pub fn layers(&self) -> &[Layer] {
        &self.arch.layers
    }
}

/// Whether dropout is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Inference: dropout is the identity.
    Eval,
    /// Training: dropout layer `i` uses the mask of `cpu::dropout_layer_seed(seed, i)`.
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

fn shape_err(what: String, expected: &[usize], got: &[usize]) -> Error {
    Error::Shape {
        what,
        expected: expected.to_vec(),
        got: got.to_vec(),
    }
}

impl Model {
    /// Forward of layer `idx` on `x` (with batch dim).
    fn layer_forward(&self, idx: usize, x: &Tensor, mode: Mode) -> Result<(Tensor, Saved)> {
        let layer = &self.arch.layers[idx];
        let n = x.shape.first().copied().unwrap_or(0);
        let mut out_shape = vec![n];
        out_shape.extend(layer.output_shape(&x.shape[1..])?);
        let mut out = Tensor::zeros(&out_shape);
        let saved = match layer {
            Layer::Conv(spec) => {
                let [n, _, h, w] = x.nchw(&spec.name)?;
                let g = cpu::ConvGeom::new(spec, n, h, w)?;
                let (wt, b) = (self.weight(&spec.name)?, self.bias(&spec.name)?);
                cpu::conv2d_forward(&g, &x.data, &wt.data, &b.data, &mut out.data)?;
                Saved::Nothing
            }
            Layer::Relu { .. } => {
                cpu::relu_forward(&x.data, &mut out.data)?;
                Saved::Nothing
            }
            Layer::Lrn(spec) => {
                let [n, c, h, w] = x.nchw(&spec.name)?;
                let g = cpu::LrnGeom::new(spec, n, c, h, w)?;
                let mut scale = vec![0.0; x.len()];
                cpu::lrn_forward(&g, &x.data, &mut out.data, &mut scale)?;
                Saved::LrnScale(scale)
            }
            Layer::MaxPool(spec) => {
                let [n, c, h, w] = x.nchw(&spec.name)?;
                let g = cpu::PoolGeom::new(spec, n, c, h, w)?;
                let mut argmax = vec![0u32; out.len()];
                cpu::maxpool_forward(&g, &x.data, &mut out.data, &mut argmax)?;
                Saved::Argmax(argmax)
            }
            Layer::AdaptiveAvgPool(spec) => {
                let [n, c, h, w] = x.nchw(&spec.name)?;
                let g = cpu::AvgPoolGeom::new(spec, n, c, h, w)?;
                cpu::adaptive_avgpool_forward(&g, &x.data, &mut out.data)?;
                Saved::Nothing
            }
            Layer::Flatten { .. } => {
                out.data.copy_from_slice(&x.data);
                Saved::Nothing
            }
            Layer::Linear(spec) => {
                let g = cpu::LinearGeom::new(spec, n);
                let (wt, b) = (self.weight(&spec.name)?, self.bias(&spec.name)?);
                cpu::linear_forward(&g, &x.data, &wt.data, &b.data, &mut out.data)?;
                Saved::Nothing
            }
            Layer::Dropout(spec) => match mode {
                Mode::Eval => {
                    out.data.copy_from_slice(&x.data);
                    Saved::Nothing
                }
                Mode::Train { seed } => {
                    let s = cpu::dropout_layer_seed(seed, idx);
                    cpu::dropout_forward(spec.p, s, &x.data, &mut out.data)?;
                    Saved::DropoutSeed(s)
                }
            },
            Layer::Softmax { .. } => {
                let k = x.len().checked_div(n).unwrap_or(0);
                cpu::softmax_forward(n, k, &x.data, &mut out.data)?;
                Saved::Nothing
            }
        };
        Ok((out, saved))
    }

    /// Runs layers `0..end`. With `keep_all` the trace holds every activation; otherwise
    /// only the last one (and no saved state).
    fn run(&self, x: &Tensor, mode: Mode, end: usize, keep_all: bool) -> Result<Trace> {
        self.arch.check_input(x)?;
        let mut acts = vec![x.clone()];
        let mut saved = Vec::new();
        for idx in 0..end {
            let (out, s) = self.layer_forward(idx, &acts[acts.len() - 1], mode)?;
            if keep_all {
                acts.push(out);
                saved.push(s);
            } else {
                acts = vec![out];
            }
        }
        Ok(Trace { mode, acts, saved })
    }

    /// Every layer's output, in layer order, each with the batch dimension.
    pub fn forward_all(&self, x: &Tensor, mode: Mode) -> Result<Vec<Tensor>> {
        let mut t = self.run(x, mode, self.arch.layers.len(), true)?;
        t.acts.remove(0);
        Ok(t.acts)
    }

    /// Inference: the last layer's output.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut t = self.run(x, Mode::Eval, self.arch.layers.len(), false)?;
        Ok(t.acts.remove(t.acts.len() - 1))
    }

    /// Inference up to and including `layer` (only that prefix is computed).
    pub fn forward_to(&self, x: &Tensor, layer: &str) -> Result<Tensor> {
        let idx = self.arch.layer_index(layer)?;
        let mut t = self.run(x, Mode::Eval, idx + 1, false)?;
        Ok(t.acts.remove(t.acts.len() - 1))
    }

    /// Training-mode forward through every layer, keeping what `backward` needs.
    pub fn forward_train(&self, x: &Tensor, seed: u64) -> Result<Trace> {
        self.run(x, Mode::Train { seed }, self.arch.layers.len(), true)
    }

    /// Backward through the layers `trace` covers, from `dout = dL/d(trace.output())`.
    /// Returns the parameter gradients (keyed like `params`, for those layers) and
    /// `dL/d(input)`.
    pub fn backward(&self, trace: &Trace, dout: &Tensor) -> Result<(Params, Tensor)> {
        let end = trace.saved.len();
        if trace.acts.len() != end + 1 || end > self.arch.layers.len() {
            return Err(Error::Other(format!(
                "backward: trace has {} activations for {end} layers (model has {})",
                trace.acts.len(),
                self.arch.layers.len()
            )));
        }
        let last = trace.output();
        if dout.shape != last.shape || dout.data.len() != last.data.len() {
            return Err(shape_err(
                "backward: dout (shape of the last output)".into(),
                &last.shape,
                &dout.shape,
            ));
        }
        let mut grads = Params::new();
        let mut d = dout.clone();
        for idx in (0..end).rev() {
            let layer = &self.arch.layers[idx];
            let (inp, out) = (&trace.acts[idx], &trace.acts[idx + 1]);
            if out.shape != d.shape {
                return Err(shape_err(
                    format!("backward: gradient of layer {:?}", layer.name()),
                    &out.shape,
                    &d.shape,
                ));
            }
            let n = inp.shape.first().copied().unwrap_or(0);
            let mut dinp = Tensor::zeros(&inp.shape);
            match (layer, &trace.saved[idx]) {
                (Layer::Conv(spec), _) => {
                    let [n, _, h, w] = inp.nchw(&spec.name)?;
                    let g = cpu::ConvGeom::new(spec, n, h, w)?;
                    let wt = self.weight(&spec.name)?;
                    let mut dw = Tensor::zeros(&wt.shape);
                    let mut db = Tensor::zeros(&[spec.out_channels]);
                    cpu::conv2d_backward(
                        &g,
                        &d.data,
                        &inp.data,
                        &wt.data,
                        &mut dinp.data,
                        &mut dw.data,
                        &mut db.data,
                    )?;
                    grads.insert(format!("{}.weight", spec.name), dw);
                    grads.insert(format!("{}.bias", spec.name), db);
                }
                (Layer::Relu { .. }, _) => cpu::relu_backward(&d.data, &inp.data, &mut dinp.data)?,
                (Layer::Lrn(spec), Saved::LrnScale(scale)) => {
                    let [n, c, h, w] = inp.nchw(&spec.name)?;
                    let g = cpu::LrnGeom::new(spec, n, c, h, w)?;
                    cpu::lrn_backward(&g, &d.data, &inp.data, &out.data, scale, &mut dinp.data)?;
                }
                (Layer::MaxPool(spec), Saved::Argmax(argmax)) => {
                    let [n, c, h, w] = inp.nchw(&spec.name)?;
                    let g = cpu::PoolGeom::new(spec, n, c, h, w)?;
                    cpu::maxpool_backward(&g, &d.data, argmax, &mut dinp.data)?;
                }
                (Layer::AdaptiveAvgPool(spec), _) => {
                    let [n, c, h, w] = inp.nchw(&spec.name)?;
                    let g = cpu::AvgPoolGeom::new(spec, n, c, h, w)?;
                    cpu::adaptive_avgpool_backward(&g, &d.data, &mut dinp.data)?;
                }
                (Layer::Flatten { .. }, _) => dinp.data.copy_from_slice(&d.data),
                (Layer::Linear(spec), _) => {
                    let g = cpu::LinearGeom::new(spec, n);
                    let wt = self.weight(&spec.name)?;
                    let mut dw = Tensor::zeros(&wt.shape);
                    let mut db = Tensor::zeros(&[spec.out_features]);
                    cpu::linear_backward(
                        &g,
                        &d.data,
                        &inp.data,
                        &wt.data,
                        &mut dinp.data,
                        &mut dw.data,
                        &mut db.data,
                    )?;
                    grads.insert(format!("{}.weight", spec.name), dw);
                    grads.insert(format!("{}.bias", spec.name), db);
                }
                (Layer::Dropout(spec), Saved::DropoutSeed(s)) => {
                    cpu::dropout_backward(spec.p, *s, &d.data, &mut dinp.data)?
                }
                (Layer::Dropout(_), _) => dinp.data.copy_from_slice(&d.data),
                (Layer::Softmax { .. }, _) => {
                    let k = out.len().checked_div(n).unwrap_or(0);
                    cpu::softmax_backward(n, k, &d.data, &out.data, &mut dinp.data)?;
                }
                (l, s) => {
                    return Err(Error::Other(format!(
                        "backward: layer {:?} ({}) has no saved state of its kind (got {s:?})",
                        l.name(),
                        l.kind()
                    )))
                }
            }
            d = dinp;
        }
        Ok((grads, d))
    }

    /// Mean softmax cross-entropy of the logits for `labels` and its gradient with respect
    /// to every parameter, in training mode (dropout seeded with `seed`). A terminal
    /// `Softmax` layer is skipped: the fused loss includes it, and its gradient
    /// `(probs - onehot) / N` is exact and stable.
    pub fn loss_and_grads(&self, x: &Tensor, labels: &[usize], seed: u64) -> Result<(f32, Params)> {
        let trace = self.run(x, Mode::Train { seed }, loss_layers(&self.arch), true)?;
        let (loss, dlogits) = softmax_xent(trace.output(), labels)?;
        let (grads, _) = self.backward(&trace, &dlogits)?;
        Ok((loss, grads))
    }
}

/// How many layers a training forward runs: all but a terminal `Softmax`, which the fused
/// loss includes.
pub fn loss_layers(arch: &Arch) -> usize {
    let n = arch.layers.len();
    if matches!(arch.layers.last(), Some(Layer::Softmax { .. })) {
        n - 1
    } else {
        n
    }
}

/// The mean softmax cross-entropy of `(N, K)` logits for `labels`, and its gradient
/// `dL/dlogits = (softmax - onehot) / N`, `(N, K)`.
pub fn softmax_xent(logits: &Tensor, labels: &[usize]) -> Result<(f32, Tensor)> {
    let (n, k) = match logits.shape.as_slice() {
        [n, k] => (*n, *k),
        s => {
            return Err(Error::Other(format!(
                "loss: the logits must be (N, K), got {s:?}"
            )))
        }
    };
    let mut probs = vec![0.0; n * k];
    let mut losses = vec![0.0; n];
    let loss = cpu::softmax_xent_forward(n, k, &logits.data, labels, &mut probs, &mut losses)?;
    let mut dlogits = Tensor::zeros(&[n, k]);
    cpu::softmax_xent_backward(n, k, &probs, labels, &mut dlogits.data)?;
    Ok((loss, dlogits))
}
