//! All output-size arithmetic lives here; layers, importers and kernels call these and
//! never repeat the formulas.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a pooling window count is rounded when `(in + pads - kernel)` is not a multiple of the
/// stride. Caffe rounds up; PyTorch by default down. (The ONNX-zoo bvlcalexnet, converted
/// from Caffe through Caffe2 at opset 9 where MaxPool had no ceil_mode, spells its pooling
/// out with floor rounding and explicit pads instead; the importer keeps what the file says.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rounding {
    Floor,
    Ceil,
}

/// Largest input length, kernel, stride or pad the arithmetic accepts. Far beyond AlexNet's
/// numbers; it keeps every sum and product here and in the layers' loops from overflowing on
/// hostile files (wasm32's usize is 32 bits).
pub const MAX_WINDOW: usize = 1 << 16;

/// Output length of a convolution along one axis: `floor((in + lo + hi - k) / s) + 1`.
pub fn conv_out(input: usize, kernel: usize, stride: usize, lo: usize, hi: usize) -> Result<usize> {
    if stride == 0 || kernel == 0 {
        return Err(Error::Arch("kernel and stride must be at least 1".into()));
    }
    if [input, kernel, stride, lo, hi]
        .iter()
        .any(|&v| v > MAX_WINDOW)
    {
        return Err(Error::Arch(format!(
            "sizes over {MAX_WINDOW} are not supported (input {input}, kernel {kernel}, stride {stride}, pads {lo}+{hi})"
        )));
    }
    let padded = input + lo + hi;
    if padded < kernel {
        return Err(Error::Arch(format!(
            "kernel {kernel} is larger than the padded input {padded} (input {input}, pads {lo}+{hi})"
        )));
    }
    Ok((padded - kernel) / stride + 1)
}

/// Output length of a max-pool along one axis. With `Ceil`, a last partial window is kept
/// only if it starts inside the input or the leading pad (Caffe's and PyTorch's rule), so no
/// window reads only padding.
pub fn pool_out(
    input: usize,
    kernel: usize,
    stride: usize,
    lo: usize,
    hi: usize,
    rounding: Rounding,
) -> Result<usize> {
    let floor = conv_out(input, kernel, stride, lo, hi)?;
    match rounding {
        Rounding::Floor => Ok(floor),
        Rounding::Ceil => {
            let span = input + lo + hi - kernel;
            let mut out = span.div_ceil(stride) + 1;
            if (out - 1) * stride >= input + lo {
                out -= 1;
            }
            Ok(out.max(floor))
        }
    }
}

/// The input range `[start, end)` that adaptive average pooling averages for output `i`
/// (PyTorch's definition): `floor(i * in / out) .. ceil((i + 1) * in / out)`.
pub fn adaptive_range(i: usize, input: usize, output: usize) -> (usize, usize) {
    let start = (i * input) / output;
    let end = ((i + 1) * input).div_ceil(output);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alexnet_sizes() {
        // conv1 of the paper at 227 and at 224 with asymmetric pads 1/2.
        assert_eq!(conv_out(227, 11, 4, 0, 0).unwrap(), 55);
        assert_eq!(conv_out(224, 11, 4, 1, 2).unwrap(), 55);
        // Caffe's rules at 224: conv1 54, then ceil pooling 54 -> 27 -> 13 -> 6.
        assert_eq!(conv_out(224, 11, 4, 0, 0).unwrap(), 54);
        assert_eq!(pool_out(54, 3, 2, 0, 0, Rounding::Ceil).unwrap(), 27);
        assert_eq!(pool_out(54, 3, 2, 0, 0, Rounding::Floor).unwrap(), 26);
        assert_eq!(pool_out(27, 3, 2, 0, 0, Rounding::Ceil).unwrap(), 13);
        assert_eq!(pool_out(13, 3, 2, 0, 0, Rounding::Ceil).unwrap(), 6);
        assert_eq!(pool_out(55, 3, 2, 0, 0, Rounding::Floor).unwrap(), 27);
    }

    #[test]
    fn ceil_never_starts_in_trailing_pad() {
        // in 4, k 2, s 2, pad hi 1: ceil would give 3 windows, the last starting at 4 = in.
        assert_eq!(pool_out(4, 2, 2, 0, 1, Rounding::Ceil).unwrap(), 2);
        assert_eq!(pool_out(5, 2, 2, 0, 0, Rounding::Ceil).unwrap(), 3);
    }

    #[test]
    fn errors_not_panics() {
        assert!(matches!(conv_out(3, 5, 1, 0, 0), Err(Error::Arch(_))));
        assert!(matches!(
            conv_out(3, 1, 1, usize::MAX, 1),
            Err(Error::Arch(_))
        ));
        assert!(matches!(
            pool_out(3, 1, 1, 0, usize::MAX, Rounding::Ceil),
            Err(Error::Arch(_))
        ));
        assert!(matches!(conv_out(3, 1, 0, 0, 0), Err(Error::Arch(_))));
    }

    #[test]
    fn adaptive_ranges() {
        assert_eq!(adaptive_range(0, 6, 6), (0, 1));
        assert_eq!(adaptive_range(0, 13, 6), (0, 3));
        assert_eq!(adaptive_range(5, 13, 6), (10, 13));
    }
}
