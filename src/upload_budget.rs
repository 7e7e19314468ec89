//! The process-wide budget every coverage upload draws from. Each upload's decompression is
//! capped on its own (`coverage.max_report_bytes`), but sixteen at once could still take
//! gigabytes; so all uploads share two limits: how many are decompressed and parsed at once
//! (`coverage.max_concurrent_uploads`) and how many bytes they hold together
//! (`coverage.max_upload_bytes_in_flight`): request bodies, each slot's working set (the
//! decompression window and read buffers) and the coverage parsed so far, charged as the parsers
//! add files. An upload that cannot get room within `coverage.upload_queue_wait_ms` is refused
//! with [`Refused::Busy`] (503 with `Retry-After`: it is the server that is full, not the client
//! that misbehaved); one that would need more than the whole budget is [`Refused::TooLarge`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::CoverageConfig;

/// What one slot holds besides the coverage: the zstd window (decoders refuse frames wanting a
/// larger one, see [`ZSTD_WINDOW_LOG_MAX`]), the read buffers, the longest token a parser keeps
/// and the file being built (densely, up to the highest line number) before it is charged.
pub const SLOT_WORKING_SET: u64 = 32 * 1024 * 1024;

/// The zstd window a decoder accepts: 8 MiB, what `zstd` levels 1 to 19 use; frames written
/// with `--long` or `--ultra` windows are refused instead of making the daemon allocate them.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// The least `coverage.max_upload_bytes_in_flight` accepted (config validates it).
pub use crate::config::MIN_UPLOAD_BYTES_IN_FLIGHT as MIN_BYTES_IN_FLIGHT;

/// Bytes charged per line of parsed coverage: the report's 4-byte slot, the copy remapped onto
/// the commit's paths, and the encodings made to store it.
pub const BYTES_PER_LINE: u64 = 16;
/// Bytes charged per file on top of its path and lines (map nodes, allocations).
pub const BYTES_PER_FILE: u64 = 128;

/// The bytes semaphore counts KiB, so its permits fit the `u32` it acquires in.
const UNIT: u64 = 1024;

/// Why an upload got no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "the server is processing as many coverage uploads as it may at once \
         (coverage.max_concurrent_uploads, coverage.max_upload_bytes_in_flight); retry later"
    )]
    Busy,
    #[error(
        "the upload needs more memory than all uploads together may hold \
         (coverage.max_upload_bytes_in_flight = {limit} bytes)"
    )]
    TooLarge { limit: u64 },
}

/// The shared budget (one per process, in [`crate::app::App`]).
pub struct UploadBudget {
    slots: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    limit_units: u64,
    wait: Duration,
}

impl UploadBudget {
    pub fn new(config: &CoverageConfig) -> UploadBudget {
        let limit_units = (config.max_upload_bytes_in_flight / UNIT).clamp(1, u64::from(u32::MAX));
        UploadBudget {
            slots: Arc::new(Semaphore::new(config.max_concurrent_uploads.max(1) as usize)),
            bytes: Arc::new(Semaphore::new(limit_units as usize)),
            limit_units,
            wait: config.upload_queue_wait(),
        }
    }

    /// A ticket for one upload: everything it charges is given back when it is dropped. Its
    /// waits all end at the same deadline, so an upload waits at most `upload_queue_wait_ms`
    /// in all.
    pub fn ticket(&self) -> Arc<Ticket> {
        Arc::new(Ticket {
            slots: self.slots.clone(),
            bytes: self.bytes.clone(),
            limit_units: self.limit_units,
            deadline: Instant::now() + self.wait,
            held: Mutex::new(Held::default()),
            refused: Mutex::new(None),
        })
    }

    /// Bytes charged now, for metrics and tests.
    pub fn bytes_in_use(&self) -> u64 {
        (self.limit_units - self.bytes.available_permits() as u64) * UNIT
    }
}

#[derive(Default)]
struct Held {
    slot: Option<OwnedSemaphorePermit>,
    bytes: Option<OwnedSemaphorePermit>,
    units: u64,
}

/// One upload's share of the budget.
pub struct Ticket {
    slots: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    limit_units: u64,
    deadline: Instant,
    held: Mutex<Held>,
    /// The first refusal, remembered so a parser's error can be told from a full budget.
    refused: Mutex<Option<Refused>>,
}

impl Ticket {
    /// Charges `bytes`, waiting until the deadline for room.
    pub async fn charge(&self, bytes: u64) -> Result<(), Refused> {
        let units = self.units_for(bytes)?;
        let acquire = self.bytes.clone().acquire_many_owned(units);
        let permit = self.before_deadline(acquire).await?;
        self.keep(permit, units);
        Ok(())
    }

    /// Takes a decompression/parsing slot and charges its working set.
    pub async fn take_slot(&self) -> Result<(), Refused> {
        let permit = self
            .before_deadline(self.slots.clone().acquire_owned())
            .await?;
        self.lock().slot = Some(permit);
        self.charge(SLOT_WORKING_SET).await
    }

