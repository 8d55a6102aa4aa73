//! The importer's layer builders: one ONNX operator (Conv, LRN, pools, Flatten/Reshape,
//! Gemm/MatMul/Add, Dropout) into one `Layer` and its parameters.

use super::decode::*;
use super::import::{node_err, Importer, Last};
use super::proto::NodeProto;
use super::*;
use crate::error::Result;
use crate::model::{
    AvgPoolSpec, ConvSpec, DropoutSpec, Layer, LinearSpec, LrnAlpha, LrnSpec, Pads, PoolSpec,
};
use crate::shape::Rounding;
use crate::tensor::Tensor;

impl Importer {
    pub(super) fn conv(&mut self, node: &NodeProto) -> Result<()> {
        let [c, _, _] = self.chw(node)?;
        check_auto_pad(node)?;
        check_ones(node, "dilations")?;
        let (wd, w) = self
            .float_input(node, 1)?
            .ok_or_else(|| node_err(node, "has no weight input"))?;
        let [m, cg, kh, kw] = match wd.as_slice() {
            [m, cg, kh, kw] => [*m, *cg, *kh, *kw],
            d => {
                return Err(node_err(
                    node,
                    format!("weight must be 4-D (M, C/group, kH, kW), got {d:?}"),
                ))
            }
        };
        let group = attr_int(node, "group")?.unwrap_or(1);
        let group = usize::try_from(group)
            .ok()
            .filter(|g| *g >= 1 && *g as i64 <= MAX_DIM)
            .ok_or_else(|| node_err(node, format!("invalid group {group}")))?;
        if cg.checked_mul(group) != Some(c) {
            return Err(node_err(
                node,
                format!(
                    "weight {wd:?} with group {group} expects {} input channels, the input has {c}",
                    cg.saturating_mul(group)
                ),
            ));
        }
        if let Some(ks) = attr_ints(node, "kernel_shape")? {
            if ks != [kh as i64, kw as i64] {
                return Err(node_err(
                    node,
                    format!("kernel_shape {ks:?} does not match the weight {wd:?}"),
                ));
            }
        }
        let stride = pair(node, "strides", [1, 1])?;
        let pads = pads(node)?;
        let b = match self.float_input(node, 2)? {
            Some((bd, b)) => {
                if b.len() != m {
                    return Err(node_err(
                        node,
                        format!("bias has shape {bd:?}, expected [{m}]"),
                    ));
                }
                b
            }
            None => vec![0.0; m],
        };
        self.nconv += 1;
        self.last = Last::Conv(self.nconv);
        let name = self.unique(format!("conv{}", self.nconv));
        self.add_params(&name, Tensor::new(&wd, w)?, Tensor::new(&[m], b)?);
        self.push(
            node,
            Layer::Conv(ConvSpec {
                name,
                in_channels: c,
                out_channels: m,
                kernel: [kh, kw],
                stride,
                pads,
                groups: group,
            }),
        )
    }

    pub(super) fn add_params(&mut self, layer: &str, w: Tensor, b: Tensor) {
        self.params.insert(format!("{layer}.weight"), w);
        self.params.insert(format!("{layer}.bias"), b);
    }

