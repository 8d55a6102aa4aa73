//! [`GpuContext`]: adapter + device + queue, created once (async, so it works in a browser),
//! with limits negotiated from the adapter's own and every kernel's pipeline compiled up front.
//! Also the small vocabulary the rest of the backend is written in: storage buffers, typed
//! uniform parameters (`params`), [`Dispatch`] (one kernel launch with its bind group), one-submission runs and
//! async readback.
//!
//! Readback is `map_async` + a oneshot awaited: natively `device.poll` drives the callback
//! before the await; on wasm32 the browser fires it when control returns to the event loop,
//! so nothing here ever blocks there.

use super::kernels::Kernel;
use super::params::{uniform_bytes, KernelParams, Layout};
use super::{report, AdapterReport};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

pub use super::params::WG;
/// Workgroup memory the kernels declare at most (the tiled LRNs' 64 x 64 f32 block; the
/// GEMM tiles take 8 KiB); WebGPU's default limit, so every WebGPU adapter has it.
const WORKGROUP_BYTES: u32 = 16384;
/// Storage buffers the widest kernel binds (LRN backward: dout, x, out, scale, dx; WebGPU's
/// default limit is 8).
const STORAGE_BUFFERS: u32 = 5;

/// The device every GPU op runs on, and the compiled pipelines.
pub struct GpuContext {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// The limits the device was created with (what the kernels may rely on).
    pub limits: wgpu::Limits,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    /// Set by the device-lost callback (driver reset, browser reclaiming the GPU,
    /// `lose_device`): why the device is gone. Every buffer and plan on it is then dead.
    lost: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.report())
            .field(
                "max_storage_buffer_binding_size",
                &self.limits.max_storage_buffer_binding_size,
            )
            .finish()
    }
}

