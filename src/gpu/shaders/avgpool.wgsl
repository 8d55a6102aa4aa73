// avgpool.wgsl: adaptive average pooling (PyTorch's AdaptiveAvgPool2d).
//
// One invocation computes one output (n, c, oy, ox): the mean of input rows
// floor(oy*H/OH) .. ceil((oy+1)*H/OH) and columns floor(ox*W/OW) .. ceil((ox+1)*W/OW)
// (shape::adaptive_range's definition), summed in row-major order in f32 like the CPU.
// Bindings: 0 uniform AvgPoolParams { count, h, w, oh, ow }, 1 x (read) (N, C, H, W),
// 2 out (write) (N, C, OH, OW).
// Dispatch: elementwise grid over count = N*C*OH*OW (see relu.wgsl).

// #include lib/grid.wgsl
// #include lib/pool.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    let at = plane_coords(i, p.ow, p.oh);
    let ox = at.x;
    let oy = at.y;
    let nc = at.z;
    let y0 = (oy * p.h) / p.oh;
    let y1 = ((oy + 1u) * p.h + p.oh - 1u) / p.oh;
    let x0 = (ox * p.w) / p.ow;
    let x1 = ((ox + 1u) * p.w + p.ow - 1u) / p.ow;
    var sum = 0.0;
    for (var iy = y0; iy < y1; iy++) {
        for (var ix = x0; ix < x1; ix++) {
            sum += x[(nc * p.h + iy) * p.w + ix];
        }
    }
    out[i] = sum / f32((y1 - y0) * (x1 - x0));
}
