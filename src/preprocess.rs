//! From image file bytes to the network's input tensor, the way the weight files were trained:
//! decode, resize the shorter side to `Preprocess::resize`, centre-crop `Preprocess::crop`,
//! then per channel `(pixel * scale - mean) / std` in the model's channel order (see
//! `model::Preprocess`). Also the paper's test-time 10-crop. Bytes in, tensors out: no file
//! system, so it runs the same natively and in wasm.
//!
//! # Decoding ([`decode`])
//! PNG, JPEG (including CMYK and YCCK JPEGs, which the decoder converts to RGB), WebP, GIF
//! (first frame) and BMP, recognised by content, never by file name. The result is always
//! 8-bit RGB: 16-bit images are reduced to 8 bits, grey is copied to the three channels, and
//! alpha is composited over white (`c' = (c * a + 255 * (255 - a)) / 255`, rounded), so a
//! transparent area looks as it does on a white web page rather than showing whatever colour
//! happened to be stored under alpha 0. The EXIF orientation of a photo is applied, as a
//! browser does when it shows the photo to the person who dropped it.
//!
//! Size guards: the header's dimensions are read first and an image over [`MAX_PIXELS`] is
//! refused with `Error::ImageTooLarge` before any pixel buffer is allocated; the decoder also
//! runs under `image::Limits` with `max_alloc` = [`MAX_ALLOC`] as a second guard.
//!
//! # Resizing
//! [`resize_short`] uses `image::imageops::FilterType::Triangle`: bilinear interpolation whose
//! support widens by the downscaling factor, i.e. antialiased like PIL's `BILINEAR`, which is
//! what torchvision's `Resize(256)` uses on PIL images. The longer side becomes
//! `floor(size * long / short)`, as torchvision computes it. Rounding of the centre-crop
//! offset follows torchvision too (`round((h - crop) / 2)`, ties to even).

use crate::error::{Error, Result};
use crate::model::{ChannelOrder, Preprocess};
use crate::tensor::Tensor;
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, Rgb, RgbImage};
use std::io::Cursor;

/// Largest image we decode: 64 Mi pixels (67.1 MP). That covers the 48-50 MP photos of
/// current phones and cameras with room to spare, while the decoded RGBA8 buffer stays at
/// 256 MiB at most, which a 32-bit wasm instance (4 GiB address space, often 2 GiB in
/// practice) can hold alongside the model's ~250 MB of weights.
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// The decoder's allocation limit (`image::Limits::max_alloc`): the largest legal image as
/// 16-bit RGBA (8 bytes a pixel, 512 MiB) plus 64 MiB for the decoder's own buffers.
pub const MAX_ALLOC: u64 = MAX_PIXELS * 8 + 64 * 1024 * 1024;

/// Decodes PNG, JPEG, WebP, GIF (first frame) or BMP bytes to 8-bit RGB (see the module
/// docs for what happens to grey, 16-bit, alpha and EXIF orientation). Errors:
/// `Error::ImageTooLarge` when the header announces more than [`MAX_PIXELS`] pixels (checked
/// before decoding), `Error::Image` for anything that is not a complete image we read.
pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Image(format!("cannot read the image data: {e}")))?;
    let Some(format) = reader.format() else {
        return Err(Error::Image(format!(
            "not an image we can read ({} bytes that do not start like a PNG, JPEG, WebP, GIF \
             or BMP file)",
            bytes.len()
        )));
    };
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let fmt = format!("{format:?}").to_uppercase();
    // Creating the decoder reads the header only.
    let mut decoder = reader.into_decoder().map_err(|e| image_error(&fmt, e))?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    if decoder.total_bytes() > MAX_ALLOC {
        return Err(Error::Image(format!(
            "the {width}x{height} {fmt} image would need {} bytes to decode, over the limit of \
             {MAX_ALLOC}",
            decoder.total_bytes()
        )));
    }
    // The JPEG decoder fills what a cut file lacks with grey and reports nothing: a person
    // would be shown a confident answer about a picture the net mostly never saw.
    if format == image::ImageFormat::Jpeg {
        check_jpeg_complete(bytes)?;
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| image_error(&fmt, e))?;
    img.apply_orientation(orientation);
    Ok(to_rgb8(img))
}

