//! A model = an architecture plus its parameters (the reference backend's forward and
//! backward through it are in `crate::reference::network`).
//! Parameters are keyed `"{layer}.weight"` / `"{layer}.bias"` (see `Arch::param_shapes`)
//! whatever file they came from; gradients use the same keys.
//!
//! Shapes: the network input is `(N, C, H, W)` with `(C, H, W) = arch.input`; every layer's
//! output carries the batch dimension: `(N, C, H, W)` or `(N, F)`.

use super::{Arch, Layer};
use crate::error::{Error, Result};
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

    /// The gradients of layer `name`'s weight and bias: `backward(weight, dweight, dbias)`
    /// writes them into zeroed tensors of the parameters' shapes, which are then filed in
    /// `grads` under the parameters' keys.
    pub fn param_grads(
        &self,
        name: &str,
        grads: &mut Params,
        backward: impl FnOnce(&[f32], &mut [f32], &mut [f32]) -> Result<()>,
    ) -> Result<()> {
        let wt = self.weight(name)?;
        let mut dw = Tensor::zeros(&wt.shape);
        let mut db = Tensor::zeros(&self.bias(name)?.shape);
        backward(&wt.data, &mut dw.data, &mut db.data)?;
        grads.insert(format!("{name}.weight"), dw);
        grads.insert(format!("{name}.bias"), db);
        Ok(())
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
