// softmax.wgsl: numerically stable softmax over each row of x (N, K).
//
// One workgroup computes one row r: m = max_k x[r, k], s = sum_k exp(x[r, k] - m),
// y[r, k] = exp(x[r, k] - m) / s. Its 256 invocations stride over k; max and sum are
// reduced in workgroup memory (f32; the CPU reference sums in f64).
// Bindings: 0 uniform Params { rows, k }, 1 x (read), 2 y (write).
// Dispatch: rows folded into 2-D, r = wid.y * nwg.x + wid.x: (min(N, 65535), ceil(N / 65535), 1).

struct Params {
    rows: u32,
    k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wid.y * nwg.x + wid.x;
    // r is uniform across the workgroup: every invocation returns or none does.
    if r >= p.rows {
        return;
    }
    let base = r * p.k;

    // start from the row's first element (K >= 1, checked by the host), not a magic value
    var m = x[base];
    for (var k = lid; k < p.k; k += 256u) {
        m = max(m, x[base + k]);
    }
    red[lid] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if lid < s {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let row_max = red[0];
    workgroupBarrier();

    var sum = 0.0;
    for (var k = lid; k < p.k; k += 256u) {
        sum += exp(x[base + k] - row_max);
    }
    red[lid] = sum;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if lid < s {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];

    for (var k = lid; k < p.k; k += 256u) {
        y[base + k] = exp(x[base + k] - row_max) / total;
    }
}