/// Checks that a JPEG's image data reaches its end-of-image marker: walks the marker
/// segments (skipping each by its length, so an EXIF thumbnail's markers are never seen),
/// and through each scan's entropy-coded data to the marker after it. A file cut anywhere
/// before its EOI is an error.
fn check_jpeg_complete(bytes: &[u8]) -> Result<()> {
    let truncated = || {
        Error::Image(format!(
            "the JPEG data is truncated: the file ends ({} bytes) before the image does",
            bytes.len()
        ))
    };
    let mut i = 2; // after SOI
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) else {
            return Err(truncated());
        };
        i += 2;
        match marker {
            0xD9 => return Ok(()),          // EOI
            0x01 | 0xD0..=0xD7 => continue, // TEM, RST: no length
            _ => {}
        }
        let len = match (bytes.get(i), bytes.get(i + 1)) {
            (Some(&hi), Some(&lo)) => usize::from(hi) << 8 | usize::from(lo),
            _ => return Err(truncated()),
        };
        i += len;
        if i > bytes.len() {
            return Err(truncated());
        }
        if marker == 0xDA {
            // SOS: entropy-coded data runs to the next marker that is not a stuffed 0xFF00
            // or a restart marker.
            loop {
                match (bytes.get(i), bytes.get(i + 1)) {
                    (Some(&0xFF), Some(&(0x00 | 0xD0..=0xD7))) => i += 2,
                    (Some(&0xFF), Some(_)) => break,
                    (Some(_), _) => i += 1,
                    (None, _) => return Err(truncated()),
                }
            }
        }
    }
}

fn check_size(width: u32, height: u32) -> Result<()> {
    let pixels = width as u64 * height as u64;
    if pixels > MAX_PIXELS {
        return Err(Error::ImageTooLarge {
            width,
            height,
            pixels,
            limit: MAX_PIXELS,
        });
    }
    if pixels == 0 {
        return Err(Error::Image(format!(
            "the image is empty ({width}x{height})"
        )));
    }
    Ok(())
}

fn image_error(fmt: &str, e: ImageError) -> Error {
    Error::Image(match e {
        ImageError::IoError(e) => format!("the {fmt} data is truncated or unreadable: {e}"),
        ImageError::Decoding(e) => format!("cannot decode the {fmt} image: {e}"),
        ImageError::Limits(e) => format!("the {fmt} image is over the decoding limits: {e}"),
        ImageError::Unsupported(e) => format!("unsupported {fmt} image: {e}"),
        other => format!("cannot decode the {fmt} image: {other}"),
    })
}

/// Any decoded image as 8-bit RGB, alpha composited over white.
fn to_rgb8(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        let blend = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        *o = Rgb([blend(p[0]), blend(p[1]), blend(p[2])]);
    }
    out
}

/// Resizes so that the shorter side is `size` and the longer `floor(size * long / short)`,
/// keeping the aspect ratio, with the antialiased bilinear filter (`FilterType::Triangle`).
/// An image already at that size is returned as is. Errors: `size` 0, an empty image, or an
/// aspect ratio so extreme that the result would exceed [`MAX_PIXELS`].
pub fn resize_short(img: &RgbImage, size: u32) -> Result<RgbImage> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 || size == 0 {
        return Err(Error::Image(format!(
            "cannot resize a {w}x{h} image to a shorter side of {size}"
        )));
    }
    let (short, long) = (w.min(h) as u64, w.max(h) as u64);
    let new_long = size as u64 * long / short;
    if new_long * size as u64 > MAX_PIXELS || new_long > u32::MAX as u64 {
        return Err(Error::Image(format!(
            "the {w}x{h} image is too elongated: with its shorter side at {size} it would be \
             {new_long} pixels long"
        )));
    }
    let (nw, nh) = if w <= h {
        (size, new_long as u32)
    } else {
        (new_long as u32, size)
    };
    if (nw, nh) == (w, h) {
        return Ok(img.clone());
    }
    Ok(imageops::resize(img, nw, nh, FilterType::Triangle))
}

/// Offset of a centred window of `crop` in `len`, rounded as torchvision does
/// (`int(round((len - crop) / 2))`, Python's round: ties to even). `len >= crop`.
pub(crate) fn centre_offset(len: u32, crop: u32) -> u32 {
    let d = len - crop;
    let half = d / 2;
    if d % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// The `x, y, size, size` window of `img`, with black where the window leaves the image.
pub(crate) fn window(img: &RgbImage, x: i64, y: i64, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(size, size, |i, j| {
        let (sx, sy) = (x + i as i64, y + j as i64);
        if sx >= 0 && sy >= 0 && sx < w as i64 && sy < h as i64 {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            Rgb([0, 0, 0])
        }
    })
}

/// The centred `size` x `size` square (offsets rounded as torchvision's `CenterCrop`). A
/// side shorter than `size` is padded with black on both sides, as torchvision pads.
pub fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    window(img, centred_start(w, size), centred_start(h, size), size)
}

