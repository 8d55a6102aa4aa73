//! ONNX import and export (helper fills this in).
use crate::error::{Error, Result};
use crate::net::Model;

pub fn import(_bytes: &[u8]) -> Result<Model> {
    Err(Error::Onnx("ONNX import is not written yet".into()))
}
