//! The built-in architectures and the builders they share.

use super::arch::{Arch, ChannelOrder, Family, Labels, Preprocess};
use super::layer::{
    AvgPoolSpec, ConvSpec, DropoutSpec, Layer, LinearSpec, LrnAlpha, LrnSpec, Pads, PoolSpec,
};
use crate::shape::Rounding;

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
    let rgb = Preprocess::imagenet(ChannelOrder::Rgb, 1.0, [123.68, 116.78, 103.94], [1.0; 3]);
    imagenet_with_softmax(
        Family::Paper,
        pads,
        (2.0, LrnAlpha::Raw),
        Rounding::Floor,
        rgb,
    )
}

/// Caffe's bvlc_reference / the ONNX model zoo's bvlcalexnet: 224 input (data_0), LRN k=1
/// with alpha divided by n, ceil pooling, ends in softmax. BGR 0-255 minus [104, 117, 123].
pub fn bvlc() -> Arch {
    let bgr = Preprocess::imagenet(ChannelOrder::Bgr, 1.0, [104.0, 117.0, 123.0], [1.0; 3]);
    let lrn = (1.0, LrnAlpha::OverN);
    imagenet_with_softmax(Family::Bvlc, Pads::default(), lrn, Rounding::Ceil, bgr)
}

/// The ImageNet AlexNet of the paper and of Caffe (two towers: 96-256-384-384-256,
/// 5x5 conv2, 4096-4096-1000) ending in softmax; they differ in conv1's padding, the LRN
/// `(k, alpha convention)`, pooling's rounding and preprocessing.
fn imagenet_with_softmax(
    family: Family,
    conv1_pads: Pads,
    (lrn_k, alpha_mode): (f32, LrnAlpha),
    rounding: Rounding,
    preprocess: Preprocess,
) -> Arch {
    let mut layers = alexnet_layers(
        [96, 256, 384, 384, 256],
        (11, 4, conv1_pads),
        5,
        lrn_k,
        alpha_mode,
        rounding,
        256 * 6 * 6,
        4096,
        1000,
    );
    layers.push(Layer::Softmax {
        name: "prob".into(),
    });
    Arch {
        family,
        input: [3, 224, 224],
        layers,
        preprocess,
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
        preprocess: Preprocess::imagenet(
            ChannelOrder::Rgb,
            1.0 / 255.0,
            [0.485, 0.456, 0.406],
            [0.229, 0.224, 0.225],
        ),
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
/// Fashion-MNIST's mean pixel (0.2860); an image's shorter side is resized to 28 and the
/// centre 32x32 taken, black where it leaves the image, so a 28x28 Fashion-MNIST picture is
/// placed unscaled at the centre exactly as the trainer feeds it (`data::Images::batch`).
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
            resize: 28,
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
    use crate::model::Arch;

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
        assert!(matches!(a.validate(), Err(crate::Error::Arch(_))));
        let mut a = mini();
        if let Layer::Linear(l) = &mut a.layers[16] {
            l.out_features = usize::MAX / 4;
        }
        assert!(matches!(a.validate(), Err(crate::Error::Arch(_))));
        let mut a = mini();
        a.input = [3, 1 << 20, 1 << 20];
        a.preprocess.crop = 1 << 20;
        assert!(matches!(a.validate(), Err(crate::Error::Arch(_))));
    }

    #[test]
    fn bad_arch_is_an_error() {
        let mut a = mini();
        if let Layer::Conv(c) = &mut a.layers[4] {
            c.groups = 3;
        }
        assert!(matches!(a.validate(), Err(crate::Error::Arch(_))));
        assert!(matches!(
            Arch::builtin("vgg"),
            Err(crate::Error::UnknownModel(_))
        ));
    }
}