    /// [`Ticket::charge`] from the blocking pool (the parsers run there): a short non-blocking
    /// try first, then a wait on the runtime until the deadline.
    pub fn charge_blocking(&self, bytes: u64) -> Result<(), Refused> {
        if let Some(refused) = self.refusal() {
            return Err(refused);
        }
        let units = self.units_for(bytes)?;
        match self.bytes.clone().try_acquire_many_owned(units) {
            Ok(permit) => {
                self.keep(permit, units);
                Ok(())
            }
            Err(_) => match tokio::runtime::Handle::try_current() {
                Ok(handle) => handle.block_on(self.charge(bytes)),
                Err(_) => Err(self.refuse(Refused::Busy)),
            },
        }
    }

    /// The refusal that stopped this upload, if any.
    pub fn refusal(&self) -> Option<Refused> {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn units_for(&self, bytes: u64) -> Result<u32, Refused> {
        let units = bytes.div_ceil(UNIT).max(1);
        let total = self.lock().units + units;
        if total > self.limit_units {
            return Err(self.refuse(Refused::TooLarge {
                limit: self.limit_units * UNIT,
            }));
        }
        // Within the limit, which fits a u32 (see `UploadBudget::new`).
        Ok(units as u32)
    }

    async fn before_deadline<T, E>(
        &self,
        acquire: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Refused> {
        let deadline = tokio::time::Instant::from_std(self.deadline);
        match tokio::time::timeout_at(deadline, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(self.refuse(Refused::Busy)),
        }
    }

    fn keep(&self, permit: OwnedSemaphorePermit, units: u32) {
        let mut held = self.lock();
        held.units += u64::from(units);
        match held.bytes.as_mut() {
            Some(bytes) => bytes.merge(permit),
            None => held.bytes = Some(permit),
        }
    }

    fn refuse(&self, refused: Refused) -> Refused {
        let mut first = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        *first.get_or_insert(refused)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a parser charges the memory it keeps to: a ticket, or nothing (tools, tests).
#[derive(Clone, Default)]
pub struct Meter(Option<Arc<Ticket>>);

impl Meter {
    pub fn new(ticket: Arc<Ticket>) -> Meter {
        Meter(Some(ticket))
    }

    /// Charges a file of `lines` lines kept under `path_len` bytes of path.
    pub fn charge_file(&self, path_len: usize, lines: u64) -> Result<(), Refused> {
        match &self.0 {
            None => Ok(()),
            Some(ticket) => ticket.charge_blocking(
                BYTES_PER_FILE + path_len as u64 + lines.saturating_mul(BYTES_PER_LINE),
            ),
        }
    }

    /// Charges `bytes` of input kept as it is (the JSON route's strings).
    pub fn charge_bytes(&self, bytes: u64) -> Result<(), Refused> {
        match &self.0 {
            None => Ok(()),
            Some(ticket) => ticket.charge_blocking(bytes),
        }
    }

    pub fn refusal(&self) -> Option<Refused> {
        self.0.as_ref().and_then(|t| t.refusal())
    }
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Meter(ticket)"
        } else {
            "Meter(none)"
        })
    }
}

/// Meters compare equal: they are bookkeeping, not part of what limits say.
impl PartialEq for Meter {
    fn eq(&self, _: &Meter) -> bool {
        true
    }
}

impl Eq for Meter {}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(slots: u32, bytes: u64, wait_ms: u64) -> UploadBudget {
        UploadBudget::new(&CoverageConfig {
            max_concurrent_uploads: slots,
            max_upload_bytes_in_flight: bytes,
            upload_queue_wait_ms: wait_ms,
            ..CoverageConfig::default()
        })
    }

    #[tokio::test]
    async fn a_full_budget_refuses_after_the_wait_and_frees_on_drop() {
        let b = budget(1, MIN_BYTES_IN_FLIGHT, 50);
        let first = b.ticket();
        first.take_slot().await.unwrap();
        assert_eq!(b.bytes_in_use(), SLOT_WORKING_SET);
        let second = b.ticket();
        assert_eq!(second.take_slot().await, Err(Refused::Busy));
        assert_eq!(second.refusal(), Some(Refused::Busy));
        drop(first);
        assert_eq!(b.bytes_in_use(), 0);
        let third = b.ticket();
        third.take_slot().await.unwrap();
        third.charge(1000).await.unwrap();
        assert_eq!(b.bytes_in_use(), SLOT_WORKING_SET + UNIT);
    }

    #[tokio::test]
    async fn more_than_the_whole_budget_is_too_large_at_once() {
        // A deadline no test run reaches: the refusal must come without waiting for it, since
        // no amount of waiting would make room.
        let b = budget(2, MIN_BYTES_IN_FLIGHT, 24 * 3600 * 1000);
        let t = b.ticket();
        t.take_slot().await.unwrap();
        let err = t.charge(MIN_BYTES_IN_FLIGHT).await.unwrap_err();
        assert!(matches!(err, Refused::TooLarge { .. }), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_charges_wait_for_room() {
        let b = budget(2, MIN_BYTES_IN_FLIGHT, 10_000);
        let holder = b.ticket();
        holder.charge(MIN_BYTES_IN_FLIGHT - UNIT).await.unwrap();
        let waiter = b.ticket();
        let meter = Meter::new(waiter.clone());
        let work = tokio::task::spawn_blocking(move || meter.charge_file(10, 100));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!work.is_finished());
        drop(holder);
        assert_eq!(work.await.unwrap(), Ok(()));
        assert!(b.bytes_in_use() > 0);
        drop(waiter);
        assert_eq!(b.bytes_in_use(), 0);
    }
}
