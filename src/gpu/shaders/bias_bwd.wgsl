// bias_bwd.wgsl: gradient of a per-channel bias: the sum of dout over everything but the
// channel (conv: N, OH, OW; fully connected: N with inner = 1).
//
// One invocation computes one channel's db[c] = sum_{n, j < inner} dout[(n*C + c)*inner + j],
// each example's partial sum added separately (a two-level f32 sum).
// Shapes: dout (N, C, inner), db (C).
// Bindings: 0 uniform Params { n, c, inner }, 1 dout (read), 2 db (write).
// Dispatch: elementwise grid over count = C (see relu.wgsl).

struct Params {
    n: u32,
    c: u32,
    inner: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = (wid.y * nwg.x + wid.x) * 256u + lid;
    if c >= p.c {
        return;
    }
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
        let base = (n * p.c + c) * p.inner;
        var part = 0.0;
        for (var j = 0u; j < p.inner; j++) {
            part += dout[base + j];
        }
        acc += part;
    }
    db[c] = acc;
}
