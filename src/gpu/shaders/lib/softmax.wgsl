// lib/softmax.wgsl: the row reduction both softmax kernels share
// (gpu::params::SoftmaxParams; inv_n = 1 / rows is read only by the loss). The kernel
// declares the storage buffer `logits` (N, K) it reads; one workgroup of WG invocations
// computes one row.

struct SoftmaxParams {
    rows: u32,
    k: u32,
    inv_n: f32,
}

var<workgroup> red: array<f32, WG>;

// The row's maximum m (starting from its first element, K >= 1 is checked by the host) and
// s = sum_k exp(logits[base + k] - m), the same in every invocation: invocation lid strides
// over k and the partial results are reduced in workgroup memory (f32; the CPU reference
// sums in f64).
fn row_max_sum(base: u32, len: u32, lid: u32) -> vec2<f32> {
    var m = logits[base];
    for (var k = lid; k < len; k += WG) {
        m = max(m, logits[base + k]);
    }
    red[lid] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let row_max = red[0];
    workgroupBarrier();

    var sum = 0.0;
    for (var k = lid; k < len; k += WG) {
        sum += exp(logits[base + k] - row_max);
    }
    red[lid] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    return vec2<f32>(row_max, red[0]);
}
