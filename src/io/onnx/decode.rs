//! Decoding ONNX values: tensors (raw or typed, f32 and f16), attributes, shapes and pads,
//! each checked against the bytes present and `MAX_DIM` before anything is allocated.

use super::import::node_err;
use super::proto::{attr_type, data_type, AttributeProto, NodeProto, TensorProto, ValueInfoProto};
use super::*;
use crate::error::{Error, Result};
use crate::model::Pads;

pub(super) fn transpose(w: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = w[i * c + j];
        }
    }
    t
}

pub(super) fn broadcast_bias(
    dims: &[usize],
    v: Vec<f32>,
    outf: usize,
) -> std::result::Result<Vec<f32>, String> {
    let batchless = dims.len() <= 1 || dims[..dims.len() - 1].iter().all(|d| *d == 1);
    if batchless && v.len() == outf {
        Ok(v)
    } else if v.len() == 1 {
        Ok(vec![v[0]; outf])
    } else {
        Err(format!(
            "bias of shape {dims:?} cannot be broadcast to ({outf}) per image"
        ))
    }
}

pub(super) fn input_shape(vi: &ValueInfoProto) -> Result<[usize; 3]> {
    let err = |m: String| Error::Onnx(format!("graph input {:?}: {m}", vi.name));
    let tt = vi
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| err("is not a tensor".into()))?;
    if tt.elem_type != data_type::FLOAT && tt.elem_type != data_type::FLOAT16 {
        return Err(err(format!(
            "element type {} is not supported (float32)",
            data_type::name(tt.elem_type)
        )));
    }
    let dims = &tt
        .shape
        .as_ref()
        .ok_or_else(|| err("has no shape".into()))?
        .dim;
    if dims.len() != 4 {
        return Err(err(format!(
            "must be 4-D (N, C, H, W), has {} dimensions",
            dims.len()
        )));
    }
    let mut chw = [0; 3];
    for (i, d) in dims[1..].iter().enumerate() {
        chw[i] = d
            .dim_value
            .filter(|v| *v > 0 && *v <= MAX_DIM)
            .map(|v| v as usize)
            .ok_or_else(|| {
                err(format!(
                    "dimension {} (C, H, W) must be a fixed size from 1 to {MAX_DIM}, got {:?}",
                    i + 1,
                    d.dim_param
                ))
            })?;
    }
    if chw.iter().product::<usize>() > MAX_CONST_ELEMS {
        return Err(err(format!("shape {chw:?} is too large")));
    }
    Ok(chw)
}

pub(super) fn checked_len(dims: &[i64]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, d| {
        usize::try_from(*d).ok().and_then(|d| acc.checked_mul(d))
    })
}

pub(super) fn dims_usize(dims: &[i64]) -> std::result::Result<Vec<usize>, String> {
    if checked_len(dims).is_none() {
        return Err(format!("invalid dims {dims:?}"));
    }
    Ok(dims.iter().map(|d| *d as usize).collect())
}

/// Float values of a tensor: FLOAT (raw_data or float_data) or FLOAT16 (raw_data or
/// int32_data), converted to f32. Other types are an error naming the tensor.
/// `t.raw_data`, checked to hold `n` elements of `width` bytes.
fn raw_data<'a>(
    t: &'a TensorProto,
    name: &str,
    n: usize,
    width: usize,
) -> std::result::Result<&'a [u8], String> {
    if t.raw_data.len() != n * width {
        return Err(format!(
            "tensor {name:?}: raw_data has {} bytes, dims {:?} need {}",
            t.raw_data.len(),
            t.dims,
            n * width
        ));
    }
    Ok(&t.raw_data)
}

pub(super) fn tensor_f32(t: &TensorProto, name: &str) -> std::result::Result<Vec<f32>, String> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(format!(
            "tensor {name:?} is stored in an external data file; save the model as a single file \
             (onnx.save(model, path, save_as_external_data=False))"
        ));
    }
    let n = checked_len(&t.dims)
        .ok_or_else(|| format!("tensor {name:?}: invalid dims {:?}", t.dims))?;
    let v: Vec<f32> = match t.data_type {
        data_type::FLOAT if !t.raw_data.is_empty() => raw_data(t, name, n, 4)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        data_type::FLOAT => t.float_data.clone(),
        data_type::FLOAT16 if !t.raw_data.is_empty() => raw_data(t, name, n, 2)?
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        data_type::FLOAT16 => t
            .int32_data
            .iter()
            .map(|b| half::f16::from_bits(*b as u16).to_f32())
            .collect(),
        other => {
            return Err(format!(
                "tensor {name:?} has element type {}; only FLOAT and FLOAT16 weights are supported",
                data_type::name(other)
            ))
        }
    };
    if v.len() != n {
        return Err(format!(
            "tensor {name:?}: {} values for dims {:?} ({n})",
            v.len(),
            t.dims
        ));
    }
    Ok(v)
}

