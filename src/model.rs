//! The model as data: an architecture is a list of layers plus the input size, the
//! preprocessing and the label set. The built-in configs (`paper`, `bvlc`, `torchvision`,
//! `mini`) are defined here; weight files carry or imply one of these.
//!
//! Shapes: every layer maps a per-image shape (`(C, H, W)` or `(F)`) to another; the batch
//! dimension `N` is implicit everywhere in this module.

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

    /// Output shape (without N) for a given input shape (without N). The one place where
    /// layers' shape rules are applied.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let chw = |what: &str| -> Result<[usize; 3]> {
            match input {
                [c, h, w] => Ok([*c, *h, *w]),
                _ => Err(Error::Arch(format!(
                    "{what} {:?} needs a (C, H, W) input, got {input:?}",
                    self.name()
                ))),
            }
        };
        match self {
            Layer::Conv(c) => {
                let [ci, h, w] = chw("conv")?;
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
                chw("lrn")?;
                if l.size == 0 {
                    return Err(Error::Arch(format!("lrn {:?}: size must be >= 1", l.name)));
                }
                Ok(input.to_vec())
            }
            Layer::MaxPool(p) => {
                let [c, h, w] = chw("maxpool")?;
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
                let [c, _, _] = chw("avgpool")?;
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

/// Which family of AlexNet a model belongs to; it decides the preprocessing defaults and how
/// weight-file keys are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Paper,
    Bvlc,
    Torchvision,
    Mini,
    Custom,
}

impl Family {
    pub fn as_str(&self) -> &'static str {
        match self {
            Family::Paper => "paper",
            Family::Bvlc => "bvlc",
            Family::Torchvision => "torchvision",
            Family::Mini => "mini",
            Family::Custom => "custom",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// How an image becomes the network's input: shorter side resized to `resize`, centre crop
/// `crop` x `crop`, channels in `channel_order`, then per channel
/// `value = (pixel * scale - mean[c]) / std[c]` with `pixel` in 0..=255 and `mean`, `std`
/// given in the model's channel order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    pub resize: usize,
    pub crop: usize,
    pub channel_order: ChannelOrder,
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// The class names a model predicts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Labels {
    /// The 1000 ILSVRC-2012 classes (see `labels::IMAGENET`).
    Imagenet,
    /// The 10 Fashion-MNIST classes.
    FashionMnist,
    /// Names given with the model (fine-tuned models).
    Custom(Vec<String>),
}

/// A whole architecture. `input` is `(C, H, W)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    pub family: Family,
    pub input: [usize; 3],
    pub layers: Vec<Layer>,
    pub preprocess: Preprocess,
    pub labels: Labels,
}

/// Largest input side `validate` accepts: far above AlexNet's 224, small enough that no
/// layer's activations can exhaust memory.
pub const MAX_SIDE: usize = 4096;
/// Largest per-image activation (values) of any layer: 2^26 f32 = 256 MiB, ~200x conv1's.
pub const MAX_ACTIVATION: usize = 1 << 26;

/// Largest parameter tensor (values) `shapes` accepts: 2^28, ~7x fc6's 37.7 M.
pub const MAX_PARAMS: usize = 1 << 28;

fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// One row of `Arch::summary`.
#[derive(Clone, Debug)]
pub struct LayerInfo {
    pub name: String,
    pub kind: &'static str,
    pub settings: String,
    pub output: Vec<usize>,
    pub params: u64,
    pub macs: u64,
}

impl Arch {
    /// Per-image output shape of every layer, in order. Errors name the layer that does not fit.
    pub fn shapes(&self) -> Result<Vec<Vec<usize>>> {
        let mut cur = self.input.to_vec();
        let mut out = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            cur = layer.output_shape(&cur)?;
            // A hostile or corrupt config must give an error here, not an overflow or an
            // allocation that aborts the process (or the wasm instance) later.
            let n = checked_product(&cur);
            if n.is_none_or(|n| n > MAX_ACTIVATION) {
                return Err(Error::Arch(format!(
                    "layer {:?} would output {cur:?} values per image, over the limit of {MAX_ACTIVATION}",
                    layer.name()
                )));
            }
            if let Some(ps) = layer.param_shapes() {
                if ps
                    .iter()
                    .any(|p| checked_product(p).is_none_or(|n| n > MAX_PARAMS))
                {
                    return Err(Error::Arch(format!(
                        "layer {:?} has a parameter tensor of shape {:?}, over the limit of {MAX_PARAMS} values",
                        layer.name(),
                        ps[0]
                    )));
                }
            }
            out.push(cur.clone());
        }
        Ok(out)
    }

    /// Checks shapes and unique names.
    pub fn validate(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for l in &self.layers {
            if !seen.insert(l.name()) {
                return Err(Error::Arch(format!("two layers are named {:?}", l.name())));
            }
            if let Layer::Dropout(d) = l {
                if !(0.0..1.0).contains(&d.p) {
                    return Err(Error::Arch(format!(
                        "dropout {:?}: p must be in [0, 1)",
                        d.name
                    )));
                }
            }
        }
        let [c, h, w] = self.input;
        let pp = &self.preprocess;
        if c != 3 || pp.crop != h || pp.crop != w {
            return Err(Error::Arch(format!(
                "the input {:?} must be 3 x crop x crop for the {} x {} centre crop",
                self.input, pp.crop, pp.crop
            )));
        }
        if pp.resize < pp.crop || pp.resize > MAX_SIDE {
            return Err(Error::Arch(format!(
                "preprocessing resizes to {} but crops {}: need crop <= resize <= {MAX_SIDE}",
                pp.resize, pp.crop
            )));
        }
        if !pp.scale.is_finite()
            || pp.mean.iter().any(|m| !m.is_finite())
            || pp.std.iter().any(|s| !s.is_finite() || *s == 0.0)
        {
            return Err(Error::Arch(
                "preprocessing scale, mean and std must be finite, std non-zero".into(),
            ));
        }
        self.shapes()?;
        Ok(())
    }

    /// Checks that `x` is `(N, C, H, W)` with this architecture's `(C, H, W)`; returns N.
    pub fn check_input(&self, x: &crate::tensor::Tensor) -> Result<usize> {
        let [c, h, w] = self.input;
        match x.shape.as_slice() {
            [n, xc, xh, xw] if [*xc, *xh, *xw] == [c, h, w] && x.data.len() == n * c * h * w => {
                Ok(*n)
            }
            s => Err(Error::Shape {
                what: "network input (N, C, H, W)".into(),
                expected: vec![x.shape.first().copied().unwrap_or(1), c, h, w],
                got: s.to_vec(),
            }),
        }
    }

    pub fn num_classes(&self) -> Result<usize> {
        match self.shapes()?.last().map(|s| s.as_slice()) {
            Some([n]) => Ok(*n),
            other => Err(Error::Arch(format!(
                "the last layer's output is not a vector: {other:?}"
            ))),
        }
    }

    pub fn layer_index(&self, name: &str) -> Result<usize> {
        self.layers
            .iter()
            .position(|l| l.name() == name)
            .ok_or_else(|| Error::NoSuchLayer(name.to_string()))
    }

    /// Names and shapes of every parameter tensor: `"{layer}.weight"`, `"{layer}.bias"`.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for l in &self.layers {
            if let Some([w, b]) = l.param_shapes() {
                out.push((format!("{}.weight", l.name()), w));
                out.push((format!("{}.bias", l.name()), b));
            }
        }
        out
    }

    pub fn param_count(&self) -> u64 {
        self.param_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>() as u64)
            .sum()
    }

    pub fn summary(&self) -> Result<Vec<LayerInfo>> {
        let shapes = self.shapes()?;
        Ok(self
            .layers
            .iter()
            .zip(shapes)
            .map(|(l, s)| LayerInfo {
                name: l.name().to_string(),
                kind: l.kind(),
                settings: l.settings(),
                params: l
                    .param_shapes()
                    .map(|ps| ps.iter().map(|s| s.iter().product::<usize>() as u64).sum())
                    .unwrap_or(0),
                macs: l.macs(&s),
                output: s,
            })
            .collect())
    }

    pub fn macs(&self) -> Result<u64> {
        Ok(self.summary()?.iter().map(|r| r.macs).sum())
    }

    /// A built-in config by name.
    pub fn builtin(name: &str) -> Result<Arch> {
        match name {
            "paper" => Ok(paper()),
            "bvlc" => Ok(bvlc()),
            "torchvision" => Ok(torchvision()),
            "mini" => Ok(mini()),
            other => Err(Error::UnknownModel(other.to_string())),
        }
    }

    pub const BUILTINS: [&'static str; 4] = ["paper", "bvlc", "torchvision", "mini"];
}

