// lib/linear.wgsl: the uniform parameters of the fully connected kernels, which work on one
// row block (rows row0 .. row0 + rows) of the weight (OUT, IN) at a time
// (gpu::params::LinearParams and LinearBwdParams).

struct LinearParams {
    batch: u32,
    in_f: u32,
    out_total: u32,
    row0: u32,
    rows: u32,
    relu: u32,
}

struct LinearBwdParams {
    n: u32,
    in_f: u32,
    out_f: u32,
    row0: u32,
    rows: u32,
    accumulate: u32,
}
