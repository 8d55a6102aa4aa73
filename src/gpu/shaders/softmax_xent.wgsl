// softmax_xent.wgsl: fused softmax + cross-entropy, forward and backward in one pass.
//
// One workgroup computes one row r of logits z (N, K) with label l = labels[r]:
//   m = max_k z[r, k], s = sum_k exp(z[r, k] - m), loss[r] = m + log(s) - z[r, l],
//   dlogits[r, k] = (exp(z[r, k] - m) / s - [k == l]) * inv_n   (inv_n = 1/N, f32 from the
//   host: the gradient of the MEAN loss, as cpu::softmax_xent_backward).
// Its 256 invocations stride over k; max and sum are reduced in workgroup memory (f32; the
// CPU sums in f64). Labels are checked (< K) by the host.
// Bindings: 0 uniform SoftmaxParams { rows, k, inv_n }, 1 logits (read), 2 labels: array<u32>
// (read) (N), 3 losses (write) (N), 4 dlogits (write) (N, K).
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
    let label = labels[r];
    for (var k = lid; k < p.k; k += WG) {
        dz[row.base + k] = (softmax_prob(row, k) - select(0.0, 1.0, k == label)) * p.inv_n;
    }
    if lid == 0u {
        losses[r] = row.m + log(row.s) - logits[row.base + label];
    }
}
