// avgpool_bwd.wgsl: gradient of adaptive average pooling as a gather.
//
// One invocation computes one input-gradient element dx[n, c, y, x]:
//   dx = sum over the outputs (oy, ox) whose region R contains (y, x) of dout / |R|,
//   R(oy, ox) = rows floor(oy*H/OH) .. ceil((oy+1)*H/OH) x the same for columns (regions
//   overlap when H is not a multiple of OH), summed in row-major output order in f32 as
//   cpu::adaptive_avgpool_backward.
// Bindings: 0 uniform AvgPoolParams { count, h, w, oh, ow }, 1 dout (read) (N, C, OH, OW),
// 2 dx (write) (N, C, H, W).
// Dispatch: elementwise grid over count = N*C*H*W (see relu.wgsl).

// #include lib/grid.wgsl
// #include lib/pool.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    let at = plane_coords(i, p.w, p.h);
    let xx = at.x;
    let yy = at.y;
    let nc = at.z;
    var acc = 0.0;
    for (var oy = 0u; oy < p.oh; oy++) {
        let y0 = (oy * p.h) / p.oh;
        let y1 = ((oy + 1u) * p.h + p.oh - 1u) / p.oh;
        if yy < y0 || yy >= y1 {
            continue;
        }
        for (var ox = 0u; ox < p.ow; ox++) {
            let x0 = (ox * p.w) / p.ow;
            let x1 = ((ox + 1u) * p.w + p.ow - 1u) / p.ow;
            if xx < x0 || xx >= x1 {
                continue;
            }
            acc += dout[(nc * p.oh + oy) * p.ow + ox] / f32((y1 - y0) * (x1 - x0));
        }
    }
    dx[i] = acc;
}
