//! Crash safety: `etl-checkpoint commit` is killed with SIGKILL at random
//! instants during 200 commits; after each kill the state file must parse and
//! hold either the old or the new committed value, never a torn file.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Scratch;
use etl_core::state::{Entry, StateFile};
use etl_core::Value;
use etl_testkit::Rng;

fn committed(store: &StateFile) -> Option<String> {
    store
        .load()
        .expect("state must always parse")
        .committed
        .get("k")
        .map(|e| e.value.to_json())
}

#[test]
fn sigkill_during_200_commits_never_tears_the_state() {
    let s = Scratch::new();
    // The test's own updates wait for the lock: a sibling test thread that
    // forks a child can hold a copy of our lock fd until the child execs.
    let store = StateFile::new(s.state(), Duration::from_secs(10));
    // Some bulk so that the write takes a measurable share of the run.
    for i in 0..200 {
        let key = format!("bulk-{i:03}");
        store
            .update(|st| {
                st.committed.insert(
                    key.clone(),
                    Entry::new(Value::from("x".repeat(200)), None, None),
                );
                Ok(((), true))
            })
            .unwrap();
    }
    let spawn = |run: &str| {
        s.cmd(&[
            "commit",
            "--state",
            s.state().to_str().unwrap(),
            "--run-id",
            run,
        ])
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
    };
    // Calibrate: how long does one commit take on this machine?
    let mut took = Vec::new();
    for i in 0..5 {
        let run = format!("cal-{i}");
        store
            .update(|st| {
                st.set_pending(
                    &run,
                    "k",
                    Entry::new(Value::from(0_u64), Some("number"), Some(&run)),
                );
                Ok(((), true))
            })
            .unwrap();
        let t = Instant::now();
        assert!(spawn(&run).wait().unwrap().success());
        took.push(t.elapsed());
    }
    took.sort();
    let span = u64::try_from(took[2].as_micros()).unwrap().max(500) * 12 / 10;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let seed =
        u64::from(now.subsec_nanos()) ^ now.as_secs() ^ (u64::from(std::process::id()) << 32);
    let mut rng = Rng::new(seed);
    eprintln!("kill window {span}us, seed {seed}");

    let mut old = committed(&store);
    let (mut kept_old, mut got_new) = (0, 0);
    for i in 1..=200_u64 {
        let run = format!("run-{i}");
        let new = Value::from(i);
        store
            .update(|st| {
                st.set_pending(
                    &run,
                    "k",
                    Entry::new(new.clone(), Some("number"), Some(&run)),
                );
                Ok(((), true))
            })
            .unwrap();
        let mut child = spawn(&run);
        std::thread::sleep(Duration::from_micros(rng.next() % span));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let now = committed(&store);
        assert!(
            now == old || now == Some(new.to_json()),
            "iteration {i} (seed {seed}): {now:?} is neither {old:?} nor {new:?}"
        );
        if now == old {
            kept_old += 1;
        } else {
            got_new += 1;
        }
        // The bulk must be intact too.
        assert_eq!(store.load().unwrap().committed.len(), 201, "iteration {i}");
        old = now;
    }
    eprintln!("kept old: {kept_old}, got new: {got_new}");
    // Both outcomes happened, so kills landed before and after the rename.
    assert!(
        kept_old > 0 && got_new > 0,
        "kills did not spread over the commit (old {kept_old}, new {got_new})"
    );
    // A last unkilled commit still works after all those kills (no stale lock).
    let out = s.commit("run-200");
    assert_eq!(out.code, 0, "{}", out.stderr);
}
