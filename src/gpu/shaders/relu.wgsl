// relu.wgsl: y = max(x, 0), elementwise.
//
// One invocation computes one element y[i].
// Bindings: 0 uniform CountParams { count }, 1 x: array<f32> (read), 2 y: array<f32> (write).
// Dispatch: elementwise grid of workgroups of 256: G = ceil(count / 256) workgroups folded
// into 2-D as (min(G, 65535), ceil(G / 65535), 1); i = (wid.y * nwg.x + wid.x) * 256 + lid.

// #include lib/grid.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    // select keeps NaN out of the comparison's true branch, like the CPU's `if x > 0`.
    let v = x[i];
    y[i] = select(0.0, v, v > 0.0);
}
