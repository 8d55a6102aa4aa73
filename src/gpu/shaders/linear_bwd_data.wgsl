// linear_bwd_data.wgsl: gradient of y = x W^T + b with respect to x (dx = dy W), one weight
// row block at a time (fc6's weight is split into blocks that each fit one binding).
//
// One invocation computes one element dx[n, i]:
//   dx[n, i] = (accumulate ? dx[n, i] : 0) + sum_{r < rows} dy[n, row0 + r] * wb[r, i]
// where wb holds weight rows row0 .. row0 + rows. The first block's dispatch overwrites,
// the later ones (accumulate = 1) add, so the blocks' dispatches must run in order (they do:
// consecutive dispatches in one pass). The sum runs in chunks of 64 terms, each chunk's
// partial added separately (a two-level f32 sum for fc7's 4096 terms).
// Shapes: dy (N, OUT), wb (rows, IN), dx (N, IN).
// Bindings: 0 uniform LinearBwdParams { n, in_f, out_f, row0, rows, accumulate }, 1 dy (read),
// 2 wb (read), 3 dx (read_write).
// Dispatch: elementwise grid over count = N * IN (see relu.wgsl).

// #include lib/grid.wgsl
// #include lib/linear.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let idx = flat_index(grid);
    if idx >= p.n * p.in_f { return; }
    let i = idx % p.in_f;
    let n = idx / p.in_f;
    let dyrow = n * p.out_f + p.row0;
    var acc = 0.0;
    for (var r0 = 0u; r0 < p.rows; r0 += 64u) {
        let r1 = min(r0 + 64u, p.rows);
        var part = 0.0;
        for (var r = r0; r < r1; r++) {
            part += dy[dyrow + r] * wb[r * p.in_f + i];
        }
        acc += part;
    }
    if p.accumulate != 0u {
        acc += dx[idx];
    }
    dx[idx] = acc;
}
