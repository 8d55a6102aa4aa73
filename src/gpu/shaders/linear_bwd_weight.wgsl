// linear_bwd_weight.wgsl: gradient of y = x W^T + b with respect to W (dW = dy^T x), for one
// weight row block (rows row0 .. row0 + rows, in their own buffer like the weight).
//
// One invocation computes one element dwb[r, i] = sum_{n < N} dy[n, row0 + r] * x[n, i]
// (N terms, f32, ascending n).
// Shapes: dy (N, OUT), x (N, IN), dwb (rows, IN).
// Bindings: 0 uniform LinearBwdParams { n, in_f, out_f, row0, rows }, 1 dy (read), 2 x (read),
// 3 dwb (write).
// Dispatch: elementwise grid over count = rows * IN (see relu.wgsl).

// #include lib/grid.wgsl
// #include lib/linear.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let idx = flat_index(grid);
    if idx >= p.rows * p.in_f { return; }
    let i = idx % p.in_f;
    let o = p.row0 + idx / p.in_f;
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
        acc += dy[n * p.out_f + o] * x[n * p.in_f + i];
    }
    dwb[idx] = acc;
}