    pub(super) fn lrn(&mut self, node: &NodeProto) -> Result<()> {
        self.chw(node)?;
        let size = attr_int(node, "size")?
            .ok_or_else(|| node_err(node, "the size attribute is required"))?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s >= 1 && *s as i64 <= MAX_DIM)
            .ok_or_else(|| node_err(node, format!("invalid size {size}")))?;
        let name = self.unique(format!("norm{}", self.last.number()));
        let layer = Layer::Lrn(LrnSpec {
            name,
            size,
            alpha: attr_float(node, "alpha")?.unwrap_or(1e-4),
            beta: attr_float(node, "beta")?.unwrap_or(0.75),
            k: attr_float(node, "bias")?.unwrap_or(1.0),
            // ONNX: square_sum * alpha / size.
            alpha_mode: LrnAlpha::OverN,
        });
        self.push(node, layer)
    }

    pub(super) fn maxpool(&mut self, node: &NodeProto) -> Result<()> {
        self.chw(node)?;
        check_auto_pad(node)?;
        check_ones(node, "dilations")?;
        if let Some(so) = attr_int(node, "storage_order")? {
            if so != 0 {
                return Err(node_err(
                    node,
                    format!("storage_order {so} is not supported (only 0)"),
                ));
            }
        }
        if node.output.get(1).is_some_and(|o| !o.is_empty()) {
            return Err(node_err(node, "the Indices output is not supported"));
        }
        let kernel = pair(node, "kernel_shape", [0, 0])?;
        if kernel.contains(&0) {
            return Err(node_err(node, "kernel_shape is required"));
        }
        let stride = pair(node, "strides", [1, 1])?;
        let pads = pads(node)?;
        let rounding = match attr_int(node, "ceil_mode")?.unwrap_or(0) {
            0 => Rounding::Floor,
            1 => Rounding::Ceil,
            c => return Err(node_err(node, format!("invalid ceil_mode {c}"))),
        };
        let name = self.unique(format!("pool{}", self.last.number()));
        self.push(
            node,
            Layer::MaxPool(PoolSpec {
                name,
                kernel,
                stride,
                pads,
                rounding,
            }),
        )
    }

    /// AveragePool is imported only as what torch exports for AdaptiveAvgPool2d when the
    /// input size is a multiple of the output size: kernel == stride, no padding.
    pub(super) fn avgpool(&mut self, node: &NodeProto) -> Result<()> {
        let [_, h, w] = self.chw(node)?;
        check_auto_pad(node)?;
        check_ones(node, "dilations")?;
        let kernel = pair(node, "kernel_shape", [0, 0])?;
        let stride = pair(node, "strides", [1, 1])?;
        let pads = pads(node)?;
        if kernel.contains(&0) {
            return Err(node_err(node, "kernel_shape is required"));
        }
        if kernel != stride || pads != Pads::default() || h % kernel[0] != 0 || w % kernel[1] != 0 {
            return Err(node_err(
                node,
                format!(
                    "only non-overlapping average pooling that tiles the input exactly is supported \
                     (kernel {kernel:?} == strides {stride:?}, no pads, input {h}x{w} divisible), as exported for AdaptiveAvgPool2d"
                ),
            ));
        }
        let name = self.unique("avgpool".into());
        self.push(
            node,
            Layer::AdaptiveAvgPool(AvgPoolSpec {
                name,
                out: [h / kernel[0], w / kernel[1]],
            }),
        )
    }

    pub(super) fn flatten(&mut self, node: &NodeProto) -> Result<()> {
        if self.shape.len() == 1 {
            return Ok(()); // already (N, F)
        }
        let name = self.unique("flatten".into());
        self.push(node, Layer::Flatten { name })
    }

    pub(super) fn reshape(&mut self, node: &NodeProto) -> Result<()> {
        let target = self.ints_input(node, 1)?;
        let allowzero = attr_int(node, "allowzero")?.unwrap_or(0) != 0;
        let f: usize = self.shape.iter().product();
        let ok = match target.as_slice() {
            // (N, F) with N copied (0), inferred (-1) or 1 (the zoo's batch-1 graphs: per image
            // that is the same flatten).
            [n, x] => {
                (*n == -1 || *n == 1 || (*n == 0 && !allowzero)) && (*x == -1 || *x == f as i64)
            }
            _ => false,
        };
        if !ok {
            return Err(node_err(
                node,
                format!("only a flatten to (N, -1) is supported; shape {target:?} on per-image shape {:?}", self.shape),
            ));
        }
        self.flatten(node)
    }

    pub(super) fn flat_features(&self, node: &NodeProto) -> Result<usize> {
        match self.shape.as_slice() {
            [f] => Ok(*f),
            s => Err(node_err(
                node,
                format!("needs a flat (N, F) input, got per-image shape {s:?}"),
            )),
        }
    }

    pub(super) fn new_fc(
        &mut self,
        node: &NodeProto,
        inf: usize,
        w: Tensor,
        b: Vec<f32>,
    ) -> Result<()> {
        let outf = w.shape[0];
        self.nfc += 1;
        let k = self.nconv + self.nfc;
        self.last = Last::Fc(k);
        let name = self.unique(format!("fc{k}"));
        self.add_params(&name, w, Tensor::new(&[outf], b)?);
        self.push(
            node,
            Layer::Linear(LinearSpec {
                name,
                in_features: inf,
                out_features: outf,
            }),
        )
    }

    pub(super) fn gemm(&mut self, node: &NodeProto) -> Result<()> {
        let inf = self.flat_features(node)?;
        if attr_int(node, "transA")?.unwrap_or(0) != 0 {
            return Err(node_err(node, "transA = 1 is not supported"));
        }
        let trans_b = attr_int(node, "transB")?.unwrap_or(0) != 0;
        let alpha = attr_float(node, "alpha")?.unwrap_or(1.0);
        let beta = attr_float(node, "beta")?.unwrap_or(1.0);
        let (bd, mut w) = self
            .float_input(node, 1)?
            .ok_or_else(|| node_err(node, "has no B input"))?;
        let (r, c) = match bd.as_slice() {
            [r, c] => (*r, *c),
            d => return Err(node_err(node, format!("B must be 2-D, got {d:?}"))),
        };
        let (outf, k) = if trans_b { (r, c) } else { (c, r) };
        if k != inf {
            return Err(node_err(
                node,
                format!(
                    "B {bd:?} (transB {}) expects {k} inputs, got {inf}",
                    trans_b as u8
                ),
            ));
        }
        if !trans_b {
            w = transpose(&w, r, c);
        }
        if alpha != 1.0 {
            w.iter_mut().for_each(|v| *v *= alpha);
        }
        let mut b = match self.float_input(node, 2)? {
            None => vec![0.0; outf],
            Some((cd, cv)) => broadcast_bias(&cd, cv, outf).map_err(|m| node_err(node, m))?,
        };
        if beta != 1.0 {
            b.iter_mut().for_each(|v| *v *= beta);
        }
        self.new_fc(node, inf, Tensor::new(&[outf, inf], w)?, b)
    }

    pub(super) fn matmul(&mut self, node: &NodeProto) -> Result<()> {
        let inf = self.flat_features(node)?;
        let (bd, w) = self
            .float_input(node, 1)?
            .ok_or_else(|| node_err(node, "has no B input"))?;
        let (r, c) = match bd.as_slice() {
            [r, c] if *r == inf => (*r, *c),
            d => {
                return Err(node_err(
                    node,
                    format!("B must be a constant ({inf}, out) matrix, got {d:?}"),
                ))
            }
        };
        let w = transpose(&w, r, c);
        self.new_fc(node, inf, Tensor::new(&[c, r], w)?, vec![0.0; c])?;
        self.matmul_fc = Some(self.layers.len() - 1);
        Ok(())
    }

    pub(super) fn add_bias(&mut self, node: &NodeProto, data_ix: usize) -> Result<()> {
        let Some(ix) = self.matmul_fc.take() else {
            return Err(node_err(
                node,
                "Add is only supported as the bias of a preceding MatMul",
            ));
        };
        let name = self.layers[ix].name().to_string();
        let outf = self.shape.first().copied().unwrap_or(0);
        let (cd, cv) = self
            .float_input(node, 1 - data_ix)?
            .ok_or_else(|| node_err(node, "needs two inputs"))?;
        let add = broadcast_bias(&cd, cv, outf).map_err(|m| node_err(node, m))?;
        let bias = self
            .params
            .get_mut(&format!("{name}.bias"))
            .ok_or_else(|| node_err(node, "internal: fc bias missing"))?;
        bias.data.iter_mut().zip(add).for_each(|(b, a)| *b += a);
        Ok(())
    }

    pub(super) fn dropout(&mut self, node: &NodeProto) -> Result<()> {
        let mut p = attr_float(node, "ratio")?.unwrap_or(0.5);
        if node.input.get(1).is_some_and(|s| !s.is_empty()) {
            let (_, r) = self
                .float_input(node, 1)?
                .ok_or_else(|| node_err(node, "ratio input missing"))?;
            p = *r
                .first()
                .ok_or_else(|| node_err(node, "ratio input is empty"))?;
        }
        if let Some(tm) = node.input.get(2).filter(|s| !s.is_empty()) {
            let t = self
                .consts
                .get(tm)
                .ok_or_else(|| node_err(node, "training_mode must be a constant"))?;
            let v = tensor_f32(t, tm)
                .or_else(|_| tensor_i64(t).map(|v| v.iter().map(|x| *x as f32).collect()));
            if v.map_or(true, |v| v.iter().any(|x| *x != 0.0)) {
                return Err(node_err(
                    node,
                    "training_mode = true is not supported (inference graphs only)",
                ));
            }
        }
        if !(0.0..1.0).contains(&p) {
            return Err(node_err(node, format!("ratio {p} must be in [0, 1)")));
        }
        // Renamed once the whole chain is known (see `name_dropouts`).
        let name = format!("\u{0}dropout{}", self.layers.len());
        self.push(node, Layer::Dropout(DropoutSpec { name, p }))
    }
}
