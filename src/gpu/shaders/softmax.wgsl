// softmax.wgsl: numerically stable softmax over each row of x (N, K).
//
// One workgroup computes one row r: m = max_k x[r, k], s = sum_k exp(x[r, k] - m),
// y[r, k] = exp(x[r, k] - m) / s. Its 256 invocations stride over k; max and sum are
// reduced in workgroup memory (f32; the CPU reference sums in f64).
// Bindings: 0 uniform SoftmaxParams { rows, k }, 1 logits (read) (N, K), 2 y (write).
// Dispatch: rows folded into 2-D, r = wid.y * nwg.x + wid.x: (min(N, 65535), ceil(N / 65535), 1).

// #include lib/softmax.wgsl

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wid.y * nwg.x + wid.x;
    // r is uniform across the workgroup: every invocation returns or none does.
    if r >= p.rows {
        return;
    }
    let base = r * p.k;
    let ms = row_max_sum(base, p.k, lid);
    let row_max = ms.x;
    let total = ms.y;

    for (var k = lid; k < p.k; k += WG) {
        y[base + k] = exp(logits[base + k] - row_max) / total;
    }
}
