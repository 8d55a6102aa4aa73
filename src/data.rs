//! Image datasets for training and evaluation: Fashion-MNIST's IDX files (Debian's
//! `dataset-fashion-mnist` puts them in [`FASHION_MNIST_DIR`], gzipped) and turning their
//! 28x28 grey images into the mini-AlexNet's `(N, 3, 32, 32)` input, with the paper's
//! augmentations for training (see [`crate::augment`]).
//!
//! IDX (LeCun's format): a big-endian header, `0x00 0x00 <type> <ndims>` then one u32 per
//! dimension, then the values; type `0x08` is unsigned bytes, the only one these files use.

use crate::augment::{self, Augment, Pca};
use crate::error::{Error, Result};
use crate::model::Preprocess;
use crate::tensor::{Rng, Tensor};
use std::io::Read;
use std::path::Path;

/// Where Debian's `dataset-fashion-mnist` package installs the four files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Grey images with a class label each.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    pub height: usize,
    pub width: usize,
    /// `(N, H, W)` bytes, 0 = black.
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

/// An IDX file's dimensions and its u8 values; gzip is undone first when the bytes start
/// with gzip's magic.
pub fn read_idx(bytes: &[u8]) -> Result<(Vec<usize>, Vec<u8>)> {
    let raw;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| Error::Dataset(format!("cannot gunzip the IDX file: {e}")))?;
        raw = out;
        &raw[..]
    } else {
        bytes
    };
    let [0, 0, kind, ndims, ..] = *bytes else {
        return Err(Error::Dataset(format!(
            "not an IDX file ({} bytes; IDX starts with two zero bytes, a type and a rank)",
            bytes.len()
        )));
    };
    if kind != 0x08 {
        return Err(Error::Dataset(format!(
            "IDX value type 0x{kind:02x} is not unsigned bytes (0x08)"
        )));
    }
    let ndims = ndims as usize;
    let header = 4 + 4 * ndims;
    let dims: Vec<usize> = bytes
        .get(4..header)
        .ok_or_else(|| Error::Dataset("the IDX header is cut short".into()))?
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::Dataset(format!("IDX dimensions {dims:?} overflow")))?;
    let data = &bytes[header..];
    if data.len() != count {
        return Err(Error::Dataset(format!(
            "IDX dimensions {dims:?} need {count} values, the file has {}",
            data.len()
        )));
    }
    Ok((dims, data.to_vec()))
}

impl Images {
    /// Images from an IDX image file `(N, H, W)` and an IDX label file `(N)`.
    pub fn from_idx(images: &[u8], labels: &[u8]) -> Result<Images> {
        let (dims, pixels) = read_idx(images)?;
        let [n, height, width] = dims[..] else {
            return Err(Error::Dataset(format!(
                "an image file must be (N, H, W), this one is {dims:?}"
            )));
        };
        let (ldims, labels) = read_idx(labels)?;
        if ldims != [n] {
            return Err(Error::Dataset(format!(
                "{n} images but labels of shape {ldims:?}"
            )));
        }
        Ok(Images {
            height,
            width,
            pixels,
            labels,
        })
    }

