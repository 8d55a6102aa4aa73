// lib/grid.wgsl: the folded 2-D grid of WG-wide workgroups every elementwise kernel runs
// on, and the parameters of the kernels that are nothing but one pass over it (relu,
// relu_bwd, fill, sum_splits, sgd, dropout; gpu::params).
//
// The host's grid(count, WG) launches G = ceil(count / WG) workgroups folded into
// (min(G, 65535), ceil(G / 65535), 1); invocation lid of workgroup wid has the flat index
// (wid.y * nwg.x + wid.x) * WG + lid, and indices >= count do nothing.

struct Grid {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// The workgroup's index in the folded grid: the row, channel or output a kernel that
// gives each workgroup one of them (softmax, bias_bwd, linear_gemv) works on. Those kernels
// take the builtins one by one, not as a Grid: to Tint's uniformity analysis a struct that
// holds the invocation index is non-uniform as a whole, and their early return must be
// uniform for the barriers after it.
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

fn flat_index(g: Grid) -> u32 {
    return workgroup_index(g.wid, g.nwg) * WG + g.lid;
}

// (x, y, plane) of flat index i in planes of h rows of w: the coordinates of an element of
// an (N, C, H, W) tensor, plane = n * C + c.
fn plane_coords(i: u32, w: u32, h: u32) -> vec3<u32> {
    return vec3<u32>(i % w, (i / w) % h, i / (w * h));
}

// (x, y, c, n) of flat index i in an (N, C, H, W) tensor with w columns, h rows and
// c channels.
fn tensor_coords(i: u32, w: u32, h: u32, c: u32) -> vec4<u32> {
    return vec4<u32>(i % w, (i / w) % h, (i / (w * h)) % c, i / (w * h * c));
}

struct CountParams {
    count: u32,
}

struct FillParams {
    count: u32,
    value: f32,
}

struct SumSplitsParams {
    count: u32,
    splits: u32,
}

struct SgdParams {
    count: u32,
    lr: f32,
    momentum: f32,
    wd: f32,
}

struct DropoutParams {
    count: u32,
    seed: u32,
    p: f32,
    scale: f32,
}
