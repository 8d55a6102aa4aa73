//! Image decoding and preprocessing: every format, the size guard, bad input, exact
//! normalisation for the bvlc and torchvision conventions, resize/crop geometry and the
//! paper's ten crops.
#![cfg(not(target_arch = "wasm32"))]

use alexnet::model::{self, ChannelOrder, Preprocess};
use alexnet::preprocess::{self as pp, MAX_PIXELS};
use alexnet::Error;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, RgbImage, Rgba};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Cursor;

// ---- largest single allocation made by the current thread (for the size-guard test) ----

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

// ---- helpers ----

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("{format:?}: {e}"));
    out.into_inner()
}

/// A 40x30 test card: a red/green gradient plus a blue bar, so orientation and channel
/// mix-ups show.
fn card() -> RgbImage {
    RgbImage::from_fn(40, 30, |x, y| {
        Rgb([(x * 6) as u8, (y * 8) as u8, if x < 10 { 200 } else { 20 }])
    })
}

fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

/// Each `((x, y), rgb)` of `want` is the pixel of `img` there.
fn assert_pixels(what: &str, img: &RgbImage, want: &[((u32, u32), [u8; 3])]) {
    for &((x, y), rgb) in want {
        assert_eq!(img.get_pixel(x, y), &Rgb(rgb), "{what}: pixel ({x}, {y})");
    }
}

/// Resize the short side to `resize`, crop `crop`, RGB values as they are.
fn unnormalised(resize: usize, crop: usize) -> Preprocess {
    let (mean, std) = ([0.0; 3], [1.0; 3]);
    Preprocess {
        resize,
        crop,
        channel_order: ChannelOrder::Rgb,
        scale: 1.0,
        mean,
        std,
    }
}

fn expect_image_error(bytes: &[u8], what: &str) -> String {
    match pp::decode(bytes) {
        Err(Error::Image(msg)) => msg,
        Err(e) => panic!("{what}: expected Error::Image, got {e:?}"),
        Ok(img) => panic!("{what}: decoded a {:?} image", img.dimensions()),
    }
}

// ---- decoding ----

#[test]
fn lossless_formats_decode_exactly() {
    let img = DynamicImage::ImageRgb8(card());
    for format in [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::WebP] {
        let out = pp::decode(&encode(&img, format)).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(max_diff(&out, &card()), 0, "{format:?}");
    }
}

#[test]
fn lossy_and_paletted_formats_decode_close() {
    let img = DynamicImage::ImageRgb8(card());
    // JPEG at quality 75 (the encoder's default) and GIF's 256-colour palette (NeuQuant)
    // both change pixels a little. Worst differences measured with image 0.25.10: JPEG 11,
    // GIF 30; the tolerances leave some margin for other encoder versions.
    for (format, tol) in [(ImageFormat::Jpeg, 24), (ImageFormat::Gif, 48)] {
        let out = pp::decode(&encode(&img, format)).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(out.dimensions(), (40, 30), "{format:?}");
        let d = max_diff(&out, &card());
        assert!(d <= tol, "{format:?}: max difference {d} > {tol}");
    }
}

#[test]
fn sixteen_bit_png_becomes_eight_bit() {
    let img = ImageBuffer::<Rgb<u16>, _>::from_fn(8, 4, |x, y| {
        Rgb([(x * 8000) as u16, (y * 20000) as u16, 65535])
    });
    let out = pp::decode(&encode(
        &DynamicImage::ImageRgb16(img.clone()),
        ImageFormat::Png,
    ))
    .unwrap();
    for (o, p) in out.pixels().zip(img.pixels()) {
        for c in 0..3 {
            let want = (p[c] as f32 / 257.0).round() as u8;
            assert!(o[c].abs_diff(want) <= 1, "{o:?} vs {p:?}");
        }
    }
}

