//! Who listens to a guest's monitor: event subscribers (with the backlog late subscribers
//! get) and the holders of console sessions. Kept apart from the server's lifecycle logic:
//! this is bookkeeping of connections, nothing here talks to QEMU.

use std::collections::{HashMap, VecDeque};

use tokio::sync::mpsc;

use super::events::DomainEvent;
use super::proto::{BACKLOG, Push};

/// Tells a connection to close (its console session was taken by `--force`).
pub type Kick = mpsc::UnboundedSender<()>;

#[derive(Default)]
pub struct Hub {
    subs: Vec<mpsc::UnboundedSender<Push>>,
    /// The last domain events, oldest first, for subscribers that come late.
    recent: VecDeque<DomainEvent>,
    /// Console sessions by chardev alias: how to close the holder's connection.
    consoles: HashMap<String, Kick>,
}

/// Why a console session was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsoleRefusal {
    /// Someone holds it and `force` was not given (libvirt's wording in the reply).
    Busy,
}

impl Hub {
    /// Send `p` to every subscriber still connected; domain events also go to the backlog.
    pub fn push(&mut self, p: Push) {
        if let Push::Domain(ev) = &p {
            if self.recent.len() == BACKLOG {
                self.recent.pop_front();
            }
            self.recent.push_back(ev.clone());
        }
        self.subs.retain(|s| s.send(p.clone()).is_ok());
    }

    /// Add a subscriber; with `since_ms`, it first gets the backlog's events from then on.
    pub fn subscribe(&mut self, tx: mpsc::UnboundedSender<Push>, since_ms: Option<u64>) {
        if let Some(since) = since_ms {
            for ev in self.recent.iter().filter(|e| e.time_ms >= since) {
                if tx.send(Push::Domain(ev.clone())).is_err() {
                    return;
                }
            }
        }
        self.subs.push(tx);
    }

    /// Give the console session of `alias` to the connection `kick` closes. A holder whose
    /// connection is gone holds nothing; with `force`, a live holder is closed.
    pub fn claim_console(
        &mut self,
        alias: &str,
        kick: Kick,
        force: bool,
    ) -> Result<(), ConsoleRefusal> {
        if let Some(holder) = self.consoles.get(alias)
            && !holder.is_closed()
        {
            if !force {
                return Err(ConsoleRefusal::Busy);
            }
            let _ = holder.send(());
        }
        self.consoles.insert(alias.to_string(), kick);
        Ok(())
    }

    /// Drop every subscriber (the guest is gone; their connections then end).
    pub fn clear(&mut self) {
        self.subs.clear();
        self.consoles.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::monitor::events::{EventKind, Lifecycle};

    fn ev(t: u64) -> Push {
        Push::Domain(DomainEvent {
            domain: "g".into(),
            time_ms: t,
            kind: EventKind::Lifecycle {
                event: Lifecycle::StartedBooted,
            },
        })
    }

    #[test]
    fn late_subscribers_get_the_backlog_from_their_time() {
        let mut h = Hub::default();
        for t in 0..(BACKLOG as u64 + 10) {
            h.push(ev(t));
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        h.subscribe(tx, Some(BACKLOG as u64 + 5));
        let mut got = Vec::new();
        while let Ok(Push::Domain(e)) = rx.try_recv() {
            got.push(e.time_ms);
        }
        assert_eq!(
            got,
            (BACKLOG as u64 + 5..BACKLOG as u64 + 10).collect::<Vec<_>>()
        );
        h.push(ev(1000));
        assert!(matches!(rx.try_recv(), Ok(Push::Domain(e)) if e.time_ms == 1000));
        // Without `since_ms`: only what comes next.
        let (tx, mut rx) = mpsc::unbounded_channel();
        h.subscribe(tx, None);
        assert!(rx.try_recv().is_err());
        // The backlog is bounded.
        assert_eq!(h.recent.len(), BACKLOG);
    }

    #[test]
    fn console_sessions_one_at_a_time_force_takes_over() {
        let mut h = Hub::default();
        let (k1, mut r1) = mpsc::unbounded_channel();
        let (k2, _r2) = mpsc::unbounded_channel();
        h.claim_console("serial0", k1, false).unwrap();
        assert_eq!(
            h.claim_console("serial0", k2.clone(), false),
            Err(ConsoleRefusal::Busy)
        );
        // Another device is free.
        h.claim_console("console1", k2.clone(), false).unwrap();
        h.claim_console("serial0", k2, true).unwrap();
        assert!(r1.try_recv().is_ok(), "the earlier session is closed");
        // A holder whose connection ended holds nothing.
        let (k3, r3) = mpsc::unbounded_channel();
        h.claim_console("s", k3, false).unwrap();
        drop(r3);
        let (k4, _r4) = mpsc::unbounded_channel();
        h.claim_console("s", k4, false).unwrap();
    }
}
