//! The reference backend's walk through a whole network: each layer's forward and backward
//! from the per-layer functions of this module, in f64 where they sum, every activation
//! kept for the backward (the oracle the fast CPU and GPU backends are tested against).
//!
//! Shapes: the network input is `(N, C, H, W)` with `(C, H, W) = arch.input`; every layer's
//! output carries the batch dimension: `(N, C, H, W)` or `(N, F)`.

use crate::elementwise::softmax_xent;
use crate::error::{Error, Result};
use crate::model::{loss_layers, Geom, Mode, Model, Params, Saved, Step, Trace};
use crate::reference;
use crate::tensor::Tensor;

fn shape_err(what: String, expected: &[usize], got: &[usize]) -> Error {
    Error::Shape {
        what,
        expected: expected.to_vec(),
        got: got.to_vec(),
    }
}

impl Model {
    /// Forward of one step of the plan on `x` `(N, ...)`.
    fn layer_forward(&self, step: &Step, x: &Tensor, mode: Mode) -> Result<(Tensor, Saved)> {
        let mut out = Tensor::zeros(&step.output);
        let name = step.name();
        let saved = match step.geom {
            Geom::Conv(g) => {
                let (wt, b) = (self.weight(name)?, self.bias(name)?);
                reference::conv2d_forward(&g, &x.data, &wt.data, &b.data, &mut out.data)?;
                Saved::Nothing
            }
            Geom::Relu => {
                reference::relu_forward(&x.data, &mut out.data)?;
                Saved::Nothing
            }
            Geom::Lrn(g) => {
                let mut scale = vec![0.0; x.len()];
                reference::lrn_forward(&g, &x.data, &mut out.data, &mut scale)?;
                Saved::LrnScale(scale)
            }
            Geom::MaxPool(g) => {
                let mut argmax = vec![0u32; out.len()];
                reference::maxpool_forward(&g, &x.data, &mut out.data, &mut argmax)?;
                Saved::Argmax(argmax)
            }
            Geom::AvgPool(g) => {
                reference::adaptive_avgpool_forward(&g, &x.data, &mut out.data)?;
                Saved::Nothing
            }
            Geom::Flatten => {
                out.data.copy_from_slice(&x.data);
                Saved::Nothing
            }
            Geom::Linear(g) => {
                let (wt, b) = (self.weight(name)?, self.bias(name)?);
                reference::linear_forward(&g, &x.data, &wt.data, &b.data, &mut out.data)?;
                Saved::Nothing
            }
            Geom::Dropout { p } => match mode {
                Mode::Eval => {
                    out.data.copy_from_slice(&x.data);
                    Saved::Nothing
                }
                Mode::Train { seed } => {
                    let s = reference::dropout_layer_seed(seed, step.index);
                    reference::dropout_forward(p, s, &x.data, &mut out.data)?;
                    Saved::DropoutSeed(s)
                }
            },
            Geom::Softmax { n, k } => {
                reference::softmax_forward(n, k, &x.data, &mut out.data)?;
                Saved::Nothing
            }
        };
        Ok((out, saved))
    }

    /// Runs layers `0..end`. With `keep_all` the trace holds every activation; otherwise
    /// only the last one (and no saved state).
    fn run(&self, x: &Tensor, mode: Mode, end: usize, keep_all: bool) -> Result<Trace> {
        let n = self.arch.check_input(x)?;
        let mut acts = vec![x.clone()];
        let mut saved = Vec::new();
        for step in self.arch.plan_to(n, end)? {
            let (out, s) = self.layer_forward(&step, &acts[acts.len() - 1], mode)?;
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
            return Err(Error::Internal(format!(
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
        let n = trace.acts[0].shape.first().copied().unwrap_or(0);
        let plan = self.arch.plan_to(n, end)?;
        for step in plan.iter().rev() {
            let idx = step.index;
            let layer = step.layer;
            let (inp, out) = (&trace.acts[idx], &trace.acts[idx + 1]);
            if out.shape != d.shape {
                return Err(shape_err(
                    format!("backward: gradient of layer {:?}", layer.name()),
                    &out.shape,
                    &d.shape,
                ));
            }
            let name = step.name();
            let mut dinp = Tensor::zeros(&inp.shape);
            match (step.geom, &trace.saved[idx]) {
                (Geom::Conv(g), _) => self.param_grads(name, &mut grads, |w, dw, db| {
                    reference::conv2d_backward(&g, &d.data, &inp.data, w, &mut dinp.data, dw, db)
                })?,
                (Geom::Relu, _) => reference::relu_backward(&d.data, &inp.data, &mut dinp.data)?,
                (Geom::Lrn(g), Saved::LrnScale(scale)) => {
                    reference::lrn_backward(
                        &g,
                        &d.data,
                        &inp.data,
                        &out.data,
                        scale,
                        &mut dinp.data,
                    )?;
                }
                (Geom::MaxPool(g), Saved::Argmax(argmax)) => {
                    reference::maxpool_backward(&g, &d.data, argmax, &mut dinp.data)?;
                }
                (Geom::AvgPool(g), _) => {
                    reference::adaptive_avgpool_backward(&g, &d.data, &mut dinp.data)?;
                }
                (Geom::Flatten, _) => dinp.data.copy_from_slice(&d.data),
                (Geom::Linear(g), _) => self.param_grads(name, &mut grads, |w, dw, db| {
                    reference::linear_backward(&g, &d.data, &inp.data, w, &mut dinp.data, dw, db)
                })?,
                (Geom::Dropout { p }, Saved::DropoutSeed(s)) => {
                    reference::dropout_backward(p, *s, &d.data, &mut dinp.data)?
                }
                (Geom::Dropout { .. }, _) => dinp.data.copy_from_slice(&d.data),
                (Geom::Softmax { n, k }, _) => {
                    reference::softmax_backward(n, k, &d.data, &out.data, &mut dinp.data)?;
                }
                (_, s) => {
                    return Err(Error::Internal(format!(
                        "backward: layer {:?} ({}) has no saved state of its kind (got {s:?})",
                        layer.name(),
                        layer.kind()
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