#[test]
fn alpha_is_composited_over_white() {
    let img = ImageBuffer::<Rgba<u8>, _>::from_fn(4, 1, |x, _| match x {
        0 => Rgba([255, 0, 0, 255]), // opaque red stays red
        1 => Rgba([255, 0, 0, 0]),   // fully transparent becomes white
        2 => Rgba([0, 0, 0, 128]),   // half-transparent black becomes mid grey
        _ => Rgba([255, 0, 0, 128]), // half-transparent red becomes pink
    });
    let out = pp::decode(&encode(&DynamicImage::ImageRgba8(img), ImageFormat::Png)).unwrap();
    // (c * a + 255 * (255 - a) + 127) / 255: for a = 128, c = 0 -> 127, c = 255 -> 255.
    #[rustfmt::skip]
    let want = [
        ((0, 0), [255, 0, 0]), ((1, 0), [255, 255, 255]),
        ((2, 0), [127, 127, 127]), ((3, 0), [255, 127, 127]),
    ];
    assert_pixels("composited", &out, &want);
}

#[test]
fn grey_png_is_copied_to_three_channels() {
    let img = ImageBuffer::<Luma<u8>, _>::from_fn(5, 3, |x, y| Luma([(x * 50 + y) as u8]));
    let out = pp::decode(&encode(
        &DynamicImage::ImageLuma8(img.clone()),
        ImageFormat::Png,
    ))
    .unwrap();
    for (o, p) in out.pixels().zip(img.pixels()) {
        assert_eq!(o, &Rgb([p[0]; 3]));
    }
}

#[test]
fn cmyk_jpeg_decodes_to_the_right_colours() {
    // chelsea.png resized to 90x60 and saved as an Adobe (inverted) CMYK JPEG by Pillow; see
    // fixtures/photos/LICENSES.md. Pillow reads it back with mean RGB [147.7, 111.4, 86.8]
    // (within 1.6 levels per pixel of the RGB original).
    let img = pp::decode(include_bytes!("../fixtures/photos/chelsea_cmyk.jpg")).unwrap();
    assert_eq!(img.dimensions(), (90, 60));
    let n = (90 * 60) as f64;
    let mut mean = [0.0f64; 3];
    for p in img.pixels() {
        for c in 0..3 {
            mean[c] += p[c] as f64 / n;
        }
    }
    for (c, want) in [147.7, 111.4, 86.8].iter().enumerate() {
        assert!(
            (mean[c] - want).abs() < 4.0,
            "channel {c}: mean {:.1}, want {want}",
            mean[c]
        );
    }
}

#[test]
fn real_photos_decode() {
    let photos: [(&str, &[u8], (u32, u32)); 6] = [
        (
            "chelsea.png",
            include_bytes!("../fixtures/photos/chelsea.png"),
            (451, 300),
        ),
        (
            "coffee.png",
            include_bytes!("../fixtures/photos/coffee.png"),
            (600, 400),
        ),
        (
            "astronaut.png",
            include_bytes!("../fixtures/photos/astronaut.png"),
            (512, 512),
        ),
        (
            "rocket.jpg",
            include_bytes!("../fixtures/photos/rocket.jpg"),
            (640, 427),
        ),
        (
            "motorcycle_left.png",
            include_bytes!("../fixtures/photos/motorcycle_left.png"),
            (741, 500),
        ),
        (
            "grace_hopper.jpg",
            include_bytes!("../fixtures/photos/grace_hopper.jpg"),
            (512, 600),
        ),
    ];
    for (name, bytes, dims) in photos {
        let img = pp::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.dimensions(), dims, "{name}");
        let x = pp::to_input(&img, &model::torchvision().preprocess).unwrap();
        assert_eq!(x.shape, vec![1, 3, 224, 224], "{name}");
        assert_eq!(x.non_finite(), 0, "{name}");
    }
}

#[test]
fn exif_orientation_is_applied() {
    use image::codecs::png::PngEncoder;
    use image::ImageEncoder;
    // A big-endian TIFF block with one IFD entry: Orientation (0x0112), SHORT, 1 value, 6 =
    // "rotate 90 degrees clockwise to display" (a phone held upright).
    let exif: Vec<u8> = [
        &b"MM\x00\x2a\x00\x00\x00\x08"[..],
        &[0, 1],
        &[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0],
        &[0, 0, 0, 0],
    ]
    .concat();
    let img = card();
    let mut png = Vec::new();
    let mut enc = PngEncoder::new(&mut png);
    enc.set_exif_metadata(exif).unwrap();
    enc.write_image(img.as_raw(), 40, 30, image::ExtendedColorType::Rgb8)
        .unwrap();
    let out = pp::decode(&png).unwrap();
    assert_eq!(out.dimensions(), (30, 40));
    assert_eq!(out, image::imageops::rotate90(&img));
}

