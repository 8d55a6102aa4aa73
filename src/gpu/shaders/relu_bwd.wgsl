// relu_bwd.wgsl: gradient of y = max(x, 0), elementwise.
//
// One invocation computes one element dx[i] = x[i] > 0 ? dout[i] : 0 (the subgradient at 0
// is 0, as cpu::relu_backward; x may be the ReLU's input or its output).
// Bindings: 0 uniform CountParams { count }, 1 dout (read), 2 x (read), 3 dx (write).
// Dispatch: elementwise grid over count (see relu.wgsl).

// #include lib/grid.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    dx[i] = select(0.0, dout[i], x[i] > 0.0);
}
