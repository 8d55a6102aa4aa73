// fill.wgsl: sets every element of a buffer to one value (zeroing gradients or velocities).
//
// One invocation writes one element buf[i] = value.
// Bindings: 0 uniform Params { count, value }, 1 buf (write).
// Dispatch: elementwise grid over count (see relu.wgsl).

struct Params {
    count: u32,
    value: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;

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
    buf[i] = p.value;
}