/// CRC-32 (IEEE) for hand-made PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend(crc32(&body).to_be_bytes());
}

#[test]
fn huge_png_header_is_refused_before_decoding() {
    // A valid PNG header announcing 100000 x 100000 RGB pixels (30 GB decoded) followed by a
    // tiny IDAT: only the header may be read.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, no filter, no interlace
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut png, b"IEND", &[]);
    LARGEST.with(|m| m.set(0));
    let result = pp::decode(&png);
    let largest = LARGEST.with(|m| m.get());
    match result {
        Err(Error::ImageTooLarge {
            width,
            height,
            pixels,
            limit,
        }) => {
            assert_eq!(
                (width, height, pixels, limit),
                (100_000, 100_000, 10_000_000_000, MAX_PIXELS)
            );
        }
        other => panic!("expected ImageTooLarge, got {other:?}"),
    }
    // The decoder's own buffers (zlib window, chunk buffers) are well under 1 MiB.
    assert!(
        largest < 1 << 20,
        "largest allocation while refusing: {largest} bytes"
    );
}

#[test]
fn garbage_and_truncated_data_are_image_errors() {
    let msg = expect_image_error(b"this is not an image at all, just some text", "garbage");
    assert!(msg.contains("not an image"), "{msg}");
    expect_image_error(&[], "empty");
    let png = encode(&DynamicImage::ImageRgb8(card()), ImageFormat::Png);
    for cut in [8, 20, 40, png.len() / 2, png.len() - 13] {
        expect_image_error(&png[..cut], &format!("PNG cut at {cut} of {}", png.len()));
    }
    let jpg = include_bytes!("../fixtures/photos/grace_hopper.jpg");
    // A JPEG cut before its image data: only the headers remain.
    expect_image_error(&jpg[..200], "JPEG cut at 200");
}

/// A JPEG cut anywhere before its end-of-image marker is an error that says it is truncated,
/// not a picture filled out with grey; whole files (with bytes after the end, and with an
/// EXIF-like segment whose bytes look like markers) still decode.
#[test]
fn truncated_jpegs_are_errors() {
    let jpg: &[u8] = include_bytes!("../fixtures/photos/grace_hopper.jpg");
    let scan = jpg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    for cut in [scan + 20, jpg.len() / 2, jpg.len() * 9 / 10, jpg.len() - 2] {
        let msg = expect_image_error(&jpg[..cut], &format!("JPEG cut at {cut} of {}", jpg.len()));
        assert!(msg.contains("truncated"), "cut at {cut}: {msg}");
    }
    let cmyk: &[u8] = include_bytes!("../fixtures/photos/chelsea_cmyk.jpg");
    expect_image_error(&cmyk[..cmyk.len() - 100], "CMYK JPEG cut 100 bytes short");
    for whole in [jpg, cmyk, include_bytes!("../fixtures/photos/rocket.jpg")] {
        pp::decode(whole).unwrap();
        let mut trailing = whole.to_vec();
        trailing.extend_from_slice(b"\0\0trailing bytes some tools leave after the end");
        pp::decode(&trailing).unwrap();
    }
    // An APP1 segment (where EXIF and its thumbnail live) holding an EOI and an SOS: they are
    // inside a segment, so they neither end the image nor start a scan.
    let mut app1 = vec![0xFF, 0xE1, 0x00, 0x0A];
    app1.extend_from_slice(&[0xFF, 0xD9, 0xFF, 0xDA, 0x00, 0x02]);
    app1.extend_from_slice(&[0xFF, 0xD9]);
    let mut with_app1 = jpg[..2].to_vec();
    with_app1.extend_from_slice(&app1);
    with_app1.extend_from_slice(&jpg[2..]);
    pp::decode(&with_app1).unwrap();
    let cut = with_app1.len() / 2;
    let msg = expect_image_error(&with_app1[..cut], "JPEG with APP1, cut in its scan");
    assert!(msg.contains("truncated"), "{msg}");
}

