//! GPU-side timing of individual kernel launches with timestamp queries, for `alexnet bench`.
//!
//! WebGPU's portable way to time work on the GPU is a compute pass's `timestamp_writes`
//! (feature `timestamp-query`; writes inside a pass are a native-only extension). So a timed
//! recording gives every dispatch a pass of its own, with a timestamp at its beginning and
//! its end; the difference is that dispatch's execution time on the GPU, free of CPU-side
//! submission and readback costs that wall-clock prefix timing includes. Passes also order
//! the dispatches exactly as the untimed recording does (one pass per dispatch is a
//! superset of the barriers), so results are unchanged.
//!
//! Adapters without the feature (some browsers, some drivers) get `None` from
//! [`GpuContext::timer`]; callers then fall back to wall time.

use super::context::{Dispatch, GpuContext};
use crate::error::{Error, Result};

/// What a timed dispatch was part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Forward,
    /// The fused softmax + cross-entropy of a training step.
    Loss,
    Backward,
    /// The SGD update of a layer's parameters.
    Update,
}

/// One timed dispatch's label: the phase and the layer index it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub phase: Phase,
    pub layer: usize,
}

/// A query set with room for `capacity` dispatches (two timestamps each) and the labels of
/// the dispatches recorded into it so far.
#[derive(Debug)]
pub struct Timer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    capacity: u32,
    spans: Vec<Span>,
}

impl Timer {
    /// Forgets what was recorded, so the same query set can time the next submission.
    pub fn clear(&mut self) {
        self.spans.clear();
    }
}

impl GpuContext {
    /// Whether the device was created with timestamp queries (the adapter offers them).
    pub fn has_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// A timer for up to `dispatches` timed launches per submission, or `None` when the
    /// device has no timestamp queries.
    pub fn timer(&self, dispatches: usize) -> Result<Option<Timer>> {
        if !self.has_timestamps() {
            return Ok(None);
        }
        let queries = dispatches.max(1) * 2;
        if queries > wgpu::QUERY_SET_MAX_QUERIES as usize {
            return Err(Error::Gpu(format!(
                "timing {dispatches} dispatches needs {queries} timestamp queries; a query \
                 set holds {}",
                wgpu::QUERY_SET_MAX_QUERIES
            )));
        }
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: queries as u32,
        });
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps resolve"),
            size: queries as u64 * wgpu::QUERY_SIZE as u64,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Ok(Some(Timer {
            set,
            resolve,
            capacity: dispatches.max(1) as u32,
            spans: Vec::new(),
        }))
    }

    /// Records `dispatches` like [`GpuContext::record`], each in its own pass with
    /// timestamps at the pass's beginning and end, labelled `span`.
    pub fn record_timed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        dispatches: &[&Dispatch],
        span: Span,
        timer: &mut Timer,
    ) -> Result<()> {
        for d in dispatches {
            let i = timer.spans.len() as u32;
            if i >= timer.capacity {
                return Err(Error::Gpu(format!(
                    "timer full: room for {} dispatches",
                    timer.capacity
                )));
            }
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(d.kernel.file()),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &timer.set,
                    beginning_of_pass_write_index: Some(2 * i),
                    end_of_pass_write_index: Some(2 * i + 1),
                }),
            });
            pass.set_pipeline(self.pipeline(d.kernel)?);
            pass.set_bind_group(0, &d.bind_group, &[]);
            let [x, y, z] = d.workgroups;
            pass.dispatch_workgroups(x, y, z);
            timer.spans.push(span);
        }
        Ok(())
    }

    /// Records `dispatches` timed under `span` when a timer is given, untimed otherwise.
    pub fn record_maybe_timed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        dispatches: &[&Dispatch],
        span: Span,
        timer: Option<&mut Timer>,
    ) -> Result<()> {
        match timer {
            Some(t) => self.record_timed(encoder, dispatches, span, t),
            None => self.record(encoder, dispatches),
        }
    }

    /// Records the resolve of `timer`'s timestamps and their copy into a staging buffer;
    /// read it after the submission with [`GpuContext::read_timer`].
    pub(crate) fn resolve_timer(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        timer: &Timer,
    ) -> Vec<(wgpu::Buffer, usize)> {
        let queries = timer.spans.len() as u32 * 2;
        if queries > 0 {
            encoder.resolve_query_set(&timer.set, 0..queries, &timer.resolve, 0);
        }
        // two u32 words per u64 timestamp
        self.copy_out(encoder, &[(&timer.resolve, queries as usize * 2)])
    }

    /// The GPU time of every recorded dispatch, in recording order, in seconds, from the
    /// staging buffer `resolve_timer` filled (already mapped and read by `read_staging`).
    pub(crate) fn timer_seconds(&self, timer: &Timer, words: &[f32]) -> Vec<(Span, f64)> {
        // ns per tick natively; always 1.0 on the web, where timestamps are nanoseconds
        let period = self.queue.get_timestamp_period() as f64;
        let ticks: Vec<u64> = words
            .chunks_exact(2)
            .map(|w| w[0].to_bits() as u64 | ((w[1].to_bits() as u64) << 32))
            .collect();
        timer
            .spans
            .iter()
            .zip(ticks.chunks_exact(2))
            // a pass can end in a different tick domain on some drivers; never negative
            .map(|(&s, t)| (s, t[1].saturating_sub(t[0]) as f64 * period * 1e-9))
            .collect()
    }
}
