//! SIGTERM, SIGINT and SIGHUP to etl-run (systemd stopping the unit,
//! Ctrl-C, a closed terminal) go on to every pipeline it runs: each runs in
//! a process group of its own, and the signal is sent to the whole group.
//! After one, etl-run starts no new attempt and no new client.

use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// What a running attempt hears about besides its own exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The pipeline's process exited with this wait status.
    Exited(Option<i32>, Option<i32>),
    /// etl-run received this signal (already forwarded to the group).
    Signal(i32),
}

static GROUPS: Mutex<Vec<(i32, Sender<Event>)>> = Mutex::new(Vec::new());
static STOP: (Mutex<Option<i32>>, Condvar) = (Mutex::new(None), Condvar::new());

/// Starts the thread that forwards signals. Once per process.
pub fn install() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                {
                    let mut stop = STOP
                        .0
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    stop.get_or_insert(sig);
                }
                STOP.1.notify_all();
                let groups = GROUPS
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for (pgid, tx) in groups.iter() {
                    deliver(*pgid, tx, sig);
                }
            }
        })?;
    Ok(())
}

/// The signal that asked etl-run to stop, if one did.
pub fn stopped() -> Option<i32> {
    *STOP
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sleeps for `d` unless a signal asks etl-run to stop first (false then).
pub fn sleep(d: Duration) -> bool {
    let guard = STOP
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (guard, _) = STOP
        .1
        .wait_timeout_while(guard, d, |s| s.is_none())
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    guard.is_none()
}

/// A running pipeline's group: signals reach it until [`unregister`].
/// A signal that came just before it registered is delivered now.
pub fn register(pgid: i32, tx: &Sender<Event>) {
    GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((pgid, tx.clone()));
    if let Some(sig) = stopped() {
        deliver(pgid, tx, sig);
    }
}

/// Tells the attempt of signal `sig`, then forwards it to its group. In
/// that order: the attempt must hear of the signal before the exit the
/// signal causes (the reaper's `Exited` on the same channel), or an
/// interrupted run is recorded as a plain failure (seen in CI: `failed`
/// where `interrupted` was due).
fn deliver(pgid: i32, tx: &Sender<Event>, sig: i32) {
    let _ = tx.send(Event::Signal(sig));
    send(pgid, sig);
}

/// The group's pipeline has ended.
pub fn unregister(pgid: i32) {
    GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|(p, _)| *p != pgid);
}

/// Sends signal number `sig` to process group `pgid`; false when the group
/// has no process left.
pub fn send(pgid: i32, sig: i32) -> bool {
    let Ok(signal) = Signal::try_from(sig) else {
        return false;
    };
    killpg(Pid::from_raw(pgid), signal).is_ok()
}

/// True while a process of group `pgid` is alive.
pub fn group_alive(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

/// The name of signal number `sig` (`SIGTERM`).
pub fn name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}