/// Where a centred window of `size` starts in `len`: [`centre_offset`], or negative (black
/// on both sides) where `len` is the shorter.
fn centred_start(len: u32, size: u32) -> i64 {
    if len >= size {
        centre_offset(len, size) as i64
    } else {
        -(((size - len) / 2) as i64)
    }
}

/// The network's input for one image, `(C, H, W)` flattened, `C` in `pp.channel_order`:
/// `value = (pixel * pp.scale - pp.mean[c]) / pp.std[c]` with `pixel` in 0..=255 and `c` the
/// model's channel index (for BGR, channel 0 is blue and `mean[0]` is blue's mean).
pub fn normalize(img: &RgbImage, pp: &Preprocess) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = w as usize * h as usize;
    let mut out = vec![0.0f32; 3 * plane];
    // Which RGB component feeds model channel c.
    let src: [usize; 3] = match pp.channel_order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    for (c, &s) in src.iter().enumerate() {
        let (mean, std) = (pp.mean[c], pp.std[c]);
        for (o, p) in out[c * plane..(c + 1) * plane].iter_mut().zip(img.pixels()) {
            *o = (p[s] as f32 * pp.scale - mean) / std;
        }
    }
    out
}

fn dim(v: usize, what: &str) -> Result<u32> {
    match u32::try_from(v) {
        Ok(d) if d > 0 => Ok(d),
        _ => Err(Error::Image(format!(
            "preprocessing {what} {v} is not a usable size"
        ))),
    }
}

/// The image the network sees (before normalisation): shorter side resized to `pp.resize`,
/// then the centre `pp.crop` x `pp.crop` square. The web UI can show it.
pub fn input_image(img: &RgbImage, pp: &Preprocess) -> Result<RgbImage> {
    let resized = resize_short(img, dim(pp.resize, "resize")?)?;
    Ok(center_crop(&resized, dim(pp.crop, "crop")?))
}

/// The input tensor `(1, 3, crop, crop)` for one image (resize, centre crop, normalise).
/// Errors only for an empty image, a zero size in `pp`, or an absurd aspect ratio (see
/// [`resize_short`]).
pub fn to_input(img: &RgbImage, pp: &Preprocess) -> Result<Tensor> {
    let crop = input_image(img, pp)?;
    let c = crop.width() as usize;
    Tensor::new(&[1, 3, c, c], normalize(&crop, pp))
}

/// The paper's ten test patches as images, in this order:
/// 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right, 4 centre, then 5..=9 the
/// horizontal mirrors of 0..=4 (patch `i + 5` is patch `i` flipped left-right).
///
/// The shorter side is first resized to `pp.resize` and the centre `pp.resize` square kept
/// (the paper's 256x256 image); the patches are `pp.crop` squares at its corners and centre.
/// torchvision's `TenCrop` yields the same ten patches but lists 5..=9 as the five crops of
/// the flipped image, so its 5 and 6 are our 6 and 5, and its 7 and 8 our 8 and 7; averages
/// over the ten do not depend on the order.
///
/// A square smaller than a patch (the mini net: 28 in 32) is placed in the patch's corners
/// and centre instead, the rest black: the ten views the trainer's evaluation uses
/// (`augment::test_view`), its mirrors in another order.
pub fn crops_as_images(img: &RgbImage, pp: &Preprocess) -> Result<Vec<RgbImage>> {
    let (resize, crop) = (dim(pp.resize, "resize")?, dim(pp.crop, "crop")?);
    let square = center_crop(&resize_short(img, resize)?, resize);
    // Window offsets into the square: negative where the square is the smaller.
    let far = resize as i64 - crop as i64;
    let mid = centred_start(resize, crop);
    let mut crops: Vec<RgbImage> = [(0, 0), (far, 0), (0, far), (far, far), (mid, mid)]
        .iter()
        .map(|&(x, y)| window(&square, x, y, crop))
        .collect();
    let mirrors: Vec<RgbImage> = crops.iter().map(imageops::flip_horizontal).collect();
    crops.extend(mirrors);
    Ok(crops)
}

/// The ten patches of [`crops_as_images`] normalised and stacked: `(10, 3, crop, crop)`.
/// Average the ten softmax outputs for the paper's test-time prediction.
pub fn ten_crop(img: &RgbImage, pp: &Preprocess) -> Result<Tensor> {
    let crops = crops_as_images(img, pp)?;
    let c = pp.crop;
    let mut data = Vec::with_capacity(10 * 3 * c * c);
    for crop in &crops {
        data.extend(normalize(crop, pp));
    }
    Tensor::new(&[10, 3, c, c], data)
}