impl GpuContext {
    /// The default adapter (high-performance preference): natively a Vulkan device (Mesa
    /// lavapipe on a machine without a GPU), in a browser `navigator.gpu`'s adapter.
    pub async fn new() -> Result<GpuContext> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Error::Gpu(format!(
                    "no adapter found ({e}); natively install a Vulkan driver (e.g. Mesa's \
                     mesa-vulkan-drivers for lavapipe), in a browser enable WebGPU"
                ))
            })?;
        GpuContext::from_adapter(adapter).await
    }

    /// A context on a chosen adapter. Limits: WebGPU's defaults, raised to the adapter's own
    /// values for what this network needs (storage binding and buffer sizes for fc6's 151 MB
    /// weight, storage buffers per stage, workgroup counts and sizes); never
    /// `downlevel_defaults` (4 storage buffers per stage). A too-small adapter is refused
    /// with a message naming the limit.
    pub async fn from_adapter(adapter: wgpu::Adapter) -> Result<GpuContext> {
        let info = adapter.get_info();
        let have = adapter.limits();
        let short = [
            (
                "max_storage_buffers_per_shader_stage",
                have.max_storage_buffers_per_shader_stage,
                STORAGE_BUFFERS,
            ),
            (
                "max_compute_invocations_per_workgroup",
                have.max_compute_invocations_per_workgroup,
                WG,
            ),
            (
                "max_compute_workgroup_size_x",
                have.max_compute_workgroup_size_x,
                WG,
            ),
            (
                "max_compute_workgroup_storage_size",
                have.max_compute_workgroup_storage_size,
                WORKGROUP_BYTES,
            ),
        ]
        .into_iter()
        .filter(|(_, got, need)| got < need)
        .map(|(name, got, need)| format!("{name} {got} (need {need})"))
        .collect::<Vec<_>>();
        if !short.is_empty() {
            return Err(Error::Gpu(format!(
                "adapter {:?} is too small: {}",
                info.name,
                short.join(", ")
            )));
        }
        // WebGPU's defaults, raised to the adapter's values where this network needs more.
        let want = wgpu::Limits {
            max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
            max_buffer_size: have.max_buffer_size,
            max_storage_buffers_per_shader_stage: have.max_storage_buffers_per_shader_stage,
            max_compute_workgroups_per_dimension: have.max_compute_workgroups_per_dimension,
            max_compute_workgroup_storage_size: have.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: have.max_compute_invocations_per_workgroup,
            max_compute_workgroup_size_x: have.max_compute_workgroup_size_x,
            max_compute_workgroup_size_y: have.max_compute_workgroup_size_y,
            ..wgpu::Limits::default()
        };
        // Timestamp queries only serve `alexnet bench` (GPU time per kernel); take them
        // where offered, run without them elsewhere.
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("alexnet"),
                required_features: features,
                required_limits: want.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("request_device on {:?}: {e}", info.name)))?;

        let mut pipelines = HashMap::new();
        for kernel in Kernel::ALL {
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.file()),
                source: wgpu::ShaderSource::Wgsl(kernel.source()?.into()),
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.file()),
                layout: None,
                module: &module,
                entry_point: Some(Kernel::ENTRY),
                compilation_options: Default::default(),
                cache: None,
            });
            if let Some(e) = scope.pop().await {
                return Err(Error::Gpu(format!("compiling {}: {e}", kernel.file())));
            }
            pipelines.insert(kernel, pipeline);
        }
        let lost = Arc::new(Mutex::new(None));
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = flag.lock() {
                *l = Some(format!("{reason:?}: {message}"));
            }
        });
        Ok(GpuContext {
            adapter,
            device,
            queue,
            info,
            limits: want,
            pipelines,
            lost,
        })
    }

    /// Why the device was lost, once it has been (see [`crate::gpu::GpuSession`], which
    /// re-creates it).
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// Destroys the device as a driver reset would: every later use fails and the lost
    /// callback fires. For tests and the page's "simulate a lost device" control.
    pub fn lose_device(&self) {
        // Natively the lost callback only fires on the next poll; mark it now so nothing
        // reads from the dead device in between.
        if let Ok(mut l) = self.lost.lock() {
            l.get_or_insert_with(|| "Destroyed: lost on purpose".into());
        }
        self.device.destroy();
    }

    /// The adapter, as `alexnet adapters` prints it (software adapters called software).
    pub fn report(&self) -> AdapterReport {
        report(&self.info)
    }

    /// The compiled pipeline of `kernel` (all were compiled by `new`).
    pub fn pipeline(&self, kernel: Kernel) -> Result<&wgpu::ComputePipeline> {
        self.pipelines
            .get(&kernel)
            .ok_or_else(|| Error::Gpu(format!("kernel {kernel:?} was not compiled")))
    }

    /// Runs `f` (which creates buffers, bind groups or submits work) and turns any
    /// validation or out-of-memory error the device reports into `Error::Gpu`, instead of
    /// wgpu's default handler (a panic natively, a console message in the browser).
    pub async fn checked<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = validation.pop().await;
        let o = oom.pop().await;
        // On a lost device the work above did nothing and reported nothing; reading from it
        // would fail (natively: panic in the default error handler).
        if let Some(why) = self.lost() {
            return Err(Error::Gpu(format!("{what}: the device was lost ({why})")));
        }
        if let Some(e) = o {
            return Err(Error::Gpu(format!("{what}: out of GPU memory: {e}")));
        }
        if let Some(e) = v {
            return Err(Error::Gpu(format!("{what}: {e}")));
        }
        out
    }

    /// One submission: `record` fills a command encoder (labelled `what`), which is then
    /// submitted, all under [`GpuContext::checked`]'s error scopes.
    pub async fn submit<T>(
        &self,
        what: &str,
        record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<T>,
    ) -> Result<T> {
        self.checked(what, || {
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(what) });
            let out = record(&mut enc)?;
            self.queue.submit([enc.finish()]);
            Ok(out)
        })
        .await
    }

    /// Checks that a buffer of `bytes` can be created and bound whole.
    fn check_size(&self, label: &str, bytes: u64) -> Result<()> {
        let max = self
            .limits
            .max_buffer_size
            .min(self.limits.max_storage_buffer_binding_size);
        if bytes > max {
            return Err(Error::Gpu(format!(
                "buffer {label:?} needs {bytes} bytes, over this device's limit of {max} per \
                 binding"
            )));
        }
        Ok(())
    }

    /// A storage buffer of `len` 4-byte elements (f32 or u32), zero-initialised, usable as a
    /// copy source and destination.
    pub fn storage(&self, label: &str, len: usize) -> Result<wgpu::Buffer> {
        let bytes = (len.max(1) as u64) * 4;
        self.check_size(label, bytes)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A storage buffer holding `data`.
    pub fn upload(&self, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
        let buf = self.storage(label, data.len())?;
        self.write(&buf, data);
        Ok(buf)
    }

    /// Writes `data` at the start of `buf` (ordered before the next submission).
    pub fn write(&self, buf: &wgpu::Buffer, data: &[f32]) {
        if !data.is_empty() {
            self.queue.write_buffer(buf, 0, &f32_bytes(data));
        }
    }

    /// One kernel launch: `params` in a new uniform buffer at binding 0, `buffers` at
    /// bindings 1, 2, ... (in the order the kernel's header lists them), and the workgroup
    /// counts, each checked against the device's per-dimension limit.
    pub fn dispatch<P: KernelParams>(
        &self,
        kernel: Kernel,
        params: &P,
        buffers: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        check_params(kernel, &P::LAYOUT)?;
        if buffers.len() != kernel.buffers().len() {
            return Err(Error::Gpu(format!(
                "{kernel:?} binds {} buffers, was given {}",
                kernel.buffers().len(),
                buffers.len()
            )));
        }
        let max = self.limits.max_compute_workgroups_per_dimension;
        if workgroups.iter().any(|&w| w > max) {
            return Err(Error::Gpu(format!(
                "{kernel:?}: dispatch {workgroups:?} exceeds {max} workgroups per dimension"
            )));
        }
        let bytes = uniform_bytes(params);
        let uniform = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(kernel.file()),
            size: bytes.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&uniform, 0, &bytes);
        let pipeline = self.pipeline(kernel)?;
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.file()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Ok(Dispatch {
            kernel,
            params: uniform,
            bind_group,
            workgroups,
        })
    }

    /// Rewrites a dispatch's parameters (e.g. a dropout seed per training step).
    pub fn set_params<P: KernelParams>(&self, d: &Dispatch, params: &P) -> Result<()> {
        check_params(d.kernel, &P::LAYOUT)?;
        self.queue
            .write_buffer(&d.params, 0, &uniform_bytes(params));
        Ok(())
    }

    /// Records `dispatches` in order into one compute pass of `encoder`.
    pub fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        dispatches: &[&Dispatch],
    ) -> Result<()> {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("alexnet"),
            timestamp_writes: None,
        });
        for d in dispatches {
            pass.set_pipeline(self.pipeline(d.kernel)?);
            pass.set_bind_group(0, &d.bind_group, &[]);
            let [x, y, z] = d.workgroups;
            pass.dispatch_workgroups(x, y, z);
        }
        Ok(())
    }

    /// Runs `dispatches` in one submission, then reads back `outputs` (buffer, element count)
    /// as f32 (u32 buffers: `f32::to_bits`).
    pub async fn run(
        &self,
        dispatches: &[&Dispatch],
        outputs: &[(&wgpu::Buffer, usize)],
    ) -> Result<Vec<Vec<f32>>> {
        let staging = self
            .submit("run", |enc| {
                self.record(enc, dispatches)?;
                Ok(self.copy_out(enc, outputs))
            })
            .await?;
        self.read_staging(&staging).await
    }

    /// Reads `len` f32 starting at element `offset` of `buf` (e.g. one image of a batch).
    pub async fn read_at(&self, buf: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        let staging = self
            .submit("reading a buffer", |enc| {
                let dst = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size: (len.max(1) as u64) * 4,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                if len > 0 {
                    enc.copy_buffer_to_buffer(buf, offset as u64 * 4, &dst, 0, len as u64 * 4);
                }
                Ok(vec![(dst, len)])
            })
            .await?;
        Ok(self.read_staging(&staging).await?.pop().unwrap_or_default())
    }

    /// Reads a whole buffer of `len` f32 back.
    pub async fn read(&self, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        let mut v = self.run(&[], &[(buf, len)]).await?;
        Ok(v.pop().unwrap_or_default())
    }

    /// Reads a whole buffer of `len` u32 back.
    pub async fn read_u32(&self, buf: &wgpu::Buffer, len: usize) -> Result<Vec<u32>> {
        Ok(self
            .read(buf, len)
            .await?
            .into_iter()
            .map(f32::to_bits)
            .collect())
    }

    /// Records copies of `outputs` into new mappable staging buffers.
    pub(crate) fn copy_out(
        &self,
        enc: &mut wgpu::CommandEncoder,
        outputs: &[(&wgpu::Buffer, usize)],
    ) -> Vec<(wgpu::Buffer, usize)> {
        outputs
            .iter()
            .map(|&(src, len)| {
                let bytes = (len.max(1) as u64) * 4;
                let dst = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                if len > 0 {
                    enc.copy_buffer_to_buffer(src, 0, &dst, 0, bytes);
                }
                (dst, len)
            })
            .collect()
    }

    /// Maps every staging buffer and copies its contents out (after the submission that
    /// filled them). Natively `device.poll` waits; on wasm the browser fires the callbacks.
    pub(crate) async fn read_staging(
        &self,
        staging: &[(wgpu::Buffer, usize)],
    ) -> Result<Vec<Vec<f32>>> {
        let mut pending = Vec::with_capacity(staging.len());
        for (buf, _) in staging {
            let (tx, rx) = oneshot();
            buf.map_async(wgpu::MapMode::Read, .., move |r| tx.send(r));
            pending.push(rx);
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        let mut out = Vec::with_capacity(staging.len());
        for ((buf, len), rx) in staging.iter().zip(pending) {
            match rx.await {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(Error::Gpu(format!("reading results back: {e}"))),
                None => {
                    return Err(Error::Gpu(
                        "reading results back: mapping was dropped".into(),
                    ))
                }
            }
            let data = {
                let view = buf
                    .get_mapped_range(..)
                    .map_err(|e| Error::Gpu(format!("reading results back: {e}")))?;
                view.chunks_exact(4)
                    .take(*len)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect::<Vec<f32>>()
            };
            buf.unmap();
            out.push(data);
        }
        Ok(out)
    }
}

