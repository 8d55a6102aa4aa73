// lib/softmax.wgsl: the row reduction both softmax kernels share
// (gpu::params::SoftmaxParams; inv_n = 1 / rows is read only by the loss). The kernel
// declares the storage buffer `logits` (N, K) it reads and includes lib/grid.wgsl and
// lib/reduce.wgsl; one workgroup of WG invocations computes one row.

struct SoftmaxParams {
    rows: u32,
    k: u32,
    inv_n: f32,
}

// One row r of the logits: where it starts, its maximum m (starting from its first element,
// K >= 1 is checked by the host) and s = sum_k exp(logits[r, k] - m), the same in every
// invocation: invocation lid strides over k and the partial results are reduced in
// workgroup memory (lib/reduce.wgsl; f32, the CPU reference sums in f64).
struct SoftmaxRow {
    base: u32,
    m: f32,
    s: f32,
}

fn softmax_row(r: u32, lid: u32) -> SoftmaxRow {
    let base = r * p.k;
    var m = logits[base];
    for (var k = lid; k < p.k; k += WG) {
        m = max(m, logits[base + k]);
    }
    let row_max = workgroup_max(m, lid);

    var sum = 0.0;
    for (var k = lid; k < p.k; k += WG) {
        sum += exp(logits[base + k] - row_max);
    }
    return SoftmaxRow(base, row_max, workgroup_sum(sum, lid));
}

// The softmax of element k of the row: exp(logits[r, k] - m) / s.
fn softmax_prob(row: SoftmaxRow, k: u32) -> f32 {
    return exp(logits[row.base + k] - row.m) / row.s;
}
