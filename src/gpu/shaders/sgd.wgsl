// sgd.wgsl: one SGD-with-momentum update in the paper's form (Krizhevsky et al. 2012, sec. 5):
//   v <- momentum * v - wd * lr * w - lr * g
//   w <- w + v
//
// One invocation updates one parameter element w[i] and its velocity v[i] (f32).
// Bindings: 0 uniform SgdParams { count, lr, momentum, wd }, 1 w (read_write), 2 v (read_write),
// 3 g (read).
// Dispatch: elementwise grid over count (see relu.wgsl).

// #include lib/grid.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    let wi = w[i];
    let vi = p.momentum * v[i] - p.wd * p.lr * wi - p.lr * g[i];
    v[i] = vi;
    w[i] = wi + vi;
}
