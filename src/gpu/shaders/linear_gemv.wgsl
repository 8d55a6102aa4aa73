// linear_gemv.wgsl: fully connected layer as matrix-vector products (batch 1 and small
// batches), split-K inside a workgroup.
//
// One workgroup computes one output y[n, row0 + m] = bias[row0 + m] + sum_k x[n, k] * w[m, k]
// (optional ReLU): its 256 invocations each sum the strided slice k = lid, lid + 256, ...
// (consecutive invocations read consecutive weights: one coalesced pass over the row), then
// a tree reduction in workgroup memory adds the 256 partial sums.
// Bindings: the same Params, shapes and buffers as linear_gemm.wgsl (w is a block of `rows`
// rows): 0 uniform LinearParams, 1 x (read), 2 w (read), 3 bias (read), 4 y (write).
// Dispatch: the rows folded into 2-D, m = wid.y * nwg.x + wid.x:
// (min(rows, 65535), ceil(rows / 65535), batch).

// #include lib/grid.wgsl
// #include lib/linear.wgsl
// #include lib/reduce.wgsl

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let m = workgroup_index(wid, nwg);
    let n = wid.z;
    // m and n are uniform across the workgroup, so every barrier below is reached by all.
    if m >= p.rows { return; }
    let w_row = m * p.in_f;
    let x_row = n * p.in_f;
    var acc = 0.0;
    for (var k = lid; k < p.in_f; k += WG) {
        acc += x[x_row + k] * wt[w_row + k];
    }
    let sum = workgroup_sum(acc, lid);
    if lid == 0u {
        let o = p.row0 + m;
        var v = sum + bias[o];
        if p.relu != 0u {
            v = max(v, 0.0);
        }
        y[n * p.out_total + o] = v;
    }
}
