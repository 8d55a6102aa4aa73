//! A whole architecture: the input, the layers, the preprocessing and the labels.

use super::configs::{bvlc, mini, paper, torchvision};
use super::layer::Layer;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

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
/// `crop` x `crop` (black where it leaves the image: a crop larger than `resize` pads),
/// channels in `channel_order`, then per channel `value = (pixel * scale - mean[c]) / std[c]`
/// with `pixel` in 0..=255 and `mean`, `std` given in the model's channel order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    pub resize: usize,
    pub crop: usize,
    pub channel_order: ChannelOrder,
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Preprocess {
    /// The ImageNet convention of every public AlexNet file: shorter side resized to 256,
    /// the centre 224x224 cropped, then `(v * scale - mean) / std` in `channel_order`.
    pub fn imagenet(
        channel_order: ChannelOrder,
        scale: f32,
        mean: [f32; 3],
        std: [f32; 3],
    ) -> Self {
        Preprocess {
            resize: 256,
            crop: 224,
            channel_order,
            scale,
            mean,
            std,
        }
    }
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
        // A crop larger than the resized image is padded with black (the mini net: its 28x28
        // pictures sit at the centre of a 32x32 input, as it was trained).
        if pp.resize == 0 || pp.resize > MAX_SIDE {
            return Err(Error::Arch(format!(
                "preprocessing resizes to {}: need 1 <= resize <= {MAX_SIDE}",
                pp.resize
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
