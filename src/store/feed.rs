//! The change feed: every committed change becomes an [`Event`], kept in a bounded window of
//! recent events (so a watch from a recent resourceVersion replays what it missed) and sent to
//! live watchers through a tokio broadcast channel.

use std::collections::VecDeque;
use std::sync::Arc;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use tokio::sync::broadcast;

/// How many recent events the window keeps. A watch from a resourceVersion older than the window
/// gets 410 Gone, as kube-apiserver's watch cache does (its default cache holds 100 events per
/// resource type; we keep more because an appliance has a single resource type).
pub const EVENT_WINDOW: usize = 1024;

/// Capacity of the live broadcast channel; a watcher that falls this far behind is closed with
/// 410 Gone and re-watches (client-go handles that).
pub const BROADCAST_CAPACITY: usize = 1024;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted (the object is its last state).
    Deleted,
}

/// One committed change.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The resourceVersion the change committed at.
    pub resource_version: u64,
    /// The object after the change (before it, for a delete, but with the delete's RV).
    pub object: Arc<CertificateSigningRequest>,
    /// `object` as JSON, serialized once for every watcher.
    pub json: Arc<str>,
    /// The request's subject CN (the indexed column), so that watch filters need not parse
    /// the request once per watcher.
    pub subject_cn: Option<Arc<str>>,
}

/// A watch that starts after `from`: the replayed events and the live receiver.
#[derive(Debug)]
pub struct Subscription {
    /// Events after the requested resourceVersion still in the window, oldest first.
    pub replay: Vec<Event>,
    /// Live events from now on.
    pub live: broadcast::Receiver<Event>,
}

/// The in-memory feed. Guarded by the store's connection lock, so publication order equals
/// commit order.
#[derive(Debug)]
pub(super) struct Feed {
    window: VecDeque<Event>,
    /// The oldest resourceVersion a watch may start from and still see every later change.
    oldest_complete: u64,
    sender: broadcast::Sender<Event>,
}

impl Feed {
    /// A feed whose history starts at `current_rv` (changes before start-up are not replayable).
    pub(super) fn new(current_rv: u64) -> Feed {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        Feed {
            window: VecDeque::with_capacity(EVENT_WINDOW),
            oldest_complete: current_rv,
            sender,
        }
    }

    /// Adds a committed event.
    pub(super) fn publish(&mut self, event: Event) {
        if self.window.len() >= EVENT_WINDOW
            && let Some(old) = self.window.pop_front()
        {
            self.oldest_complete = old.resource_version;
        }
        self.window.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(event);
    }

    /// Subscribes from `from` (exclusive). `None` when `from` is older than the window.
    pub(super) fn subscribe(&self, from: u64) -> Option<Subscription> {
        if from < self.oldest_complete {
            return None;
        }
        let replay = self
            .window
            .iter()
            .filter(|e| e.resource_version > from)
            .cloned()
            .collect();
        Some(Subscription {
            replay,
            live: self.sender.subscribe(),
        })
    }

    /// Subscribes to live events only (the caller takes a snapshot under the same lock).
    pub(super) fn subscribe_live(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}
