// linear_gemm.wgsl: fully connected layer as a tiled GEMM, for batch > 1.
//
//   y[n, row0 + m] = bias[row0 + m] + sum_k x[n, k] * w[m, k]   (y = x W^T + b), optional ReLU
// for the `rows` output features whose weight rows are bound as w (a row block of the full
// (OUT, IN) matrix starting at row row0: fc6's 151 MB weight is bound in blocks that each
// fit max_storage_buffer_binding_size). Shapes: x (N, IN), w (rows, IN), bias (OUT),
// y (N, OUT) with OUT = out_total.
// One workgroup computes a 64 (features) x 64 (batch) tile with 16 x 16 invocations, each
// owning features ty + 16*i and examples tx + 16*j, i, j in 0..4; K = IN is walked in steps
// of 16 through workgroup memory (two 16 x 64 tiles, 8 KiB).
// Bindings: 0 uniform LinearParams { batch, in_f, out_total, row0, rows, relu }, 1 x (read),
// 2 w (read), 3 bias (read), 4 y (write).
// Dispatch: (ceil(batch / 64), ceil(rows / 64), 1).

// #include lib/gemm_tile.wgsl
// #include lib/linear.wgsl

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = Tile(wid, lid3, li);
    let m0 = wid.y * TILE;
    let n0 = wid.x * TILE;
    let big_k = p.in_f;

    var acc = Acc();

    for (var k0 = 0u; k0 < big_k; k0 += TILE_K) {
        // Both operands are row-major with k fastest: consecutive invocations read
        // consecutive k of one row.
        for (var r = 0u; r < 4u; r++) {
            let slot = k_fast_slot(li, r);
            let row = slot.x;
            let kk = slot.y;
            let k = k0 + kk;
            var a = 0.0;
            if m0 + row < p.rows && k < big_k {
                a = wt[(m0 + row) * big_k + k];
            }
            stage_a(row, kk, a);
            var b = 0.0;
            if n0 + row < p.batch && k < big_k {
                b = x[(n0 + row) * big_k + k];
            }
            stage_b(kk, row, b);
        }
        accumulate_tiles(&acc, t);
    }

    store_block(acc, t, p.rows, p.batch);
}

fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    let o = p.row0 + m;
    var v = acc + bias[o];
    if p.relu != 0u {
        v = max(v, 0.0);
    }
    y[n * p.out_total + o] = v;
}
