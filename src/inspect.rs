//! What the web page shows of the network's inside, as plain RGBA pictures so that it is
//! drawn the same way natively (tests) and in the browser: every layer's feature maps as a
//! grid, the fully connected layers as bar strips, conv1's kernels as the paper's figure 3,
//! and which layer's output is the 4096-d feature the paper's figure 4 compares.
//!
//! The paper's net ran on two GPUs, each holding half the channels of every convolutional
//! layer ("towers"); grouped convolutions (`groups = 2`) are what is left of that split. A
//! net with grouped convolutions is drawn with each layer's channels in two halves, one
//! picture per tower; a net without (torchvision's) as one.

use crate::error::{Error, Result};
use crate::model::{Arch, Layer};
use crate::tensor::Tensor;

/// How a layer's output is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Display {
    /// `(C, H, W)`: a grid of C grey maps per tower.
    Maps,
    /// `(F)`: one bar per value (binned when F is wide).
    Strip,
}

/// One layer as the page lists it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerView {
    pub index: usize,
    pub name: String,
    pub kind: &'static str,
    /// The output of one image: `(C, H, W)` or `(F)`.
    pub shape: Vec<usize>,
    pub display: Display,
    /// Pictures this layer is drawn as (2 for a two-tower net's maps, else 1).
    pub towers: usize,
}

/// One RGBA picture (row-major, 4 bytes per pixel) made of `count` tiles of `tile_w` x
/// `tile_h` pixels in `cols` columns, `gap` pixels apart; tile `i` shows channel
/// `first + i`. A strip is one tile.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgba: Vec<u8>,
    pub cols: usize,
    pub tile_w: usize,
    pub tile_h: usize,
    pub gap: usize,
    pub first: usize,
    pub count: usize,
}

/// Pixels between tiles, drawn in this grey so a dark map still shows its edges.
const GAP: usize = 1;
const GAP_GREY: u8 = 96;
/// A strip is at most this many bars wide; wider layers (fc6's 4096) show the largest
/// magnitude of each bin, so a single strong unit is never averaged away.
const STRIP_MAX_BARS: usize = 1024;
const STRIP_HEIGHT: usize = 48;

/// 2 when the net has grouped convolutions (the paper's two GPUs), else 1.
pub fn towers(arch: &Arch) -> usize {
    let grouped = arch
        .layers
        .iter()
        .any(|l| matches!(l, Layer::Conv(c) if c.groups == 2));
    if grouped {
        2
    } else {
        1
    }
}

/// Every layer that has something to draw, in order: 4-d outputs as maps, fully connected
/// and softmax outputs as strips. Flatten and dropout (an identity at test time) are left
/// out; they would repeat their input.
pub fn views(arch: &Arch) -> Result<Vec<LayerView>> {
    let shapes = arch.shapes()?;
    let t = towers(arch);
    let mut out = Vec::new();
    for (index, (layer, shape)) in arch.layers.iter().zip(shapes).enumerate() {
        if matches!(layer, Layer::Flatten { .. } | Layer::Dropout(_)) {
            continue;
        }
        let (display, towers) = match shape.len() {
            3 => (Display::Maps, if shape[0] % t == 0 { t } else { 1 }),
            1 => (Display::Strip, 1),
            _ => continue,
        };
        out.push(LayerView {
            index,
            name: layer.name().to_string(),
            kind: layer.kind(),
            shape,
            display,
            towers,
        });
    }
    Ok(out)
}

/// The index of the layer whose output is the last hidden layer's activation (fc7 after
/// its ReLU in AlexNet): the input of the last fully connected layer, skipping dropout,
/// which is an identity at test time. The paper's figure 4 finds similar images by the
/// Euclidean distance between these vectors.
pub fn feature_layer(arch: &Arch) -> Result<usize> {
    let last_fc = arch
        .layers
        .iter()
        .rposition(|l| matches!(l, Layer::Linear(_)))
        .ok_or_else(|| Error::Arch("the network has no fully connected layer".into()))?;
    (0..last_fc)
        .rev()
        .find(|&i| !matches!(arch.layers[i], Layer::Dropout(_)))
        .ok_or_else(|| Error::Arch("the last fully connected layer has no input layer".into()))
}

