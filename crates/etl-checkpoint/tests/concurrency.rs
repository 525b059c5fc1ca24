//! Concurrency: two processes that update one state file at once. One waits
//! (--lock-timeout) or exits 75; neither corrupts the file nor loses the
//! other's update.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Scratch;
use etl_core::state::{Entry, StateFile};
use etl_core::Value;

fn pend(store: &StateFile, run: &str, key: &str, v: u64) {
    store
        .update(|st| {
            st.set_pending(
                run,
                key,
                Entry::new(Value::from(v), Some("number"), Some(run)),
            );
            Ok(((), true))
        })
        .unwrap();
}

#[test]
fn a_held_lock_makes_commit_exit_75_without_touching_the_state() {
    let s = Scratch::new();
    // The test's own updates wait for the lock: a sibling test thread that
    // forks a child can hold a copy of our lock fd until the child execs.
    let store = StateFile::new(s.state(), Duration::from_secs(10));
    pend(&store, "a", "k", 1);
    let before = std::fs::read(s.state()).unwrap();
    // Held for the whole test: a commit that waited would never end (the
    // harness's timeout would fail it), so exit 75 itself proves it did not
    // wait. Regression: this was a 2 s bound on the clock, a race on a
    // loaded machine.
    let lock = store.lock().unwrap();
    let out = s.commit("a");
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.log_with("locked by another process"), "{}", out.stderr);
    assert!(
        out.log_with("waited 0s"),
        "--lock-timeout 0 must not wait: {}",
        out.stderr
    );
    assert_eq!(std::fs::read(s.state()).unwrap(), before);
    drop(lock);
}

#[test]
fn lock_timeout_waits_for_the_holder() {
    let s = Scratch::new();
    // The test's own updates wait for the lock: a sibling test thread that
    // forks a child can hold a copy of our lock fd until the child execs.
    let store = StateFile::new(s.state(), Duration::from_secs(10));
    pend(&store, "a", "k", 1);
    let lock = store.lock().unwrap();
    let child = s
        .cmd(&[
            "commit",
            "--state",
            s.state().to_str().unwrap(),
            "--run-id",
            "a",
            "--lock-timeout",
            "10",
        ])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the condition, not for a lucky sleep: the child has the lock
    // file open (it is trying to take the lock we hold).
    let lock_path = s
        .state()
        .with_extension("json.lock")
        .canonicalize()
        .unwrap();
    let fds = format!("/proc/{}/fd", child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_dir(&fds)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| std::fs::read_link(e.path()).is_ok_and(|p| p == lock_path))
    {
        assert!(
            Instant::now() < deadline,
            "the child never opened {}",
            lock_path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(lock);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(store.load().unwrap().committed["k"].value.to_json(), "1");
}

#[test]
fn concurrent_commits_of_two_runs_lose_nothing() {
    for round in 0..30 {
        let s = Scratch::new();
        // The test's own updates wait for the lock: a sibling test thread that
        // forks a child can hold a copy of our lock fd until the child execs.
        let store = StateFile::new(s.state(), Duration::from_secs(10));
        pend(&store, "a", "ka", 1);
        pend(&store, "b", "kb", 2);
        let spawn = |run: &str, timeout: &str| {
            s.cmd(&[
                "commit",
                "--state",
                s.state().to_str().unwrap(),
                "--run-id",
                run,
                "--lock-timeout",
                timeout,
            ])
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        };
        // Waiting: both succeed and both keys are committed (no lost update).
        let (a, b) = (spawn("a", "10"), spawn("b", "10"));
        assert_eq!(a.wait_with_output().unwrap().status.code(), Some(0));
        assert_eq!(b.wait_with_output().unwrap().status.code(), Some(0));
        let st = store.load().unwrap();
        assert!(
            st.committed.contains_key("ka") && st.committed.contains_key("kb"),
            "round {round}: {st:?}"
        );
        assert!(st.pending.is_empty(), "round {round}");

        // Not waiting: each exits 0 or 75, and the file is valid with each
        // successful commit applied.
        pend(&store, "c", "kc", 3);
        pend(&store, "d", "kd", 4);
        let (c, d) = (spawn("c", "0"), spawn("d", "0"));
        let cc = c.wait_with_output().unwrap().status.code();
        let dc = d.wait_with_output().unwrap().status.code();
        let st = store.load().unwrap();
        for (code, key) in [(cc, "kc"), (dc, "kd")] {
            match code {
                Some(0) => assert!(st.committed.contains_key(key), "round {round}"),
                Some(75) => assert!(!st.committed.contains_key(key), "round {round}"),
                other => panic!("round {round}: exit {other:?}"),
            }
        }
    }
}
