//! Raft timing and limits.

use std::time::Duration;

use crate::Error;

/// Raft timing and limits of every group on a node.
///
/// Timeouts are well above openraft's defaults (50 ms heartbeat, 150–300 ms election): the log
/// fsyncs every append (2–4 ms on the target disks) and a node hosts many groups, so a short
/// stall must not start elections.
///
/// They also set how long failover takes. A follower keeps its leader's lease for
/// `election_timeout_max` after the last heartbeat and refuses (pre-)votes meanwhile, so the
/// first pre-vote, sent after a timeout drawn from `[min, max)`, is refused, and the second,
/// one more timeout later, wins: a new leader about `2 × timeout` after the old one died
/// (1–2 s with the defaults). `min` at least half of `max` keeps it at two rounds.
#[derive(Clone, Debug)]
pub struct Options {
    /// Interval between leader heartbeats.
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// Maximum number of entries in one append-entries message.
    pub max_payload_entries: u64,
    /// Build a log-compaction checkpoint after this many applied entries; None never does.
    /// A checkpoint only persists the state machine and lets openraft purge the log, so it is
    /// cheap, but each one costs an fsync of the node's database.
    pub snapshot_logs_since_last: Option<u64>,
    /// Entries kept in the log behind a checkpoint, so lagging followers catch up by appends
    /// rather than by a full snapshot.
    pub max_in_snapshot_log_to_keep: u64,
    /// Maximum number of entries purged in one go.
    pub purge_batch_size: u64,
    /// Timeout of sending (and installing) a full snapshot to a follower.
    pub install_snapshot_timeout: Duration,
    /// How long [`Group::propose`](crate::Group::propose) waits for commit and apply.
    pub propose_timeout: Duration,
    /// How long [`Group::read_index`](crate::Group::read_index) waits.
    pub read_timeout: Duration,
    /// A leader quiesces its group (stops heartbeats and every replica's timers, see
    /// `quiesce`) after this long without activity; None never does.
    pub quiesce_after: Option<Duration>,
    /// A follower's snapshot larger than this travels in pieces of this size, one message
    /// each, so that no message on a node pair's shared stream holds up the others for long.
    pub snapshot_chunk_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(200),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(1000),
            max_payload_entries: 300,
            snapshot_logs_since_last: Some(100_000),
            max_in_snapshot_log_to_keep: 10_000,
            purge_batch_size: 1_000,
            install_snapshot_timeout: Duration::from_secs(60),
            propose_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            quiesce_after: Some(Duration::from_secs(3)),
            snapshot_chunk_bytes: 4 << 20,
        }
    }
}

impl Options {
    /// Checks the options for consistency.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |m: &str| Err(Error::Invalid(m.to_string()));
        if self.heartbeat_interval.is_zero() {
            return invalid("heartbeat_interval must be positive");
        }
        if self.election_timeout_min <= self.heartbeat_interval {
            return invalid("election_timeout_min must exceed heartbeat_interval");
        }
        if self.election_timeout_max <= self.election_timeout_min {
            return invalid("election_timeout_max must exceed election_timeout_min");
        }
        if self.snapshot_chunk_bytes == 0 {
            return invalid("snapshot_chunk_bytes must be positive");
        }
        if self.max_payload_entries == 0 || self.purge_batch_size == 0 {
            return invalid("max_payload_entries and purge_batch_size must be positive");
        }
        if self.snapshot_logs_since_last == Some(0) {
            return invalid("snapshot_logs_since_last must be positive");
        }
        if self.propose_timeout.is_zero() || self.read_timeout.is_zero() {
            return invalid("propose_timeout and read_timeout must be positive");
        }
        if self
            .quiesce_after
            .is_some_and(|q| q < self.election_timeout_max)
        {
            return invalid("quiesce_after must be at least election_timeout_max");
        }
        Ok(())
    }

    /// The openraft configuration for these options.
    pub(crate) fn to_config(&self) -> Result<openraft::Config, Error> {
        self.validate()?;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let config = openraft::Config {
            cluster_name: "tinkerdb".to_string(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            install_snapshot_timeout: ms(self.install_snapshot_timeout),
            max_payload_entries: self.max_payload_entries,
            snapshot_policy: match self.snapshot_logs_since_last {
                Some(n) => openraft::SnapshotPolicy::LogsSinceLast(n),
                None => openraft::SnapshotPolicy::Never,
            },
            max_in_snapshot_log_to_keep: self.max_in_snapshot_log_to_keep,
            purge_batch_size: self.purge_batch_size,
            // The state machine is not fsynced at every apply, so a restarted leader must not
            // resume leadership without an election (openraft's docs on this option).
            enable_leader_restore: Some(false),
            enable_pre_vote: Some(true),
            ..Default::default()
        };
        config.validate().map_err(|e| Error::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_converts() {
        let opts = Options::default();
        opts.validate().unwrap();
        let c = opts.to_config().unwrap();
        assert_eq!(c.heartbeat_interval, 200);
        assert_eq!(c.election_timeout_min, 500);
    }

    #[test]
    fn rejects_inconsistent_timeouts() {
        let mut opts = Options {
            election_timeout_max: Duration::from_millis(400),
            ..Default::default()
        };
        assert!(opts.validate().is_err());
        opts.election_timeout_max = Duration::from_secs(3);
        opts.heartbeat_interval = Duration::from_secs(2);
        assert!(opts.validate().is_err());
    }
}
