// fill.wgsl: sets every element of a buffer to one value (zeroing gradients or velocities).
//
// One invocation writes one element buf[i] = value.
// Bindings: 0 uniform FillParams { count, value }, 1 buf (write).
// Dispatch: elementwise grid over count (see relu.wgsl).

// #include lib/grid.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    buf[i] = p.value;
}
