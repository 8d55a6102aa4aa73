// linear_gemm.wgsl: fully connected layer as a tiled GEMM, for batch > 1.
//
//   y[n, row0 + m] = bias[row0 + m] + sum_k x[n, k] * w[m, k]   (y = x W^T + b), optional ReLU
// for the `rows` output features whose weight rows are bound as w (a row block of the full
// (OUT, IN) matrix starting at row row0: fc6's 151 MB weight is bound in blocks that each
// fit max_storage_buffer_binding_size). Shapes: x (N, IN), w (rows, IN), bias (OUT),
// y (N, OUT) with OUT = out_total.
// One workgroup computes a 64 (features) x 64 (batch) tile with 16 x 16 invocations, each
// owning features ty + 16*i and examples tx + 16*j, i, j in 0..4; K = IN is walked in steps
// of 16 through workgroup memory (two 16 x 64 tiles, 8 KiB).
// Bindings: 0 uniform Params { batch, in_f, out_total, row0, rows, relu }, 1 x (read),
// 2 w (read), 3 bias (read), 4 y (write).
// Dispatch: (ceil(batch / 64), ceil(rows / 64), 1).

struct Params {
    batch: u32,
    in_f: u32,
    out_total: u32,
    row0: u32,
    rows: u32,
    relu: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

// a_tile[k * TM + m], b_tile[k * TN + n]
var<workgroup> a_tile: array<f32, 1024>;
var<workgroup> b_tile: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let tx = lid3.x;
    let ty = lid3.y;
    let m0 = wid.y * TM;
    let n0 = wid.x * TN;
    let big_k = p.in_f;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < big_k; k0 += TK) {
        // Both operands are row-major with k fastest: consecutive invocations read
        // consecutive k of one row.
        for (var r = 0u; r < 4u; r++) {
            let e = li + r * 256u;
            let row = e / TK;
            let kk = e % TK;
            let k = k0 + kk;
            var a = 0.0;
            if m0 + row < p.rows && k < big_k {
                a = wt[(m0 + row) * big_k + k];
            }
            a_tile[kk * TM + row] = a;
            var b = 0.0;
            if n0 + row < p.batch && k < big_k {
                b = x[(n0 + row) * big_k + k];
            }
            b_tile[kk * TN + row] = b;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a = vec4<f32>(
                a_tile[kk * TM + ty],
                a_tile[kk * TM + ty + 16u],
                a_tile[kk * TM + ty + 32u],
                a_tile[kk * TM + ty + 48u],
            );
            let b = vec4<f32>(
                b_tile[kk * TN + tx],
                b_tile[kk * TN + tx + 16u],
                b_tile[kk * TN + tx + 32u],
                b_tile[kk * TN + tx + 48u],
            );
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let m = m0 + ty + 16u * i;
        if m >= p.rows {
            continue;
        }
        var acc: vec4<f32>;
        switch i {
            case 0u: { acc = acc0; }
            case 1u: { acc = acc1; }
            case 2u: { acc = acc2; }
            default: { acc = acc3; }
        }
        let o = p.row0 + m;
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + tx + 16u * j;
            if n >= p.batch {
                continue;
            }
            var v = acc[j] + bias[o];
            if p.relu != 0u {
                v = max(v, 0.0);
            }
            y[n * p.out_total + o] = v;
        }
    }
}
