//! The WebGPU backend (wgpu 30: Vulkan natively, the browser's WebGPU on wasm32).
//!
//! - this file: adapters as wgpu sees them, reported honestly: name, backend, device type,
//!   and whether it is a software adapter (a CPU emulating a GPU: lavapipe, llvmpipe,
//!   SwiftShader, WARP);
//! - [`context`]: [`GpuContext`] (adapter + device + queue with negotiated limits, every
//!   pipeline compiled once), buffers, one-submission runs, async readback;
//! - [`kernels`]: the kernel registry, [`Kernel`]: one `.wgsl` file per kernel in
//!   `src/gpu/shaders/`, each opening with what one invocation computes, its bindings and
//!   the dispatch the host must use;
//! - [`ops`]: one function per layer op that turns a CPU geometry (`model::ConvGeom`, ...) and
//!   buffers into [`Dispatch`]es: the place to add backward kernels;
//! - [`model`]: [`GpuPlan`], a whole network planned once per batch size and run in one
//!   submission;
//! - [`train`]: [`GpuTrainer`], forward + loss + backward + SGD in one submission per step;
//! - [`timer`]: GPU time per kernel launch from timestamp queries (`alexnet bench`).
//!
//! Everything compiles for wasm32 too: no blocking anywhere on that target (readback awaits
//! `map_async`'s callback; `device.poll` is only called natively).

pub mod context;
pub mod kernels;
pub mod ops;
pub mod params;
pub mod plan;
pub mod session;
pub mod timer;
pub mod train;

pub use context::{Dispatch, GpuContext};
pub use kernels::Kernel;
pub use plan::GpuPlan;
pub use session::GpuSession;
pub use timer::{Phase, Span, Timer};
pub use train::GpuTrainer;

/// One adapter.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// A CPU implementation: correct, but far slower than the CPU backend.
    pub software: bool,
}

/// Whether an adapter is a CPU emulating a GPU. Drivers report this inconsistently, so the
/// well-known software rasterisers are also recognised by name.
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_lowercase();
    info.device_type == wgpu::DeviceType::Cpu
        || ["llvmpipe", "lavapipe", "swiftshader", "warp", "softpipe"]
            .iter()
            .any(|s| name.contains(s))
}

pub fn report(info: &wgpu::AdapterInfo) -> AdapterReport {
    AdapterReport {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: [info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        software: is_software(info),
    }
}

/// Every adapter wgpu finds on this machine (native only; a browser offers one adapter at a
/// time through `requestAdapter`).
#[cfg(not(target_arch = "wasm32"))]
pub fn native_adapters() -> Vec<AdapterReport> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(|a| report(&a.get_info()))
        .collect()
}
