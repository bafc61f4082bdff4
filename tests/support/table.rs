//! Table tests that report every failing case: [`check_all`] runs each case, catches its
//! panic (a failed `assert!`), and at the end fails once, listing every case that failed with
//! what differed, so the first failure does not hide the rest. [`Failures`] does the same for
//! checks that cannot run in a closure (async cases).

#![allow(dead_code, clippy::panic)]

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `check` on every case (named by `name`); panics after the last one, listing each case
/// whose check panicked with its panic message. Returns the number of cases run.
pub fn check_all<C>(
    cases: impl IntoIterator<Item = C>,
    name: impl Fn(&C) -> String,
    mut check: impl FnMut(&C),
) -> usize {
    let mut failed = Vec::new();
    let mut run = 0;
    for c in cases {
        run += 1;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| check(&c))) {
            failed.push(format!("  {}: {}", name(&c), message(payload.as_ref())));
        }
    }
    if !failed.is_empty() {
        panic!(
            "{} of {run} cases failed:\n{}",
            failed.len(),
            failed.join("\n")
        );
    }
    run
}

/// The text of a panic payload (`panic!`/`assert!` give a `String` or a `&str`).
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "(panic without a message)".to_owned()
    }
}

/// Differences collected over a table's cases; [`Failures::finish`] fails listing all of them.
#[derive(Debug, Default)]
pub struct Failures {
    list: Vec<String>,
}

impl Failures {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `what` (a case name and what differed) unless `ok`.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.list.push(what());
        }
    }

    /// Records `case: what: got .., want ..` unless `got == want`.
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, case: &str, what: &str, got: T, want: T) {
        self.check(got == want, || {
            format!("{case}: {what}: got {got:?}, want {want:?}")
        });
    }

    /// Panics listing every recorded difference (of `cases` cases run), if there is any.
    pub fn finish(self, cases: usize) {
        if !self.list.is_empty() {
            panic!(
                "{} failed checks over {cases} cases:\n  {}",
                self.list.len(),
                self.list.join("\n  ")
            );
        }
    }
}
