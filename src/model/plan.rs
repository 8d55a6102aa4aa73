//! The per-layer walk of a network at a batch size: for each layer its input and output
//! shapes `(N, C, H, W)` or `(N, F)` and its geometry, derived once here from the layer's
//! spec and `Layer::output_shape`. Every backend walks this plan (the reference, the fast
//! CPU backend, the GPU's forward and training plans) instead of re-deriving shapes.

use super::arch::Arch;
use super::geometry::{AvgPoolGeom, ConvGeom, LinearGeom, LrnGeom, PoolGeom};
use super::layer::Layer;
use crate::error::Result;

/// One layer's geometry at the plan's batch size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Geom {
    Conv(ConvGeom),
    /// Elementwise over the step's `out_count()` values.
    Relu,
    Lrn(LrnGeom),
    MaxPool(PoolGeom),
    AvgPool(AvgPoolGeom),
    /// A relabelling: `(N, C, H, W)` and `(N, C*H*W)` are the same values.
    Flatten,
    Linear(LinearGeom),
    /// Elementwise; the identity in eval mode.
    Dropout {
        p: f32,
    },
    /// Row-wise over `(n, k)`.
    Softmax {
        n: usize,
        k: usize,
    },
}

/// One layer of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Step<'a> {
    /// The layer's position in `arch.layers` (dropout masks are seeded by it).
    pub index: usize,
    pub layer: &'a Layer,
    /// `(N, ...)`: the batch dimension first.
    pub input: Vec<usize>,
    pub output: Vec<usize>,
    pub geom: Geom,
}

impl Step<'_> {
    /// Values in the whole batch's input.
    pub fn in_count(&self) -> usize {
        self.input.iter().product()
    }

    /// Values in the whole batch's output.
    pub fn out_count(&self) -> usize {
        self.output.iter().product()
    }

    /// The layer's name (its parameters are `"{name}.weight"` / `"{name}.bias"`).
    pub fn name(&self) -> &str {
        self.layer.name()
    }
}

impl Arch {
    /// The plan of every layer for a batch of `n` images.
    pub fn plan(&self, n: usize) -> Result<Vec<Step<'_>>> {
        self.plan_to(n, self.layers.len())
    }

    /// The plan of the first `end` layers for a batch of `n` images.
    pub fn plan_to(&self, n: usize, end: usize) -> Result<Vec<Step<'_>>> {
        let shapes = self.shapes()?;
        let mut input = self.input.to_vec();
        let mut steps = Vec::with_capacity(end);
        for (index, (layer, out)) in self.layers.iter().zip(&shapes).take(end).enumerate() {
            let geom = match layer {
                Layer::Conv(spec) => {
                    let [_, h, w] = layer.chw(&input)?;
                    Geom::Conv(ConvGeom::new(spec, n, h, w)?)
                }
                Layer::Relu { .. } => Geom::Relu,
                Layer::Lrn(spec) => {
                    let [c, h, w] = layer.chw(&input)?;
                    Geom::Lrn(LrnGeom::new(spec, n, c, h, w)?)
                }
                Layer::MaxPool(spec) => {
                    let [c, h, w] = layer.chw(&input)?;
                    Geom::MaxPool(PoolGeom::new(spec, n, c, h, w)?)
                }
                Layer::AdaptiveAvgPool(spec) => {
                    let [c, h, w] = layer.chw(&input)?;
                    Geom::AvgPool(AvgPoolGeom::new(spec, n, c, h, w)?)
                }
                Layer::Flatten { .. } => Geom::Flatten,
                Layer::Linear(spec) => Geom::Linear(LinearGeom::new(spec, n)),
                Layer::Dropout(spec) => Geom::Dropout { p: spec.p },
                Layer::Softmax { .. } => Geom::Softmax {
                    n,
                    k: input.iter().product(),
                },
            };
            let mut full_in = vec![n];
            full_in.extend(&input);
            let mut full_out = vec![n];
            full_out.extend(out);
            steps.push(Step {
                index,
                layer,
                input: full_in,
                output: full_out,
                geom,
            });
            input = out.clone();
        }
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{bvlc, mini};

    #[test]
    fn plan_shapes_chain_and_match_the_arch() {
        for arch in [bvlc(), mini()] {
            let plan = arch.plan(3).unwrap();
            let shapes = arch.shapes().unwrap();
            assert_eq!(plan.len(), arch.layers.len());
            for (i, step) in plan.iter().enumerate() {
                assert_eq!(step.index, i);
                assert_eq!(step.output[0], 3);
                assert_eq!(&step.output[1..], shapes[i].as_slice());
                if i > 0 {
                    assert_eq!(step.input, plan[i - 1].output);
                }
            }
            match plan[0].geom {
                Geom::Conv(g) => assert_eq!([g.n, g.oh, g.ow], [3, shapes[0][1], shapes[0][2]]),
                other => panic!("conv1's geometry is {other:?}"),
            }
        }
    }

    #[test]
    fn a_vector_into_a_conv_is_an_arch_error() {
        let mut arch = mini();
        let conv = arch.layers[0].clone();
        arch.layers.insert(17, conv);
        // validate rejects it first; the plan says which layer when asked directly
        assert!(matches!(arch.plan(1), Err(crate::Error::Arch(_))));
    }
}