/// Channels `[first, first + count)` of one image's maps `(C, H, W)` as a grid of grey
/// tiles, each stretched from its own minimum (black) to maximum (white): a layer's maps
/// differ in scale by orders of magnitude, and a common scale would show most as black. A
/// constant map is drawn black.
pub fn maps_picture(data: &[f32], shape: &[usize], first: usize, count: usize) -> Result<Picture> {
    let &[c, h, w] = shape else {
        return Err(Error::Draw(format!(
            "feature maps of shape {shape:?}: they must be (C, H, W)"
        )));
    };
    check_len("feature maps", data.len(), c * h * w)?;
    check_range("channels", first, count, c)?;
    let mut pic = Picture::grid(count, w, h);
    for i in 0..count {
        let map = &data[(first + i) * h * w..(first + i + 1) * h * w];
        let (lo, hi) = min_max(map);
        pic.fill_tile(i, |x, y| {
            let g = unit(map[y * w + x], lo, hi);
            [g, g, g]
        });
    }
    pic.first = first;
    Ok(pic)
}

/// Filters `[first, first + count)` of a convolution weight `(O, I, KH, KW)` as colour
/// tiles (as the paper's figure 3): with 3 input channels a filter's R, G, B weights are
/// its tile's colours, otherwise its first input channel in grey. Each filter is stretched
/// over its own range, all channels together, so its colour balance is kept.
pub fn filters_picture(weight: &Tensor, first: usize, count: usize) -> Result<Picture> {
    let &[o, i, kh, kw] = &weight.shape[..] else {
        return Err(Error::Draw(format!(
            "a convolution weight of shape {:?}: it must be (O, I, KH, KW)",
            weight.shape
        )));
    };
    check_range("filters", first, count, o)?;
    let per = i * kh * kw;
    let mut pic = Picture::grid(count, kw, kh);
    for f in 0..count {
        let k = &weight.data[(first + f) * per..(first + f + 1) * per];
        let (lo, hi) = min_max(k);
        let px = |ch: usize, x: usize, y: usize| unit(k[(ch * kh + y) * kw + x], lo, hi);
        pic.fill_tile(f, |x, y| {
            if i == 3 {
                [px(0, x, y), px(1, x, y), px(2, x, y)]
            } else {
                let g = px(0, x, y);
                [g, g, g]
            }
        });
    }
    pic.first = first;
    Ok(pic)
}

/// A vector as bars from a zero line: up for positive values, down for negative ones (the
/// zero line is in the middle when there are negatives, e.g. fc8's logits), all on one
/// scale (the largest magnitude), so units compare with each other.
pub fn strip_picture(values: &[f32]) -> Result<Picture> {
    if values.is_empty() {
        return Err(Error::Draw("an empty vector".into()));
    }
    let bars = values.len().min(STRIP_MAX_BARS);
    let per_bar = values.len().div_ceil(bars);
    let bars = values.len().div_ceil(per_bar);
    let binned: Vec<f32> = values
        .chunks(per_bar)
        .map(|c| {
            c.iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0f32, |a, v| if v.abs() > a.abs() { v } else { a })
        })
        .collect();
    let peak = binned.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let signed = binned.iter().any(|&v| v < 0.0);
    let h = STRIP_HEIGHT;
    let zero = if signed { h / 2 } else { h - 1 };
    let mut pic = Picture {
        width: bars,
        height: h,
        rgba: vec![255; bars * h * 4],
        cols: 1,
        tile_w: bars,
        tile_h: h,
        gap: 0,
        first: 0,
        count: 1,
    };
    for (x, &v) in binned.iter().enumerate() {
        let len = if peak > 0.0 {
            ((v.abs() / peak) * zero.max(1) as f32).round() as usize
        } else {
            0
        };
        let (from, to, colour) = if v >= 0.0 {
            (zero.saturating_sub(len), zero, [26, 102, 170])
        } else {
            (zero, (zero + len).min(h - 1), [200, 80, 40])
        };
        for y in from..=to {
            let c = if y == zero { [120, 120, 120] } else { colour };
            pic.put(x, y, c);
        }
    }
    Ok(pic)
}