pub(super) fn tensor_i64(t: &TensorProto) -> std::result::Result<Vec<i64>, String> {
    let name = &t.name;
    let v: Vec<i64> = match t.data_type {
        data_type::INT64 if !t.raw_data.is_empty() => {
            if !t.raw_data.len().is_multiple_of(8) {
                return Err(format!(
                    "tensor {name:?}: raw_data is not a whole number of int64"
                ));
            }
            t.raw_data
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .collect()
        }
        data_type::INT64 => t.int64_data.clone(),
        data_type::INT32 if !t.raw_data.is_empty() => {
            if !t.raw_data.len().is_multiple_of(4) {
                return Err(format!(
                    "tensor {name:?}: raw_data is not a whole number of int32"
                ));
            }
            t.raw_data
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                .collect()
        }
        data_type::INT32 => t.int32_data.iter().map(|v| *v as i64).collect(),
        other => {
            return Err(format!(
                "tensor {name:?} has element type {}, expected INT64",
                data_type::name(other)
            ))
        }
    };
    match checked_len(&t.dims) {
        Some(n) if n == v.len() => Ok(v),
        _ => Err(format!(
            "tensor {name:?}: {} values for dims {:?}",
            v.len(),
            t.dims
        )),
    }
}

pub(super) fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub(super) fn attr_int(node: &NodeProto, name: &str) -> Result<Option<i64>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if a.r#type == attr_type::INT || a.r#type == 0 => Ok(Some(a.i)),
        Some(_) => Err(node_err(node, format!("attribute {name} must be an int"))),
    }
}

pub(super) fn attr_float(node: &NodeProto, name: &str) -> Result<Option<f32>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if a.r#type == attr_type::FLOAT || a.r#type == 0 => Ok(Some(a.f)),
        Some(_) => Err(node_err(node, format!("attribute {name} must be a float"))),
    }
}

pub(super) fn attr_ints(node: &NodeProto, name: &str) -> Result<Option<Vec<i64>>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if a.r#type == attr_type::INTS || a.r#type == 0 => Ok(Some(a.ints.clone())),
        Some(_) => Err(node_err(
            node,
            format!("attribute {name} must be a list of ints"),
        )),
    }
}

/// A 2-element positive int list attribute (kernel_shape, strides).
pub(super) fn pair(node: &NodeProto, name: &str, default: [usize; 2]) -> Result<[usize; 2]> {
    match attr_ints(node, name)? {
        None => Ok(default),
        Some(v) => match v.as_slice() {
            [a, b] if (1..=MAX_DIM).contains(a) && (1..=MAX_DIM).contains(b) => {
                Ok([*a as usize, *b as usize])
            }
            _ => Err(node_err(
                node,
                format!("{name} {v:?} is not supported (2-D, positive)"),
            )),
        },
    }
}

pub(super) fn pads(node: &NodeProto) -> Result<Pads> {
    match attr_ints(node, "pads")? {
        None => Ok(Pads::default()),
        Some(v) => match v.as_slice() {
            [t, l, b, r] if v.iter().all(|p| (0..=MAX_DIM).contains(p)) => Ok(Pads {
                top: *t as usize,
                left: *l as usize,
                bottom: *b as usize,
                right: *r as usize,
            }),
            _ => Err(node_err(
                node,
                format!("pads {v:?} is not supported ([top, left, bottom, right], non-negative)"),
            )),
        },
    }
}

pub(super) fn check_ones(node: &NodeProto, name: &str) -> Result<()> {
    if let Some(v) = attr_ints(node, name)? {
        if v.iter().any(|d| *d != 1) {
            return Err(node_err(
                node,
                format!("{name} {v:?} is not supported (only 1)"),
            ));
        }
    }
    Ok(())
}

pub(super) fn check_auto_pad(node: &NodeProto) -> Result<()> {
    if let Some(a) = attr(node, "auto_pad") {
        let s = String::from_utf8_lossy(&a.s);
        // VALID means no padding, which is what NOTSET with pads 0 does too.
        let explicit_pads = attr(node, "pads").is_some_and(|p| p.ints.iter().any(|v| *v != 0));
        match s.as_ref() {
            "" | "NOTSET" => {}
            "VALID" if !explicit_pads => {}
            other => {
                return Err(node_err(
                    node,
                    format!("auto_pad {other} is not supported (only NOTSET with explicit pads)"),
                ))
            }
        }
    }
    Ok(())
}