/// One recorded kernel launch: the pipeline key, its uniform parameters, its bind group and
/// its workgroup counts. Built by `GpuContext::dispatch` (usually through `ops`), recorded
/// any number of times.
#[derive(Debug)]
pub struct Dispatch {
    pub kernel: Kernel,
    pub params: wgpu::Buffer,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
}

/// Refuses parameters that are not `kernel`'s own struct (a host bug that would otherwise
/// run the kernel on misread values).
fn check_params(kernel: Kernel, got: &Layout) -> Result<()> {
    let want = kernel.params();
    if want.name != got.name {
        return Err(Error::Gpu(format!(
            "{kernel:?} takes {} parameters, was given {}",
            want.name, got.name
        )));
    }
    Ok(())
}

/// `data` as little-endian bytes (what WGSL's f32 is on every platform wgpu supports).
pub fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Workgroup counts for an elementwise kernel over `count` invocations of 256: `G =
/// ceil(count / 256)` folded into 2-D as `(min(G, max), ceil(G / max), 1)`, so conv1 at
/// batch 128 (145 k workgroups) stays under 65,535 per dimension. Kernels recover the flat
/// index as `(wid.y * nwg.x + wid.x) * 256 + lid` and drop indices `>= count`.
pub fn grid(count: usize, per_group: usize, max: u32) -> [u32; 3] {
    let groups = count.div_ceil(per_group.max(1)).max(1);
    let max = (max as usize).max(1);
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    [x as u32, y.min(u32::MAX as usize) as u32, 1]
}

// ---- a minimal oneshot channel, so readback needs no extra dependency ----

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    closed: bool,
}

struct Sender<T>(Arc<Mutex<Slot<T>>>);
struct Receiver<T>(Arc<Mutex<Slot<T>>>);

fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
        closed: false,
    }));
    (Sender(slot.clone()), Receiver(slot))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> Sender<T> {
    fn send(self, v: T) {
        lock(&self.0).value = Some(v);
        // Drop wakes the receiver.
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = lock(&self.0);
        s.closed = true;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    /// `None` when the sender was dropped without sending.
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = lock(&self.0);
        if let Some(v) = s.value.take() {
            Poll::Ready(Some(v))
        } else if s.closed {
            Poll::Ready(None)
        } else {
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
