//! Layer specs and their shape rules (the batch dimension `N` is implicit here).

use crate::error::{Error, Result};
use crate::shape::{self, Rounding};
use serde::{Deserialize, Serialize};

/// Padding of a 2-D window: ONNX's `pads = [top, left, bottom, right]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pads {
    pub top: usize,
    pub left: usize,
    pub bottom: usize,
    pub right: usize,
}

impl Pads {
    pub fn same(p: usize) -> Self {
        Pads {
            top: p,
            left: p,
            bottom: p,
            right: p,
        }
    }
}

/// Convolution with groups: weight `(C_out, C_in / groups, KH, KW)`, bias `(C_out)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvSpec {
    pub name: String,
    pub in_channels: usize,
    pub out_channels: usize,
    /// `[KH, KW]`
    pub kernel: [usize; 2],
    /// `[SH, SW]`
    pub stride: [usize; 2],
    pub pads: Pads,
    pub groups: usize,
}

/// Where LRN's alpha is divided by the window size.
/// Paper: `b = a / (k + alpha * sum a^2)^beta` (alpha used as is).
/// Caffe, ONNX, PyTorch: `b = a / (k + alpha / n * sum a^2)^beta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrnAlpha {
    /// The paper's convention: alpha is not divided by n.
    Raw,
    /// Caffe / ONNX / PyTorch: alpha is divided by n.
    OverN,
}

/// Local response normalisation across channels, window of `size` channels centred on c
/// (channels `c - (size-1)/2 ..= c + size/2`, clipped to the valid range, as ONNX defines).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrnSpec {
    pub name: String,
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
    pub alpha_mode: LrnAlpha,
}

impl LrnSpec {
    /// The coefficient that multiplies the window's sum of squares.
    pub fn effective_alpha(&self) -> f32 {
        match self.alpha_mode {
            LrnAlpha::Raw => self.alpha,
            LrnAlpha::OverN => self.alpha / self.size as f32,
        }
    }
}

/// Max pooling; windows reading padding see -inf there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub name: String,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pads: Pads,
    pub rounding: Rounding,
}

/// Adaptive average pooling to a fixed `[OH, OW]` (torchvision's `avgpool`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AvgPoolSpec {
    pub name: String,
    pub out: [usize; 2],
}

/// Fully connected: weight `(out, in)`, bias `(out)`; input flattened in `(C, H, W)` order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearSpec {
    pub name: String,
    pub in_features: usize,
    pub out_features: usize,
}

/// Inverted dropout: while training, keep with probability `1 - p` and scale by `1/(1-p)`;
/// identity at test time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DropoutSpec {
    pub name: String,
    pub p: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Layer {
    Conv(ConvSpec),
    Relu { name: String },
    Lrn(LrnSpec),
    MaxPool(PoolSpec),
    AdaptiveAvgPool(AvgPoolSpec),
    Flatten { name: String },
    Linear(LinearSpec),
    Dropout(DropoutSpec),
    Softmax { name: String },
}

impl Layer {
    pub fn name(&self) -> &str {
        match self {
            Layer::Conv(c) => &c.name,
            Layer::Relu { name } | Layer::Flatten { name } | Layer::Softmax { name } => name,
            Layer::Lrn(l) => &l.name,
            Layer::MaxPool(p) => &p.name,
            Layer::AdaptiveAvgPool(p) => &p.name,
            Layer::Linear(l) => &l.name,
            Layer::Dropout(d) => &d.name,
        }
    }

