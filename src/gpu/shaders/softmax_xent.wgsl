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

    let label = labels[r];
    for (var k = lid; k < p.k; k += WG) {
        let prob = exp(logits[base + k] - row_max) / total;
        dz[base + k] = (prob - select(0.0, 1.0, k == label)) * p.inv_n;
    }
    if lid == 0u {
        losses[r] = row_max + log(total) - logits[base + label];
    }
}
