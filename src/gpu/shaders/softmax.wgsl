// softmax.wgsl: numerically stable softmax over each row of x (N, K).
//
// One workgroup computes one row r: m = max_k x[r, k], s = sum_k exp(x[r, k] - m),
// y[r, k] = exp(x[r, k] - m) / s. Its 256 invocations stride over k; max and sum are
// reduced in workgroup memory (f32; the CPU reference sums in f64).
// Bindings: 0 uniform SoftmaxParams { rows, k }, 1 logits (read) (N, K), 2 y (write).
// Dispatch: rows folded into 2-D, r = wid.y * nwg.x + wid.x: (min(N, 65535), ceil(N / 65535), 1).

// #include lib/grid.wgsl
// #include lib/reduce.wgsl
// #include lib/softmax.wgsl

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // r is uniform across the workgroup: every invocation returns or none does.
    let r = workgroup_index(wid, nwg);
    if r >= p.rows { return; }
    let row = softmax_row(r, lid);
    for (var k = lid; k < p.k; k += WG) {
        y[row.base + k] = softmax_prob(row, k);
    }
}