/// An RGB image as a one-tile picture (the crops the network sees).
pub fn rgb_picture(img: &image::RgbImage) -> Picture {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut pic = Picture::grid(1, w, h);
    pic.fill_tile(0, |x, y| img.get_pixel(x as u32, y as u32).0);
    pic
}

impl Picture {
    /// An empty grid of `count` tiles, as square as it goes.
    fn grid(count: usize, tile_w: usize, tile_h: usize) -> Picture {
        let cols = ((count as f64).sqrt().ceil() as usize).max(1);
        let rows = count.div_ceil(cols).max(1);
        let width = cols * tile_w + (cols - 1) * GAP;
        let height = rows * tile_h + (rows - 1) * GAP;
        let mut rgba = vec![GAP_GREY; width * height * 4];
        for a in rgba.chunks_exact_mut(4) {
            a[3] = 255;
        }
        Picture {
            width,
            height,
            rgba,
            cols,
            tile_w,
            tile_h,
            gap: GAP,
            first: 0,
            count,
        }
    }

    fn fill_tile(&mut self, i: usize, colour: impl Fn(usize, usize) -> [u8; 3]) {
        let (x0, y0) = (
            (i % self.cols) * (self.tile_w + self.gap),
            (i / self.cols) * (self.tile_h + self.gap),
        );
        for y in 0..self.tile_h {
            for x in 0..self.tile_w {
                self.put(x0 + x, y0 + y, colour(x, y));
            }
        }
    }

    fn put(&mut self, x: usize, y: usize, c: [u8; 3]) {
        let o = (y * self.width + x) * 4;
        self.rgba[o..o + 3].copy_from_slice(&c);
        self.rgba[o + 3] = 255;
    }
}

fn min_max(v: &[f32]) -> (f32, f32) {
    v.iter()
        .filter(|x| x.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// `v` on `[lo, hi]` as 0..=255; 0 when the range is empty (a constant map), NaN or inf.
fn unit(v: f32, lo: f32, hi: f32) -> u8 {
    if hi <= lo || !v.is_finite() {
        return 0;
    }
    (((v - lo) / (hi - lo)) * 255.0).round().clamp(0.0, 255.0) as u8
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(Error::Length {
            what: what.to_string(),
            len: got,
            want,
        });
    }
    Ok(())
}

fn check_range(what: &str, first: usize, count: usize, total: usize) -> Result<()> {
    if count == 0 || first + count > total {
        return Err(Error::OutOfRange {
            what: format!("{what} (a range of {count} from)"),
            index: first,
            len: total,
        });
    }
    Ok(())
}

/// One layer's output for one image (`view.shape` values), drawn as the page shows it:
/// feature maps as one grid per tower, a vector as a bar strip.
pub fn view_pictures(view: &LayerView, data: &[f32]) -> Result<Vec<Picture>> {
    match view.display {
        Display::Strip => Ok(vec![strip_picture(data)?]),
        Display::Maps => {
            let c = view.shape[0] / view.towers.max(1);
            (0..view.towers)
                .map(|t| maps_picture(data, &view.shape, t * c, c))
                .collect()
        }
    }
}

/// Image `i` of a grey dataset as a picture.
pub fn grey_picture(images: &crate::data::Images, i: usize) -> Picture {
    let (h, w) = (images.height, images.width);
    let px = &images.pixels[i * h * w..(i + 1) * h * w];
    let img = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let v = px[y as usize * w + x as usize];
        image::Rgb([v, v, v])
    });
    rgb_picture(&img)
}

