//! The CSR writer: one thread commits new CSRs for every request thread, in batches.
//!
//! Under load, many creates arrive while the previous commit is being synced. Each used to take
//! the store lock, commit its own transaction (writing its own copy of every B-tree page it
//! touched to the WAL) and wait for a group sync; with 16 request threads on 2 cores most of
//! that time went to lock hand-offs and page writes. Now a request thread queues its create
//! ([`Writer::submit`]) and waits; the writer takes whatever is queued (up to [`MAX_BATCH`]),
//! inserts it in ONE transaction, commits, publishes the ADDED events in resourceVersion order,
//! releases the lock, syncs the WAL once, and answers each request. Each CSR still has its own
//! resourceVersion and audit records, and is acknowledged only once its commit is on disk.
//!
//! A create that fails alone (the name exists) fails alone inside the batch. Any other failure
//! rolls the batch back and its creates are retried one transaction each, so one bad create
//! never fails another.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::feed::{Event, EventKind};
use super::group_sync::{GroupSync, SyncError};
use super::write::{Inserted, NewCsr, Stored, insert_new};
use super::{State, StoreError};
use crate::audit::context::AuditContext;

/// The most creates one transaction takes. Bounds how long the store lock is held (reads and
/// other writes wait for it) to a few milliseconds.
pub(super) const MAX_BATCH: usize = 128;

/// One queued create and where its answer goes.
struct Job {
    new: NewCsr,
    /// The request's audit context (request id, groups) and log span, entered while its
    /// records are written.
    ctx: Option<AuditContext>,
    span: tracing::Span,
    reply: oneshot::Sender<Result<Stored, StoreError>>,
}

/// A queued create: its answer, once the writer has committed and synced it (or failed).
#[derive(Debug)]
pub struct PendingCreate(oneshot::Receiver<Result<Stored, StoreError>>);

impl PendingCreate {
    /// Waits on this (non-async) thread. Must not be called from inside an async task.
    pub fn wait(self) -> Result<Stored, StoreError> {
        self.0.blocking_recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Waits without holding a thread: the writer wakes the task itself.
    pub async fn durable(self) -> Result<Stored, StoreError> {
        self.0.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// The writer thread's handle; dropping it (with the last `Store` clone) stops the thread and
/// waits for it, so the database is closed when the store is gone.
pub(super) struct Writer {
    queue: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer for `state`.
    pub(super) fn spawn(state: Arc<Mutex<State>>, sync: Arc<GroupSync>) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kubesigner-writer".to_owned())
            .spawn(move || run(&state, &sync, &jobs))?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues a create; the answer comes once it is durable (or failed).
    pub(super) fn submit(&self, new: NewCsr) -> Result<PendingCreate, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            new,
            ctx: crate::audit::context::current(),
            span: tracing::Span::current(),
            reply,
        };
        let queue = self.queue.as_ref().ok_or(StoreError::WriterGone)?;
        queue.send(job).map_err(|_| StoreError::WriterGone)?;
        Ok(PendingCreate(answer))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(t) = self.thread.take() {
            // A panicked writer has already answered nobody; nothing more to do.
            let _ = t.join();
        }
    }
}

fn run(state: &Mutex<State>, sync: &GroupSync, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(state, sync, batch);
    }
}

/// Inserts, commits, publishes and syncs one batch, then answers each of its requests.
fn commit(state: &Mutex<State>, sync: &GroupSync, batch: Vec<Job>) {
    let Ok(mut st) = state.lock() else {
        for job in batch {
            let _ = job.reply.send(Err(StoreError::Poisoned));
        }
        return;
    };
    let results = insert_batch(&mut st.conn, &batch);
    let mut committed = false;
    let results: Vec<Result<Stored, StoreError>> = results
        .into_iter()
        .map(|r| {
            r.map(|ins| {
                committed = true;
                publish(&mut st, ins)
            })
        })
        .collect();
    let durable = if committed {
        let seq = sync.committed();
        drop(st);
        seq.and_then(|seq| sync.wait_durable(seq))
    } else {
        drop(st);
        Ok(())
    };
    for (job, r) in batch.into_iter().zip(results) {
        let r = match (&durable, r) {
            (Err(e), Ok(_)) => Err(StoreError::Sync(again(e))),
            (_, r) => r,
        };
        // The request may have stopped waiting; its CSR is stored all the same.
        let _ = job.reply.send(r);
    }
}

/// Runs the batch in one transaction; on a failure other than a create's own `AlreadyExists`,
/// rolls it back and runs each create in its own transaction.
fn insert_batch(
    conn: &mut rusqlite::Connection,
    batch: &[Job],
) -> Vec<Result<Inserted, StoreError>> {
    if batch.len() > 1 {
        match in_one_transaction(conn, batch) {
            Ok(results) => return results,
            Err(e) => {
                tracing::warn!(error = %e, creates = batch.len(), "a batched create failed; retrying each alone");
            }
        }
    }
    batch
        .iter()
        .map(|job| {
            in_one_transaction(conn, std::slice::from_ref(job))
                .and_then(|mut r| r.pop().unwrap_or(Err(StoreError::WriterGone)))
        })
        .collect()
}

/// Inserts every create in one transaction and commits it. `Err` (nothing committed) for any
/// failure but a create's own `AlreadyExists`, which is its result.
fn in_one_transaction(
    conn: &mut rusqlite::Connection,
    jobs: &[Job],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let tx = conn.transaction()?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let ctx = job.ctx.clone();
        let r = job
            .span
            .in_scope(|| crate::audit::context::enter(ctx, || insert_new(&tx, &job.new)));
        match r {
            Err(e @ StoreError::AlreadyExists { .. }) => results.push(Err(e)),
            Err(e) => return Err(e),
            Ok(ins) => results.push(Ok(ins)),
        }
    }
    tx.commit()?;
    Ok(results)
}

/// Publishes a committed create to watchers; returns what its request gets.
fn publish(st: &mut State, ins: Inserted) -> Stored {
    let stored = Stored {
        object: Arc::new(ins.csr),
        json: Arc::from(ins.json),
    };
    st.feed.publish(Event {
        kind: EventKind::Added,
        resource_version: ins.resource_version,
        object: Arc::clone(&stored.object),
        json: Arc::clone(&stored.json),
        subject_cn: ins.subject_cn.map(Arc::from),
    });
    stored
}

/// The same sync failure for another request of the batch.
fn again(e: &SyncError) -> SyncError {
    match e {
        SyncError::Io { path, source } => SyncError::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        SyncError::Poisoned => SyncError::Poisoned,
    }
}

#[cfg(test)]
mod tests;
