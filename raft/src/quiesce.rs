//! Quiescence: idle groups stop ticking, so that a node with many idle ranges sends no
//! heartbeats and wakes no timers for them.
//!
//! A leader whose group has been idle for [`Options::quiesce_after`](crate::Options) (no
//! proposal, read barrier or membership change, nothing appended) and whose every voter has
//! matched its whole log, with a uniform membership and no learners, asks each follower to
//! quiesce ([`RpcKind::Quiesce`](crate::RpcKind)), naming its vote and its last log index. A
//! follower agrees only if it has the same vote (the same leader, committed) and the same last
//! index; then it stops its Raft ticker (openraft's `tick(false)`: no election timer, no
//! wake-ups). When every follower agreed and nothing woke the leader meanwhile, the leader
//! stops its own ticker (no heartbeats).
//!
//! Anything wakes a group again, on any replica: on the leader, every proposal, read barrier,
//! membership change or election request of this crate's API, before it reaches openraft; on
//! every replica, every Raft message it receives, after openraft handled it (so the message
//! renews the follower's view of its leader before the election timer runs again). A woken
//! leader heartbeats, and its heartbeats wake the followers.
//!
//! A quiesced group must still notice a dead peer: its followers, that their leader died (else
//! no one would ever campaign), and its leader, that a follower died (else the dead replica
//! would never be reported unresponsive and replaced). So each node's [`Monitor`] pings, once
//! per heartbeat interval, every peer that is a member of one of its quiesced groups
//! ([`RpcKind::Ping`](crate::RpcKind), one message per peer, not per group), and wakes every
//! quiesced group with a member not answering for longer than twice the maximum election
//! timeout.
//! A follower the monitor woke holds its elections for one maximum election timeout (its last
//! word from the leader is long past, so it would campaign at its first tick): a leader that
//! is alive but was slow to answer, and woke too, heartbeats meanwhile and no election
//! happens; a dead one is replaced after that timeout.
//!
//! Quiescence touches only timers, never what Raft decides: a group woken for nothing (a peer
//! slow to answer a ping) at worst holds an unneeded election.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::codec::{Reader, Writer};
use crate::transport::{Handler, Message, RpcKind, Transport};
use crate::types::Vote;
use crate::wire::Body;
use crate::{GroupId, NodeId};

/// Gauge of the groups on this node whose ticker is stopped.
pub(crate) const QUIESCED_GAUGE: &str = "tinkerdb_raft_quiesced_groups";

/// One replica's quiescence state.
pub(crate) struct Quiet {
    state: Mutex<State>,
}

struct State {
    quiesced: bool,
    /// Bumped by every wake-up: a leader quiesces only if nothing woke it while its
    /// followers were being asked.
    epoch: u64,
    /// When the group last woke (or started): silence of a peer counts from then at the
    /// earliest, since a quiesced group hears from no one.
    awake_since: Instant,
}