// ---- resize and crop ----

#[test]
fn resize_short_side_like_torchvision() {
    let img = pp::decode(include_bytes!("../fixtures/photos/chelsea.png")).unwrap();
    // torchvision: Resize(256) on 451x300 gives 384x256 (int(256 * 451 / 300) = 384).
    assert_eq!(
        pp::resize_short(&img, 256).unwrap().dimensions(),
        (384, 256)
    );
    let tall = RgbImage::new(300, 451);
    assert_eq!(
        pp::resize_short(&tall, 256).unwrap().dimensions(),
        (256, 384)
    );
    // Upscaling works too, and the same size is a no-op.
    assert_eq!(
        pp::resize_short(&card(), 60).unwrap().dimensions(),
        (80, 60)
    );
    assert_eq!(pp::resize_short(&card(), 30).unwrap(), card());
    // A uniform image stays uniform (the filter's weights sum to one).
    let flat = RgbImage::from_pixel(97, 131, Rgb([10, 100, 250]));
    assert!(pp::resize_short(&flat, 32)
        .unwrap()
        .pixels()
        .all(|p| *p == Rgb([10, 100, 250])));
    // Errors, not panics.
    assert!(matches!(
        pp::resize_short(&RgbImage::new(0, 5), 8),
        Err(Error::Image(_))
    ));
    assert!(matches!(pp::resize_short(&card(), 0), Err(Error::Image(_))));
    assert!(matches!(
        pp::resize_short(&RgbImage::new(1, 60_000), 256),
        Err(Error::Image(_))
    ));
}

#[test]
fn center_crop_offsets_round_like_torchvision() {
    // Column index as the red value shows where the crop started.
    let img = RgbImage::from_fn(7, 8, |x, y| Rgb([x as u8, y as u8, 0]));
    // Width 7 -> 4: (7 - 4) / 2 = 1.5 rounds (to even) to 2; height 8 -> 4: offset 2.
    let c = pp::center_crop(&img, 4);
    assert_eq!(c.dimensions(), (4, 4));
    assert_eq!(c.get_pixel(0, 0), &Rgb([2, 2, 0]));
    // Width 10 -> 5: 2.5 rounds to 2.
    let wide = RgbImage::from_fn(10, 5, |x, _| Rgb([x as u8, 0, 0]));
    assert_eq!(pp::center_crop(&wide, 5).get_pixel(0, 0)[0], 2);
    // Smaller than the crop: padded with black, image centred (offset floor(diff / 2)).
    let small = RgbImage::from_pixel(2, 2, Rgb([9, 9, 9]));
    let padded = pp::center_crop(&small, 5);
    let want = [
        ((0, 0), [0, 0, 0]),
        ((1, 1), [9; 3]),
        ((2, 2), [9; 3]),
        ((3, 3), [0; 3]),
    ];
    assert_pixels("padded", &padded, &want);
}

// ---- normalisation ----

#[test]
fn bvlc_normalisation_is_bgr_minus_mean() {
    let p = model::bvlc().preprocess;
    assert_eq!(p.channel_order, ChannelOrder::Bgr);
    let img = RgbImage::from_fn(2, 1, |x, _| {
        if x == 0 {
            Rgb([200, 100, 50])
        } else {
            Rgb([0, 255, 7])
        }
    });
    let v = pp::normalize(&img, &p);
    // Plane order B, G, R; each plane row-major; value = pixel - mean (mean in BGR order).
    assert_eq!(
        v,
        vec![
            50.0 - 104.0,
            7.0 - 104.0,
            100.0 - 117.0,
            255.0 - 117.0,
            200.0 - 123.0,
            0.0 - 123.0
        ]
    );
}