// ---- builders used by the configs below ----

fn conv(
    name: &str,
    cin: usize,
    cout: usize,
    k: usize,
    s: usize,
    pads: Pads,
    groups: usize,
) -> Layer {
    Layer::Conv(ConvSpec {
        name: name.into(),
        in_channels: cin,
        out_channels: cout,
        kernel: [k, k],
        stride: [s, s],
        pads,
        groups,
    })
}

fn relu(name: &str) -> Layer {
    Layer::Relu { name: name.into() }
}

fn lrn(name: &str, k: f32, alpha_mode: LrnAlpha) -> Layer {
    Layer::Lrn(LrnSpec {
        name: name.into(),
        size: 5,
        alpha: 1e-4,
        beta: 0.75,
        k,
        alpha_mode,
    })
}

fn maxpool(name: &str, rounding: Rounding) -> Layer {
    Layer::MaxPool(PoolSpec {
        name: name.into(),
        kernel: [3, 3],
        stride: [2, 2],
        pads: Pads::default(),
        rounding,
    })
}

fn fc(name: &str, i: usize, o: usize) -> Layer {
    Layer::Linear(LinearSpec {
        name: name.into(),
        in_features: i,
        out_features: o,
    })
}

fn dropout(name: &str) -> Layer {
    Layer::Dropout(DropoutSpec {
        name: name.into(),
        p: 0.5,
    })
}

