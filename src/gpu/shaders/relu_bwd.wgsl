// relu_bwd.wgsl: gradient of y = max(x, 0), elementwise.
//
// One invocation computes one element dx[i] = x[i] > 0 ? dout[i] : 0 (the subgradient at 0
// is 0, as cpu::relu_backward; x may be the ReLU's input or its output).
// Bindings: 0 uniform Params { count }, 1 dout (read), 2 x (read), 3 dx (write).
// Dispatch: elementwise grid over count (see relu.wgsl).

struct Params {
    count: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if i >= p.count {
        return;
    }
    dx[i] = select(0.0, dout[i], x[i] > 0.0);
}