    /// The op's short name as `alexnet info` prints it.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Conv(_) => "conv",
            Layer::Relu { .. } => "relu",
            Layer::Lrn(_) => "lrn",
            Layer::MaxPool(_) => "maxpool",
            Layer::AdaptiveAvgPool(_) => "avgpool",
            Layer::Flatten { .. } => "flatten",
            Layer::Linear(_) => "fc",
            Layer::Dropout(_) => "dropout",
            Layer::Softmax { .. } => "softmax",
        }
    }

    /// The layer's settings in one short line for `alexnet info`, e.g. `11x11/4 pad 0,0,0,0`,
    /// `n5 alpha 1e-4/n beta 0.75 k 1`, `3x3/2 ceil`.
    pub fn settings(&self) -> String {
        let pads = |p: &Pads| {
            if p.top == p.left && p.left == p.bottom && p.bottom == p.right {
                format!("pad {}", p.top)
            } else {
                format!("pad t{} l{} b{} r{}", p.top, p.left, p.bottom, p.right)
            }
        };
        match self {
            Layer::Conv(c) => {
                let mut s = format!(
                    "{}x{}/{} {}",
                    c.kernel[0],
                    c.kernel[1],
                    c.stride[0],
                    pads(&c.pads)
                );
                if c.stride[0] != c.stride[1] {
                    s = format!(
                        "{}x{}/{}x{} {}",
                        c.kernel[0],
                        c.kernel[1],
                        c.stride[0],
                        c.stride[1],
                        pads(&c.pads)
                    );
                }
                if c.groups > 1 {
                    s.push_str(&format!(" groups {}", c.groups));
                }
                s
            }
            Layer::Lrn(l) => {
                let over = match l.alpha_mode {
                    LrnAlpha::Raw => "",
                    LrnAlpha::OverN => "/n",
                };
                format!(
                    "n{} alpha {}{over} beta {} k {}",
                    l.size, l.alpha, l.beta, l.k
                )
            }
            Layer::MaxPool(p) => {
                let r = match p.rounding {
                    Rounding::Floor => "floor",
                    Rounding::Ceil => "ceil",
                };
                format!(
                    "{}x{}/{} {r} {}",
                    p.kernel[0],
                    p.kernel[1],
                    p.stride[0],
                    pads(&p.pads)
                )
            }
            Layer::AdaptiveAvgPool(p) => format!("to {}x{}", p.out[0], p.out[1]),
            Layer::Dropout(d) => format!("p {}", d.p),
            _ => String::new(),
        }
    }

    /// Shapes of this layer's parameters, `[weight, bias]`, or none.
    pub fn param_shapes(&self) -> Option<[Vec<usize>; 2]> {
        match self {
            Layer::Conv(c) => Some([
                vec![
                    c.out_channels,
                    c.in_channels / c.groups,
                    c.kernel[0],
                    c.kernel[1],
                ],
                vec![c.out_channels],
            ]),
            Layer::Linear(l) => Some([vec![l.out_features, l.in_features], vec![l.out_features]]),
            _ => None,
        }
    }

    /// `(C, H, W)` of a per-image input shape, or an error naming this layer.
    pub fn chw(&self, input: &[usize]) -> Result<[usize; 3]> {
        match input {
            [c, h, w] => Ok([*c, *h, *w]),
            _ => Err(Error::Arch(format!(
                "{} {:?} needs a (C, H, W) input, got {input:?}",
                self.kind(),
                self.name()
            ))),
        }
    }

    /// Output shape (without N) for a given input shape (without N). The one place where
    /// layers' shape rules are applied.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        match self {
            Layer::Conv(c) => {
                let [ci, h, w] = self.chw(input)?;
                if ci != c.in_channels {
                    return Err(Error::Arch(format!(
                        "conv {:?} expects {} input channels, got {ci}",
                        c.name, c.in_channels
                    )));
                }
                if c.groups == 0 || c.in_channels % c.groups != 0 || c.out_channels % c.groups != 0
                {
                    return Err(Error::Arch(format!(
                        "conv {:?}: groups {} must divide {} input and {} output channels",
                        c.name, c.groups, c.in_channels, c.out_channels
                    )));
                }
                let oh = shape::conv_out(h, c.kernel[0], c.stride[0], c.pads.top, c.pads.bottom)?;
                let ow = shape::conv_out(w, c.kernel[1], c.stride[1], c.pads.left, c.pads.right)?;
                Ok(vec![c.out_channels, oh, ow])
            }
            Layer::Relu { .. } | Layer::Dropout(_) | Layer::Softmax { .. } => Ok(input.to_vec()),
            Layer::Lrn(l) => {
                self.chw(input)?;
                if l.size == 0 {
                    return Err(Error::Arch(format!("lrn {:?}: size must be >= 1", l.name)));
                }
                Ok(input.to_vec())
            }
            Layer::MaxPool(p) => {
                let [c, h, w] = self.chw(input)?;
                if p.pads.top >= p.kernel[0]
                    || p.pads.bottom >= p.kernel[0]
                    || p.pads.left >= p.kernel[1]
                    || p.pads.right >= p.kernel[1]
                {
                    return Err(Error::Arch(format!(
                        "maxpool {:?}: padding must be smaller than the kernel",
                        p.name
                    )));
                }
                let oh = shape::pool_out(
                    h,
                    p.kernel[0],
                    p.stride[0],
                    p.pads.top,
                    p.pads.bottom,
                    p.rounding,
                )?;
                let ow = shape::pool_out(
                    w,
                    p.kernel[1],
                    p.stride[1],
                    p.pads.left,
                    p.pads.right,
                    p.rounding,
                )?;
                Ok(vec![c, oh, ow])
            }
            Layer::AdaptiveAvgPool(p) => {
                let [c, _, _] = self.chw(input)?;
                if p.out[0] == 0 || p.out[1] == 0 {
                    return Err(Error::Arch(format!(
                        "avgpool {:?}: output size must be >= 1",
                        p.name
                    )));
                }
                Ok(vec![c, p.out[0], p.out[1]])
            }
            Layer::Flatten { .. } => Ok(vec![input.iter().product()]),
            Layer::Linear(l) => {
                let f: usize = match input {
                    [f] => *f,
                    _ => {
                        return Err(Error::Arch(format!(
                            "fc {:?} needs a flat (F) input (add a flatten layer), got {input:?}",
                            l.name
                        )))
                    }
                };
                if f != l.in_features {
                    return Err(Error::Arch(format!(
                        "fc {:?} expects {} inputs, got {f}",
                        l.name, l.in_features
                    )));
                }
                Ok(vec![l.out_features])
            }
        }
    }

    /// Multiply-adds per image for this layer (conv and FC only; the rest is negligible and
    /// not counted, as in the paper's 0.72 G figure).
    pub fn macs(&self, output: &[usize]) -> u64 {
        match self {
            Layer::Conv(c) => {
                let per_out = (c.in_channels / c.groups * c.kernel[0] * c.kernel[1]) as u64;
                output.iter().product::<usize>() as u64 * per_out
            }
            Layer::Linear(l) => (l.in_features * l.out_features) as u64,
            _ => 0,
        }
    }
}