fn flatten() -> Layer {
    Layer::Flatten {
        name: "flatten".into(),
    }
}

/// The paper's five conv layers (with the 2-tower grouping on conv2/4/5), LRN after the
/// first two, overlapping pooling, and the three FC layers with dropout.
#[allow(clippy::too_many_arguments)]
fn alexnet_layers(
    ch: [usize; 5],
    conv1: (usize, usize, Pads),
    conv2_kernel: usize,
    lrn_k: f32,
    alpha_mode: LrnAlpha,
    rounding: Rounding,
    flat: usize,
    hidden: usize,
    classes: usize,
) -> Vec<Layer> {
    let (k1, s1, p1) = conv1;
    vec![
        conv("conv1", 3, ch[0], k1, s1, p1, 1),
        relu("relu1"),
        lrn("norm1", lrn_k, alpha_mode),
        maxpool("pool1", rounding),
        conv(
            "conv2",
            ch[0],
            ch[1],
            conv2_kernel,
            1,
            Pads::same(conv2_kernel / 2),
            2,
        ),
        relu("relu2"),
        lrn("norm2", lrn_k, alpha_mode),
        maxpool("pool2", rounding),
        conv("conv3", ch[1], ch[2], 3, 1, Pads::same(1), 1),
        relu("relu3"),
        conv("conv4", ch[2], ch[3], 3, 1, Pads::same(1), 2),
        relu("relu4"),
        conv("conv5", ch[3], ch[4], 3, 1, Pads::same(1), 2),
        relu("relu5"),
        maxpool("pool5", rounding),
        flatten(),
        fc("fc6", flat, hidden),
        relu("relu6"),
        dropout("drop6"),
        fc("fc7", hidden, hidden),
        relu("relu7"),
        dropout("drop7"),
        fc("fc8", hidden, classes),
    ]
}

