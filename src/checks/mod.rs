//! Checks: for every commit whose `.cocov.yaml` names plugins, a check set with one check per
//! plugin, run by the worker role in sandboxes, ending in issues and a `cocov` status. Owns the
//! `check_sets` and `checks` tables.
//!
//! The flow: ingestion calls [`schedule`] with the manifest; it records the set and queues a
//! [`RUN_JOB`]; any worker runs it ([`RunChecks`]): fetch and unpack the commit
//! ([`workspace`]), run each plugin ([`execute`]), register issues, and [`finish`] the set with
//! its status. [`sweep_expired`] ends sets past their deadline, so none stays pending.

mod execute;
mod finish;
mod links;
mod model;
mod run;
mod schedule;
mod sweep;
pub mod workspace;

pub use execute::{CheckResult, LocalRun, probe_sandbox, run_check, run_locally, sandbox_policy};
pub use finish::refresh_status;
pub use model::{
    Check, CheckSet, CheckSetStatus, CheckStatus, find_set_for_commit, list_checks,
    running_job_repository,
};
pub use run::{RUN_JOB, RunChecks, RunJob};
pub use schedule::{ChecksError, cancel, rerun, schedule};
pub use sweep::sweep_expired;
