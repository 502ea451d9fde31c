//! Crash safety: the `webstack` process is killed right after each mutating call of a clean
//! apply took effect, in turn; a fresh apply must converge to exactly what a clean apply makes,
//! with no duplicate and no leak, and destroy must then leave nothing.

use webstack::aws::client::{CRASH_AFTER_MUTATIONS_ENV, CRASH_EXIT_CODE};
use webstack_tests::*;

const EXAMPLE: &str = "examples/network-only.yaml";

fn apply(moto: &Moto, crash_after: Option<u64>) -> std::process::Output {
    let k = crash_after.map(|k| k.to_string());
    let env: Vec<(&str, &str)> = k
        .iter()
        .map(|k| (CRASH_AFTER_MUTATIONS_ENV, k.as_str()))
        .collect();
    run_cli(&moto.url(), &["apply", "-f", EXAMPLE, "--show-calls"], &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_mutating_call_converges_without_duplicates_or_leaks() {
    let moto = Moto::start();
    let ec2 = ec2(&moto.url(), "eu-west-1").await;
    let pristine = census(&ec2).await;

    let clean = apply(&moto, None);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let total = mutating_calls(&clean);
    assert!(
        total >= 25,
        "a clean apply makes every resource: {total} mutating calls"
    );
    let reference = census(&ec2).await;

    for k in 1..=total {
        moto.reset();
        assert_eq!(census(&ec2).await, pristine);
        let crashed = apply(&moto, Some(k));
        assert_eq!(
            crashed.status.code(),
            Some(CRASH_EXIT_CODE),
            "the apply was to stop after mutating call {k}: {}",
            String::from_utf8_lossy(&crashed.stderr)
        );
        let resumed = apply(&moto, None);
        assert!(
            resumed.status.success(),
            "resume after crash {k}: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        assert_eq!(
            census(&ec2).await,
            reference,
            "after a crash at mutating call {k} of {total}"
        );
        let destroyed = run_cli(&moto.url(), &["destroy", "-f", EXAMPLE], &[]);
        assert!(
            destroyed.status.success(),
            "destroy after crash {k}: {}",
            String::from_utf8_lossy(&destroyed.stderr)
        );
        assert_eq!(
            census(&ec2).await,
            pristine,
            "destroy after a crash at mutating call {k} left something"
        );
    }
}