impl Quiet {
    pub(crate) fn new() -> Self {
        Quiet {
            state: Mutex::new(State {
                quiesced: false,
                epoch: 0,
                awake_since: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True while the ticker is stopped.
    pub(crate) fn is_quiesced(&self) -> bool {
        self.lock().quiesced
    }

    /// The current wake-up epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// When the group last woke.
    pub(crate) fn awake_since(&self) -> Instant {
        self.lock().awake_since
    }

    /// Records activity; restarts the ticker (through `tick`) if it was stopped, and then
    /// returns true.
    pub(crate) fn wake(&self, tick: impl FnOnce(bool)) -> bool {
        let mut s = self.lock();
        s.epoch += 1;
        if !s.quiesced {
            return false;
        }
        s.quiesced = false;
        s.awake_since = Instant::now();
        tick(true);
        metrics::gauge!(QUIESCED_GAUGE).decrement(1.0);
        true
    }

    /// Stops the ticker (through `tick`) unless something woke the group since `epoch`
    /// (`None`: unconditionally, a follower told to). Returns whether the group is quiesced.
    pub(crate) fn quiesce(&self, epoch: Option<u64>, tick: impl FnOnce(bool)) -> bool {
        let mut s = self.lock();
        if epoch.is_some_and(|e| e != s.epoch) {
            return false;
        }
        if !s.quiesced {
            s.quiesced = true;
            tick(false);
            metrics::gauge!(QUIESCED_GAUGE).increment(1.0);
        }
        true
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        if self.lock().quiesced {
            metrics::gauge!(QUIESCED_GAUGE).decrement(1.0);
        }
    }
}

/// A leader's request that a follower quiesce: the leader's vote and last log index.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QuiesceRequest {
    pub(crate) vote: Vote,
    pub(crate) last_index: Option<u64>,
}

impl Body for QuiesceRequest {
    const WHAT: &'static str = "quiesce request";

    fn write(&self, w: &mut Writer) {
        w.vote(&self.vote);
        match self.last_index {
            Some(i) => {
                w.bool(true);
                w.u64(i);
            }
            None => w.bool(false),
        }
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        let vote = r.vote()?;
        let last_index = if r.bool()? { Some(r.u64()?) } else { None };
        Ok(QuiesceRequest { vote, last_index })
    }
}

/// A follower's answer: whether it quiesced.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QuiesceReply {
    pub(crate) quiesced: bool,
}

impl Body for QuiesceReply {
    const WHAT: &'static str = "quiesce reply";

    fn write(&self, w: &mut Writer) {
        w.bool(self.quiesced);
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        Ok(QuiesceReply {
            quiesced: r.bool()?,
        })
    }
}

/// Pings the peers of a node's quiesced groups and wakes the groups whose peer went silent.
/// One per [`Registry`](crate::Registry), started with its first group.
pub(crate) struct Monitor {
    pub(crate) groups: Weak<std::sync::RwLock<HashMap<GroupId, Arc<dyn Handler>>>>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) node: NodeId,
    /// How often peers are pinged.
    pub(crate) every: Duration,
    /// How long a peer may stay silent before its groups wake.
    pub(crate) dead_after: Duration,
}

impl Monitor {
    /// Runs until the registry is dropped.
    pub(crate) async fn run(self) {
        let mut heard: HashMap<NodeId, Instant> = HashMap::new();
        loop {
            tokio::time::sleep(self.every).await;
            let Some(groups) = self.groups.upgrade() else {
                return;
            };
            let quiesced: Vec<(Arc<dyn Handler>, BTreeMap<NodeId, String>)> = groups
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .filter_map(|h| h.quiesced_peers().map(|p| (h.clone(), p)))
                .collect();
            drop(groups);
            let mut peers: BTreeMap<NodeId, String> = BTreeMap::new();
            for (_, p) in &quiesced {
                peers.extend(
                    p.iter()
                        .filter(|(n, _)| **n != self.node)
                        .map(|(n, a)| (*n, a.clone())),
                );
            }
            let now = Instant::now();
            heard.retain(|n, _| peers.contains_key(n));
            for n in peers.keys() {
                heard.entry(*n).or_insert(now);
            }
            let pings = peers.iter().map(|(peer, addr)| {
                let msg = Message {
                    group: 0,
                    from: self.node,
                    to: *peer,
                    kind: RpcKind::Ping,
                    body: Vec::new(),
                };
                let send = self.transport.send(addr, msg);
                let peer = *peer;
                let ttl = self.dead_after;
                async move {
                    (
                        peer,
                        matches!(tokio::time::timeout(ttl, send).await, Ok(Ok(_))),
                    )
                }
            });
            for (peer, answered) in futures::future::join_all(pings).await {
                if answered {
                    heard.insert(peer, Instant::now());
                }
            }
            let silent: Vec<NodeId> = heard
                .iter()
                .filter(|(_, at)| at.elapsed() > self.dead_after)
                .map(|(n, _)| *n)
                .collect();
            if silent.is_empty() {
                continue;
            }
            for (handler, members) in &quiesced {
                if silent.iter().any(|n| members.contains_key(n)) {
                    handler.wake();
                }
            }
            tracing::info!(
                node = self.node,
                ?silent,
                "peers silent: woke their quiesced groups"
            );
            for n in silent {
                heard.remove(&n);
            }
        }
    }
}