/// Image `b` of a network input batch `(N, 3, H, W)` with the normalisation undone.
pub fn input_picture(x: &Tensor, b: usize, pp: &crate::model::Preprocess) -> Picture {
    let (h, w) = (x.shape[2], x.shape[3]);
    let img = image::RgbImage::from_fn(w as u32, h as u32, |xx, y| {
        let mut px = [0u8; 3];
        for (c, p) in px.iter_mut().enumerate() {
            let v = x.data[((b * 3 + c) * h + y as usize) * w + xx as usize];
            *p = ((v * pp.std[c] + pp.mean[c]) / pp.scale)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
        image::Rgb(px)
    });
    rgb_picture(&img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;

    #[test]
    fn towers_follow_grouped_convolutions() {
        assert_eq!(towers(&Arch::builtin("bvlc").unwrap()), 2);
        assert_eq!(towers(&Arch::builtin("paper").unwrap()), 2);
        assert_eq!(towers(&Arch::builtin("torchvision").unwrap()), 1);
    }

    #[test]
    fn views_list_maps_and_strips_without_identities() {
        let arch = Arch::builtin("bvlc").unwrap();
        let v = views(&arch).unwrap();
        let conv1 = &v[0];
        assert_eq!(
            (conv1.name.as_str(), conv1.display, conv1.towers),
            ("conv1", Display::Maps, 2)
        );
        assert_eq!(conv1.shape, vec![96, 54, 54]);
        assert!(v.iter().all(|l| l.kind != "dropout" && l.kind != "flatten"));
        let fc6 = v.iter().find(|l| l.name == "fc6").unwrap();
        assert_eq!(
            (fc6.display, fc6.shape.clone()),
            (Display::Strip, vec![4096])
        );
    }

    #[test]
    fn feature_layer_is_fc7_after_relu() {
        for name in ["bvlc", "paper", "torchvision", "mini"] {
            let arch = Arch::builtin(name).unwrap();
            let i = feature_layer(&arch).unwrap();
            assert_eq!(arch.layers[i].kind(), "relu", "{name}");
            let fc7 = arch.layers[..i]
                .iter()
                .rposition(|l| l.kind() == "fc")
                .unwrap();
            let shapes = arch.shapes().unwrap();
            assert_eq!(shapes[i], shapes[fc7], "{name}");
            assert_eq!(i, fc7 + 1, "{name}");
        }
    }

    #[test]
    fn maps_are_tiled_and_stretched_per_map() {
        // two 2x2 maps: one ramp, one constant
        let data = [0.0, 1.0, 2.0, 3.0, 5.0, 5.0, 5.0, 5.0];
        let p = maps_picture(&data, &[2, 2, 2], 0, 2).unwrap();
        assert_eq!((p.cols, p.width, p.height), (2, 5, 2));
        let px = |x: usize, y: usize| p.rgba[(y * p.width + x) * 4];
        assert_eq!([px(0, 0), px(1, 0), px(0, 1), px(1, 1)], [0, 85, 170, 255]);
        assert_eq!(px(2, 0), GAP_GREY);
        assert_eq!([px(3, 0), px(4, 1)], [0, 0]);
        let second = maps_picture(&data, &[2, 2, 2], 1, 1).unwrap();
        assert_eq!((second.first, second.count, second.width), (1, 1, 2));
        assert!(matches!(
            maps_picture(&data, &[2, 2, 2], 1, 2),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            maps_picture(&data[..7], &[2, 2, 2], 0, 1),
            Err(Error::Length {
                len: 7,
                want: 8,
                ..
            })
        ));
    }

    #[test]
    fn filters_keep_rgb() {
        // one 1x1 filter with R high, G low, B middle
        let w = Tensor::new(&[1, 3, 1, 1], vec![1.0, -1.0, 0.0]).unwrap();
        let p = filters_picture(&w, 0, 1).unwrap();
        assert_eq!(&p.rgba[..4], &[255, 0, 128, 255]);
    }

    #[test]
    fn strips_bin_by_magnitude_and_draw_negatives_down() {
        let mut v = vec![0.0f32; 4096];
        v[4095] = -2.0;
        v[0] = 1.0;
        let p = strip_picture(&v).unwrap();
        assert_eq!(p.width, 1024);
        let zero = STRIP_HEIGHT / 2;
        let at = |x: usize, y: usize| &p.rgba[(y * p.width + x) * 4..(y * p.width + x) * 4 + 3];
        // unit 0 (1.0, half the peak) goes up half way, the last bin (-2.0) all the way down
        assert_eq!(at(0, zero - zero / 2), &[26, 102, 170]);
        assert_eq!(at(0, zero - zero / 2 - 1), &[255, 255, 255]);
        assert_eq!(at(1023, STRIP_HEIGHT - 1), &[200, 80, 40]);
        assert!(matches!(strip_picture(&[]), Err(Error::Draw(_))));
    }
}
