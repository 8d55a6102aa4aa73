//! Stochastic gradient descent with momentum and weight decay in the paper's form
//! (Krizhevsky et al. 2012, section 5), shared by every backend: the GPU's `sgd.wgsl`
//! computes the same two lines per element.

use crate::error::Result;
use crate::tensor::check_len;

/// SGD hyper-parameters, the paper's form: `v <- momentum v - wd lr w - lr g`,
/// `w <- w + v`. The paper: lr 0.01, momentum 0.9, weight decay 0.0005.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

impl Default for Sgd {
    fn default() -> Sgd {
        Sgd {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 0.0005,
        }
    }
}

impl Sgd {
    /// The hyper-parameters a person may set: a learning rate >= 0, 0 <= momentum < 1 and
    /// a weight decay >= 0 (NaN fails every test).
    pub fn check(&self) -> Result<()> {
        if self.lr >= 0.0 && (0.0..1.0).contains(&self.momentum) && self.weight_decay >= 0.0 {
            return Ok(());
        }
        Err(crate::error::Error::Training(format!(
            "need a learning rate >= 0, 0 <= momentum < 1 and weight decay >= 0, got {self:?}"
        )))
    }
}

/// One update of the parameters `w` with velocity `v` and gradient `g` (all the same
/// length), in place, in the same f32 operation order as `sgd.wgsl`.
pub fn sgd_update(opt: &Sgd, w: &mut [f32], v: &mut [f32], g: &[f32]) -> Result<()> {
    check_len("sgd_update: velocity", v.len(), &[w.len()])?;
    check_len("sgd_update: gradient", g.len(), &[w.len()])?;
    for ((wi, vi), &gi) in w.iter_mut().zip(v.iter_mut()).zip(g) {
        let nv = opt.momentum * *vi - opt.weight_decay * opt.lr * *wi - opt.lr * gi;
        *vi = nv;
        *wi += nv;
    }
    Ok(())
}