#[test]
fn torchvision_normalisation_is_rgb_scaled_mean_std() {
    let p = model::torchvision().preprocess;
    let img = RgbImage::from_pixel(1, 1, Rgb([200, 100, 50]));
    let v = pp::normalize(&img, &p);
    let want: Vec<f32> = [200.0f32, 100.0, 50.0]
        .iter()
        .zip(p.mean.iter().zip(&p.std))
        .map(|(px, (m, s))| (px * (1.0 / 255.0) - m) / s)
        .collect();
    assert_eq!(v, want);
    // And the values themselves, from PyTorch's Normalize on ToTensor's x / 255.
    let torch = [
        (200.0 / 255.0 - 0.485) / 0.229,
        (100.0 / 255.0 - 0.456) / 0.224,
        (50.0 / 255.0 - 0.406) / 0.225,
    ];
    for (a, b) in v.iter().zip(torch) {
        assert!((*a as f64 - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn to_input_shape_and_layout() {
    let p = unnormalised(8, 6);
    let img = RgbImage::from_pixel(16, 12, Rgb([1, 2, 3]));
    let x = pp::to_input(&img, &p).unwrap();
    assert_eq!(x.shape, vec![1, 3, 6, 6]);
    assert!(x.data[..36].iter().all(|&v| v == 1.0));
    assert!(x.data[36..72].iter().all(|&v| v == 2.0));
    assert!(x.data[72..].iter().all(|&v| v == 3.0));
    let bad = Preprocess { crop: 0, ..p };
    assert!(matches!(pp::to_input(&img, &bad), Err(Error::Image(_))));
}

// ---- ten crops ----

const TL: Rgb<u8> = Rgb([255, 0, 0]);
const TR: Rgb<u8> = Rgb([0, 255, 0]);
const BL: Rgb<u8> = Rgb([0, 0, 255]);
const BR: Rgb<u8> = Rgb([255, 255, 0]);
const MID: Rgb<u8> = Rgb([255, 0, 255]);

/// 20x20 with a distinct colour in each 4x4 corner and a 2x2 mark at the centre, grey
/// elsewhere: with resize 20 and crop 16 each corner crop holds exactly one corner patch.
fn corners() -> RgbImage {
    RgbImage::from_fn(20, 20, |x, y| match (x, y) {
        (0..4, 0..4) => TL,
        (16.., 0..4) => TR,
        (0..4, 16..) => BL,
        (16.., 16..) => BR,
        (9..11, 9..11) => MID,
        _ => Rgb([128, 128, 128]),
    })
}

fn ten_pp() -> Preprocess {
    unnormalised(20, 16)
}

#[test]
fn ten_crops_hold_the_right_corners_and_mirrors() {
    let crops = pp::crops_as_images(&corners(), &ten_pp()).unwrap();
    assert_eq!(crops.len(), 10);
    assert!(crops.iter().all(|c| c.dimensions() == (16, 16)));
    // Each corner crop has its own corner colour at its own corner and no other corner.
    let grey = Rgb([128, 128, 128]);
    let cases = [
        (0, TL, (0, 0)),
        (1, TR, (15, 0)),
        (2, BL, (0, 15)),
        (3, BR, (15, 15)),
    ];
    for (i, colour, (x, y)) in cases {
        assert_eq!(crops[i].get_pixel(x, y), &colour, "crop {i}");
        for other in [TL, TR, BL, BR].into_iter().filter(|c| *c != colour) {
            assert!(
                !crops[i].pixels().any(|p| *p == other),
                "crop {i} holds another corner"
            );
        }
    }
    // The centre crop starts at (2, 2): the mark at 9..11 lands at 7..9, and no corner shows
    // except the 2x2 inner edges of each corner patch.
    assert_eq!(crops[4].get_pixel(7, 7), &MID);
    assert_eq!(crops[4].get_pixel(8, 8), &MID);
    assert_eq!(crops[4].get_pixel(0, 0), &TL); // pixel (2, 2) of the image
    assert_eq!(crops[4].get_pixel(2, 2), &grey);
    // Patch i + 5 is patch i mirrored left-right.
    for i in 0..5 {
        let (m, o) = (&crops[i + 5], &crops[i]);
        for (x, y, p) in o.enumerate_pixels() {
            assert_eq!(m.get_pixel(15 - x, y), p, "mirror {} at ({x}, {y})", i + 5);
        }
    }
    assert_eq!(crops[5].get_pixel(15, 0), &TL);
    assert_eq!(crops[6].get_pixel(0, 0), &TR);
}

#[test]
fn ten_crop_tensor_stacks_normalised_crops() {
    let p = ten_pp();
    let img = corners();
    let t = pp::ten_crop(&img, &p).unwrap();
    assert_eq!(t.shape, vec![10, 3, 16, 16]);
    let crops = pp::crops_as_images(&img, &p).unwrap();
    for (i, c) in crops.iter().enumerate() {
        let n = 3 * 16 * 16;
        assert_eq!(
            t.data[i * n..(i + 1) * n],
            pp::normalize(c, &p)[..],
            "crop {i}"
        );
    }
    // The paper's sizes on a real photo: shorter side 256, 256 square, 224 patches.
    let photo = pp::decode(include_bytes!("../fixtures/photos/coffee.png")).unwrap();
    let t = pp::ten_crop(&photo, &model::paper().preprocess).unwrap();
    assert_eq!(t.shape, vec![10, 3, 224, 224]);
}

#[test]
fn ten_crop_of_a_non_square_image_uses_the_central_square() {
    // 40x20, resize 20: already at size; the central 20x20 square is columns 10..30. Mark
    // column 10 and column 29.
    let img = RgbImage::from_fn(40, 20, |x, _| match x {
        10 => TL,
        29 => TR,
        _ => Rgb([1, 1, 1]),
    });
    let crops = pp::crops_as_images(&img, &ten_pp()).unwrap();
    assert_eq!(crops[0].get_pixel(0, 5), &TL);
    assert_eq!(crops[1].get_pixel(15, 5), &TR);
}

// ---- the trainer's input and the classifier's are one ----

/// A Fashion-MNIST test image saved as a 28x28 PNG and classified (`classify::prepare_input`,
/// what `alexnet classify` and the page run) becomes bit for bit the input the trainer and
/// `alexnet eval` feed the mini net (`Images::batch`, unscaled at the centre of 32x32), and
/// its ten crops are the evaluation's ten views (the mirrors in another order).
#[test]
fn a_saved_test_image_is_classified_as_the_trainer_feeds_it() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/data/fashion-mnist");
    let images = alexnet::data::Images::fashion_mnist(&dir, false).unwrap();
    let net = alexnet::Model::random(model::mini(), 1).unwrap();
    let pp = &net.arch.preprocess;
    let side = net.arch.input[1];
    let plane = images.height * images.width;
    for i in 0..50 {
        let grey = images.pixels[i * plane..(i + 1) * plane].to_vec();
        let (w, h) = (images.width as u32, images.height as u32);
        let png = encode(
            &DynamicImage::ImageLuma8(ImageBuffer::<Luma<u8>, _>::from_raw(w, h, grey).unwrap()),
            ImageFormat::Png,
        );
        let fed = images.batch(&[i], side, pp, None).unwrap();
        let classified = alexnet::classify::prepare_input(&net, &png, false).unwrap();
        assert_eq!(classified.shape, fed.shape, "image {i}");
        if let Some(k) =
            (0..fed.data.len()).find(|&k| fed.data[k].to_bits() != classified.data[k].to_bits())
        {
            panic!(
                "image {i}: element {k} (c, y, x) = ({}, {}, {}) is {} classified, {} as trained",
                k / (side * side),
                k / side % side,
                k % side,
                classified.data[k],
                fed.data[k]
            );
        }
        let views: Vec<Vec<u32>> = (0..10)
            .map(|v| {
                let t = images.view_batch(&[i], side, pp, v).unwrap();
                t.data.iter().map(|x| x.to_bits()).collect()
            })
            .collect();
        let crops = alexnet::classify::prepare_input(&net, &png, true).unwrap();
        let crops: Vec<Vec<u32>> = crops
            .data
            .chunks(3 * side * side)
            .map(|c| c.iter().map(|x| x.to_bits()).collect())
            .collect();
        for (c, crop) in crops.iter().enumerate() {
            assert!(
                views.contains(crop),
                "image {i}: crop {c} is none of the ten views"
            );
        }
        for (v, view) in views.iter().enumerate() {
            assert!(
                crops.contains(view),
                "image {i}: view {v} is none of the ten crops"
            );
        }
    }
}
