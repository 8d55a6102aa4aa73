//! `.npy` tensors in and out (native only), for comparison with numpy, PyTorch and
//! onnxruntime. f32 is written; f32 and f64 are read.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use npyz::WriterBuilder;

pub fn read(bytes: &[u8]) -> Result<Tensor> {
    let npy = npyz::NpyFile::new(bytes).map_err(|e| Error::Npy(e.to_string()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if npy.order() != npyz::Order::C {
        return Err(Error::Npy(
            "Fortran-order arrays are not supported; save with C order".into(),
        ));
    }
    let dtype = npy.dtype();
    let data: Vec<f32> = match dtype.descr().trim_matches('\'') {
        "<f4" => npy
            .into_vec::<f32>()
            .map_err(|e| Error::Npy(e.to_string()))?,
        "<f8" => npy
            .into_vec::<f64>()
            .map_err(|e| Error::Npy(e.to_string()))?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        other => {
            return Err(Error::Npy(format!(
                "dtype {other} is not supported: give float32 or float64"
            )))
        }
    };
    Tensor::new(&shape, data).map_err(|_| Error::Npy("data length does not match the shape".into()))
}

pub fn write(t: &Tensor) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut out)
            .begin_nd()
            .map_err(|e| Error::Npy(e.to_string()))?;
        w.extend(t.data.iter().copied())
            .map_err(|e| Error::Npy(e.to_string()))?;
        w.finish().map_err(|e| Error::Npy(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Tensor::new(&[2, 3], vec![1.0, -2.0, 3.5, 0.0, 1e-8, 7.0]).unwrap();
        assert_eq!(read(&write(&t).unwrap()).unwrap(), t);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(read(b"not an npy file"), Err(Error::Npy(_))));
        let mut b = write(&Tensor::zeros(&[4, 4])).unwrap();
        b.truncate(b.len() - 8);
        assert!(matches!(read(&b), Err(Error::Npy(_))));
    }
}
