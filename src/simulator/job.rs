//! The provisioning job of an online task (`dcs-api.md` §12.1): CreateOnlineMigrationTask answers
//! its `job_id`; ShowJobInfo (`GET /v2/{project_id}/jobs/{job_id}`) reads `RUNNING` while the task
//! is `CREATING`, then `SUCCESS` when the task reaches `RUNNING`, or `FAIL` with a `fail_reason`
//! when a `provisionFailRate` fault doomed it (the task then goes `FAILED`).

use jiff::Timestamp;
use serde::Serialize;

use super::wire_time::list_time;

/// Why a doomed provisioning fails (the message of `DCS.4911`).
pub const FAIL_REASON: &str = "Failed to create the migration ECS: the network ip insufficient.";

/// The `job_type` of a provisioning job.
const JOB_TYPE: &str = "createMigrationTask";

/// A provisioning job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub begin: Timestamp,
    /// When it ended; `None` while it runs.
    pub end: Option<Timestamp>,
    /// It ends in `FAIL` with [`FAIL_REASON`].
    pub fails: bool,
}

/// The answer of ShowJobInfo.
#[derive(Debug, Serialize)]
pub struct JobView<'a> {
    pub job_id: &'a str,
    pub job_type: &'static str,
    pub status: &'static str,
    pub begin_time: String,
    pub end_time: Option<String>,
    pub fail_reason: Option<&'static str>,
}

impl Job {
    /// A job that began at `begin`.
    pub fn new(id: String, begin: Timestamp, fails: bool) -> Self {
        Self { id, begin, end: None, fails }
    }

    /// The ShowJobInfo view.
    pub fn view(&self) -> JobView<'_> {
        let failed = self.end.is_some() && self.fails;
        JobView {
            job_id: &self.id,
            job_type: JOB_TYPE,
            status: match (self.end, self.fails) {
                (None, _) => "RUNNING",
                (Some(_), false) => "SUCCESS",
                (Some(_), true) => "FAIL",
            },
            begin_time: list_time(self.begin),
            end_time: self.end.map(list_time),
            fail_reason: failed.then_some(FAIL_REASON),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_runs_until_it_ends_and_only_a_failed_one_has_a_reason() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let mut ok = Job::new("j".into(), t0, false);
        assert_eq!((ok.view().status, ok.view().end_time), ("RUNNING", None));
        ok.end = Some(t0);
        assert_eq!((ok.view().status, ok.view().fail_reason), ("SUCCESS", None));
        let mut doomed = Job::new("k".into(), t0, true);
        assert_eq!((doomed.view().status, doomed.view().fail_reason), ("RUNNING", None));
        doomed.end = Some(t0);
        assert_eq!((doomed.view().status, doomed.view().fail_reason), ("FAIL", Some(FAIL_REASON)));
    }
}
