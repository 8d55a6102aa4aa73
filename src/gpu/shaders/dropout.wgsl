// dropout.wgsl: inverted dropout while training, mask regenerated from (seed, index).
//
// One invocation computes one element: y[i] = keep(seed, i) ? x[i] * scale : 0, with
//   pcg_hash(v) = PCG-RXS-M-XS (Jarzynski & Olano 2020), all u32 wrapping arithmetic,
//   h = pcg_hash(i ^ pcg_hash(seed)), keep = f32(h >> 8) * 2^-24 >= p,
// bit for bit the mask of src/cpu/dropout.rs (`dropout_keep`). scale = 1 / (1 - p) is
// computed on the host in f32, as the CPU does. Eval mode needs no kernel (identity).
// Bindings: 0 uniform DropoutParams { count, seed, p, scale }, 1 x (read), 2 y (write).
// Dispatch: elementwise grid (see relu.wgsl): ceil(count / 256) workgroups folded into 2-D.

// #include lib/grid.wgsl

fn pcg_hash(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    let h = pcg_hash(i ^ pcg_hash(p.seed));
    let u = f32(h >> 8u) * (1.0 / 16777216.0);
    y[i] = select(0.0, x[i] * p.scale, u >= p.p);
}
