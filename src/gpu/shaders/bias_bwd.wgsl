// bias_bwd.wgsl: gradient of a per-channel bias: the sum of dout over everything but the
// channel (conv: N, OH, OW; fully connected: N with inner = 1).
//
// One workgroup computes one channel's db[c] = sum_{n, j < inner} dout[(n*C + c)*inner + j]:
// its 256 invocations stride over the N*inner terms (invocation l takes terms l, l + 256,
// ...; consecutive invocations read consecutive addresses within an example), each summing
// its share in f32, then a tree reduction in workgroup memory adds the 256 partial sums. A
// channel's terms are spread over the whole workgroup, so conv1's 387,200 terms per channel
// at batch 128 take ~1,500 sequential adds per invocation, not all of them in one.
// Shapes: dout (N, C, inner), db (C).
// Bindings: 0 uniform BiasBwdParams { n, c, inner }, 1 dout (read), 2 db (write).
// Dispatch: C workgroups folded into 2-D like the elementwise grid (see relu.wgsl), i.e. the
// host's grid(C * 256, 256): channel c = wid.y * nwg.x + wid.x.

// #include lib/grid.wgsl
// #include lib/reduce.wgsl

struct BiasBwdParams {
    n: u32,
    c: u32,
    inner: u32,
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = workgroup_index(wid, nwg);
    if c >= p.c { return; }
    let total = p.n * p.inner;
    var acc = 0.0;
    for (var e = lid; e < total; e += WG) {
        let n = e / p.inner;
        let j = e - n * p.inner;
        acc += dout[(n * p.c + c) * p.inner + j];
    }
    let sum = workgroup_sum(acc, lid);
    if lid == 0u {
        db[c] = sum;
    }
}
