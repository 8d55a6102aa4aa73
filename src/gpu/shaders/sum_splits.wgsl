// sum_splits.wgsl: adds the partial results of a split-K GEMM.
//
// One invocation computes one element: out[i] = sum_{s < splits} part[s * count + i], in
// ascending s (the order does not depend on the dispatch).
// Bindings: 0 uniform SumSplitsParams { count, splits }, 1 part (read; splits x count), 2 out (write).
// Dispatch: elementwise grid over count (see relu.wgsl).

// #include lib/grid.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    var sum = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        sum += part[s * p.count + i];
    }
    out[i] = sum;
}