/// The 2012 paper: 224x224 input with conv1 padded 1 (top/left) and 2 (bottom/right) so the
/// arithmetic gives the paper's 55x55; LRN k=2 with alpha NOT divided by n; floor pooling;
/// ends in softmax. Preprocessing: RGB, mean pixel subtracted, no scaling.
pub fn paper() -> Arch {
    let pads = Pads {
        top: 1,
        left: 1,
        bottom: 2,
        right: 2,
    };
    let mut layers = alexnet_layers(
        [96, 256, 384, 384, 256],
        (11, 4, pads),
        5,
        2.0,
        LrnAlpha::Raw,
        Rounding::Floor,
        256 * 6 * 6,
        4096,
        1000,
    );
    layers.push(Layer::Softmax {
        name: "prob".into(),
    });
    Arch {
        family: Family::Paper,
        input: [3, 224, 224],
        layers,
        preprocess: Preprocess {
            resize: 256,
            crop: 224,
            channel_order: ChannelOrder::Rgb,
            scale: 1.0,
            mean: [123.68, 116.78, 103.94],
            std: [1.0; 3],
        },
        labels: Labels::Imagenet,
    }
}

/// Caffe's bvlc_reference / the ONNX model zoo's bvlcalexnet: 224 input (data_0), LRN k=1
/// with alpha divided by n, ceil pooling, ends in softmax. BGR 0-255 minus [104, 117, 123].
pub fn bvlc() -> Arch {
    let mut layers = alexnet_layers(
        [96, 256, 384, 384, 256],
        (11, 4, Pads::default()),
        5,
        1.0,
        LrnAlpha::OverN,
        Rounding::Ceil,
        256 * 6 * 6,
        4096,
        1000,
    );
    layers.push(Layer::Softmax {
        name: "prob".into(),
    });
    Arch {
        family: Family::Bvlc,
        input: [3, 224, 224],
        layers,
        preprocess: Preprocess {
            resize: 256,
            crop: 224,
            channel_order: ChannelOrder::Bgr,
            scale: 1.0,
            mean: [104.0, 117.0, 123.0],
            std: [1.0; 3],
        },
        labels: Labels::Imagenet,
    }
}

/// torchvision's AlexNet ("one weird trick"): 64-192-384-256-256, no LRN, no groups, floor
/// pooling, adaptive average pool to 6x6, dropout before fc6 and fc7, logits out.
pub fn torchvision() -> Arch {
    let layers = vec![
        conv("conv1", 3, 64, 11, 4, Pads::same(2), 1),
        relu("relu1"),
        maxpool("pool1", Rounding::Floor),
        conv("conv2", 64, 192, 5, 1, Pads::same(2), 1),
        relu("relu2"),
        maxpool("pool2", Rounding::Floor),
        conv("conv3", 192, 384, 3, 1, Pads::same(1), 1),
        relu("relu3"),
        conv("conv4", 384, 256, 3, 1, Pads::same(1), 1),
        relu("relu4"),
        conv("conv5", 256, 256, 3, 1, Pads::same(1), 1),
        relu("relu5"),
        maxpool("pool5", Rounding::Floor),
        Layer::AdaptiveAvgPool(AvgPoolSpec {
            name: "avgpool".into(),
            out: [6, 6],
        }),
        flatten(),
        dropout("drop6"),
        fc("fc6", 256 * 6 * 6, 4096),
        relu("relu6"),
        dropout("drop7"),
        fc("fc7", 4096, 4096),
        relu("relu7"),
        fc("fc8", 4096, 1000),
    ];
    Arch {
        family: Family::Torchvision,
        input: [3, 224, 224],
        layers,
        preprocess: Preprocess {
            resize: 256,
            crop: 224,
            channel_order: ChannelOrder::Rgb,
            scale: 1.0 / 255.0,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        },
        labels: Labels::Imagenet,
    }
}

