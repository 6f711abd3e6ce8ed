//! The operator SIGKILLed at named points of the create/configure path (crash points, built
//! with `--features crash-points`, as `make test` does) and restarted: still exactly one remote
//! task per resource, configured once, and the resource converges with no mark left behind.

mod e2e;
mod support;

use e2e::{Env, Operator};
use std::time::Duration;

const PHASE: Duration = Duration::from_millis(300);

/// Runs the operator through `crashes` (one incarnation each, every one expected to die at its
/// point), then once more without a crash point, and checks the outcome.
async fn survives(hint: &str, crashes: &[&str]) {
    let env = Env::new(hint, PHASE).await;
    env.apply(&env.example("online-incremental.yaml"));
    let mut op: Option<Operator> = None;
    for point in crashes {
        let vars = [("DCS_OPERATOR_CRASH_AT", *point)];
        match op.as_mut() {
            None => op = Some(Operator::start_with(&env, &[], &vars)),
            Some(o) => o.restart(&vars),
        }
        let status = tokio::task::block_in_place(|| op.as_mut().unwrap().wait_exit(Duration::from_secs(30)));
        assert!(
            status.is_some(),
            "the operator never reached crash point {point} (is it built with --features crash-points?)\n{}",
            op.as_ref().unwrap().logs()
        );
    }
    let mut op = op.expect("at least one crash");
    op.restart(&[]);
    let rm = env.wait_phase("online-incremental", "IncrementalMigrating", Duration::from_secs(60)).await;

    let task_name = rm["status"]["taskName"].as_str().unwrap();
    let tasks = env.tasks_named(task_name).await;
    assert_eq!(tasks.len(), 1, "exactly one remote task after crashes at {crashes:?}");
    assert_eq!(rm["status"]["taskId"], tasks[0]["task_id"]);
    let calls = &env.sim_state().await["calls"];
    assert_eq!(calls["CreateOnlineMigrationTask"], 1, "created once");
    assert_eq!(calls["SetOnlineMigrationTask"], 1, "configured once");
    let annotations = &rm["metadata"]["annotations"];
    assert!(annotations.get("dcs.migration.io/create-pending").is_none(), "no create-pending mark left: {annotations}");
    env.assert_no_secret_leaked(&[op.logs()]);
}

macro_rules! crash_at {
    ($($test:ident: [$($point:literal),+];)+) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            survives(stringify!($test), &[$($point),+]).await;
        }
    )+};
}

crash_at! {
    crash_after_the_finalizer_is_added: ["finalizer-added"];
    crash_after_the_create_mark_is_written: ["create-marked"];
    crash_after_the_lookup_by_name: ["create-looked-up"];
    crash_right_after_the_create_call: ["created"];
    crash_after_the_task_id_is_recorded: ["create-recorded"];
    crash_after_the_create_mark_is_cleared: ["create-mark-cleared"];
    crash_right_after_configure: ["configured"];
    crash_after_the_first_status_write: ["status-written#1"];
    crash_after_the_second_status_write: ["status-written#2"];
    crash_after_the_third_status_write: ["status-written#3"];
    crash_after_create_then_after_adoption: ["created", "adopt-recorded"];
    crash_after_create_twice_in_a_row: ["created", "create-looked-up", "configured"];
}