    /// Fashion-MNIST's training (60,000) or test (10,000) split from `dir` (the `.gz` files
    /// as Debian ships them, or unpacked ones).
    pub fn fashion_mnist(dir: &Path, train: bool) -> Result<Images> {
        let prefix = if train { "train" } else { "t10k" };
        let read = |what: &str| -> Result<Vec<u8>> {
            let name = format!("{prefix}-{what}");
            for path in [dir.join(format!("{name}.gz")), dir.join(&name)] {
                if path.exists() {
                    return std::fs::read(&path).map_err(|e| Error::Io {
                        path: path.display().to_string(),
                        source: e,
                    });
                }
            }
            Err(Error::Dataset(format!(
                "{name}(.gz) is not in {} (Debian: apt install dataset-fashion-mnist)",
                dir.display()
            )))
        };
        Images::from_idx(&read("images-idx3-ubyte")?, &read("labels-idx1-ubyte")?)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn image(&self, i: usize) -> &[u8] {
        let n = self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The last `n` images split off (the validation set the learning-rate schedule
    /// watches), the rest kept.
    pub fn split_off(&mut self, n: usize) -> Result<Images> {
        if n >= self.len() {
            return Err(Error::Dataset(format!(
                "cannot hold out {n} of {} images",
                self.len()
            )));
        }
        let keep = self.len() - n;
        Ok(Images {
            height: self.height,
            width: self.width,
            pixels: self.pixels.split_off(keep * self.height * self.width),
            labels: self.labels.split_off(keep),
        })
    }

    /// Per-channel pixel statistics for PCA lighting: the grey images as RGB with equal
    /// channels, values in [0, 1].
    pub fn pca(&self) -> Pca {
        augment::rgb_pca(self.pixels.iter().map(|&p| {
            let v = p as f32 / 255.0;
            [v, v, v]
        }))
    }

    /// Images `idx` as the network input `(len, 3, side, side)`, normalised by `pp`: each
    /// grey image centred on a black `side` x `side` canvas (28 -> 32: 2 pixels each side),
    /// or with `aug` (training) placed, flipped and relit as [`Augment`] draws for
    /// `(seed, image index)`.
    pub fn batch(
        &self,
        idx: &[usize],
        side: usize,
        pp: &Preprocess,
        aug: Option<(&Augment, &Pca, u64)>,
    ) -> Result<Tensor> {
        let [w, h] = [self.width, self.height];
        self.drawn(idx, side, pp, |i, centre| match aug {
            Some((a, pca, seed)) => {
                let mut rng = Rng::new(augment::image_seed(seed, i));
                a.draw(&mut rng, pca, side, [w, h], centre)
            }
            None => augment::Draw::identity(centre),
        })
    }

    /// Images `idx` as the network input `(len, 3, side, side)` in the paper's test view
    /// `view` (0..10, see [`augment::test_view`]).
    pub fn view_batch(
        &self,
        idx: &[usize],
        side: usize,
        pp: &Preprocess,
        view: usize,
    ) -> Result<Tensor> {
        let [w, h] = [self.width, self.height];
        let centre = (side.saturating_sub(w) / 2, side.saturating_sub(h) / 2);
        let draw = augment::test_view(view, side, [w, h], centre)
            .ok_or_else(|| Error::Dataset(format!("test view {view} of 10 requested")))?;
        self.drawn(idx, side, pp, |_, _| draw)
    }

    /// Images `idx` drawn on the canvas where `draw(image index, centre offset)` says.
    fn drawn(
        &self,
        idx: &[usize],
        side: usize,
        pp: &Preprocess,
        draw: impl Fn(usize, (usize, usize)) -> augment::Draw,
    ) -> Result<Tensor> {
        let (h, w) = (self.height, self.width);
        if h > side || w > side {
            return Err(Error::Dataset(format!(
                "{h}x{w} images do not fit a {side}x{side} input"
            )));
        }
        let plane = side * side;
        let mut data = vec![0.0f32; idx.len() * 3 * plane];
        for (b, &i) in idx.iter().enumerate() {
            if i >= self.len() {
                return Err(Error::Dataset(format!(
                    "image {i} of {} requested",
                    self.len()
                )));
            }
            let draw = draw(i, ((side - w) / 2, (side - h) / 2));
            let img = self.image(i);
            for c in 0..3 {
                // black canvas, lit like the image (the paper relights whole images)
                let bg = (draw.shift[c] - pp.mean[c]) / pp.std[c];
                let out = &mut data[(b * 3 + c) * plane..(b * 3 + c + 1) * plane];
                out.fill(bg);
                for y in 0..h {
                    let oy = y + draw.offset.1;
                    if oy >= side {
                        continue;
                    }
                    for x in 0..w {
                        let ox = x + draw.offset.0;
                        if ox >= side {
                            continue;
                        }
                        let sx = if draw.flip { w - 1 - x } else { x };
                        let v = img[y * w + sx] as f32 * pp.scale + draw.shift[c];
                        out[oy * side + ox] = (v - pp.mean[c]) / pp.std[c];
                    }
                }
            }
        }
        Tensor::new(&[idx.len(), 3, side, side], data)
    }

    pub fn label_vec(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter().map(|&i| self.labels[i] as usize).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn reads_idx_raw_and_gzipped_and_refuses_bad_ones() {
        let f = idx(&[2, 1, 2], &[1, 2, 3, 4]);
        assert_eq!(read_idx(&f).unwrap(), (vec![2, 1, 2], vec![1, 2, 3, 4]));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &f).unwrap();
        assert_eq!(read_idx(&gz.finish().unwrap()).unwrap().1, vec![1, 2, 3, 4]);
        assert!(
            matches!(read_idx(&f[..f.len() - 1]), Err(Error::Dataset(_))),
            "truncated"
        );
        assert!(matches!(read_idx(b"\x89PNG"), Err(Error::Dataset(_))));
        let mut float = f.clone();
        float[2] = 0x0d;
        assert!(matches!(read_idx(&float), Err(Error::Dataset(_))));
        assert!(
            matches!(read_idx(&[0x1f, 0x8b, 1, 2]), Err(Error::Dataset(_))),
            "broken gzip"
        );
        let images = Images::from_idx(&f, &idx(&[2], &[7, 9])).unwrap();
        assert_eq!((images.len(), images.height, images.width), (2, 1, 2));
        assert!(matches!(
            Images::from_idx(&f, &idx(&[3], &[7, 9, 1])),
            Err(Error::Dataset(_))
        ));
    }

    #[test]
    fn batches_centre_and_normalise() {
        let images = Images {
            height: 2,
            width: 2,
            pixels: vec![255, 0, 0, 255],
            labels: vec![3],
        };
        let pp = crate::model::mini().preprocess;
        let x = images.batch(&[0], 4, &pp, None).unwrap();
        assert_eq!(x.shape, vec![1, 3, 4, 4]);
        let m = pp.mean[0];
        // the 2x2 image sits at (1, 1) of the 4x4 canvas
        assert_eq!(x.data[5], 1.0 - m);
        assert_eq!(x.data[6], -m);
        assert_eq!(x.data[0], -m);
        assert_eq!(images.label_vec(&[0]), vec![3]);
        assert!(matches!(
            images.batch(&[1], 4, &pp, None),
            Err(Error::Dataset(_))
        ));
        // view 4 is the centre, like batch without augmentation
        assert_eq!(images.view_batch(&[0], 4, &pp, 4).unwrap(), x);
        // view 1: top-right corner, the image at (2, 0); view 6: the same, mirrored
        let tr = images.view_batch(&[0], 4, &pp, 1).unwrap();
        assert_eq!((tr.data[2], tr.data[3], tr.data[7]), (1.0 - m, -m, 1.0 - m));
        let mirrored = images.view_batch(&[0], 4, &pp, 6).unwrap();
        assert_eq!((mirrored.data[2], mirrored.data[3]), (-m, 1.0 - m));
        assert!(matches!(
            images.view_batch(&[0], 4, &pp, 10),
            Err(Error::Dataset(_))
        ));
    }
}