/// The paper's structure and techniques scaled for 32x32 RGB input (Fashion-MNIST's 28x28
/// padded to 32, grey copied to RGB): conv 64-160-240-240-160 (5x5, 5x5 groups 2, 3x3,
/// 3x3 groups 2, 3x3 groups 2), LRN after the first two (k=2, alpha/n as PyTorch), overlapping
/// 3/2 floor pooling 32 -> 15 -> 7 -> 3, FC 1440-1024-1024-10 with dropout 0.5. 3.45 M
/// parameters, 0.074 G multiply-adds an image. Widths chosen by measurement with the paper's
/// recipe (README, Training): with FC 512 wide the trained net underfit (93.9% on its own
/// training images, 92.1% test); FC 1024 with conv 64-128-192-192-128 (2.85 M) reached 92.6%;
/// these wider convolutions cost 1.25x its training step. Preprocessing: RGB in [0, 1] minus
/// Fashion-MNIST's mean pixel (0.2860).
pub fn mini() -> Arch {
    let mut layers = alexnet_layers(
        [64, 160, 240, 240, 160],
        (5, 1, Pads::same(2)),
        5,
        2.0,
        LrnAlpha::OverN,
        Rounding::Floor,
        160 * 3 * 3,
        1024,
        10,
    );
    // conv1 of the mini net is ungrouped like the paper's; the builder already does that.
    layers.shrink_to_fit();
    Arch {
        family: Family::Mini,
        input: [3, 32, 32],
        layers,
        preprocess: Preprocess {
            resize: 32,
            crop: 32,
            channel_order: ChannelOrder::Rgb,
            scale: 1.0 / 255.0,
            mean: [0.2860; 3],
            std: [1.0; 3],
        },
        labels: Labels::FashionMnist,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_parameter_counts() {
        assert_eq!(bvlc().param_count(), 60_965_224);
        assert_eq!(paper().param_count(), 60_965_224);
        assert_eq!(torchvision().param_count(), 61_100_840);
        assert_eq!(mini().param_count(), 3_446_698);
    }

    #[test]
    fn known_shapes_and_macs() {
        for a in [paper(), bvlc(), torchvision(), mini()] {
            a.validate().unwrap();
        }
        let s = paper().shapes().unwrap();
        assert_eq!(s[0], vec![96, 55, 55]);
        assert_eq!(s[3], vec![96, 27, 27]);
        assert_eq!(s[14], vec![256, 6, 6]);
        let b = bvlc();
        let bs = b.shapes().unwrap();
        assert_eq!(bs[0], vec![96, 54, 54]);
        assert_eq!(bs[3], vec![96, 27, 27]);
        assert_eq!(bs[14], vec![256, 6, 6]);
        // ~0.72 G multiply-adds per image (the paper's figure).
        let macs = b.macs().unwrap() as f64 / 1e9;
        assert!((0.70..0.74).contains(&macs), "bvlc macs {macs}");
        let ms = mini().shapes().unwrap();
        assert_eq!(ms[14], vec![160, 3, 3]);
    }

    #[test]
    fn arch_round_trips_through_json() {
        let a = bvlc();
        let j = serde_json::to_string(&a).unwrap();
        let b: Arch = serde_json::from_str(&j).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn hostile_sizes_are_errors_not_overflows() {
        let mut a = mini();
        if let Layer::Conv(c) = &mut a.layers[0] {
            c.out_channels = usize::MAX / 2;
        }
        assert!(a.validate().is_err());
        let mut a = mini();
        if let Layer::Linear(l) = &mut a.layers[16] {
            l.out_features = usize::MAX / 4;
        }
        assert!(a.validate().is_err());
        let mut a = mini();
        a.input = [3, 1 << 20, 1 << 20];
        a.preprocess.crop = 1 << 20;
        assert!(a.validate().is_err());
    }

    #[test]
    fn bad_arch_is_an_error() {
        let mut a = mini();
        if let Layer::Conv(c) = &mut a.layers[4] {
            c.groups = 3;
        }
        assert!(a.validate().is_err());
        assert!(Arch::builtin("vgg").is_err());
    }
}
