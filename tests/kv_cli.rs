//! `tinkerdb kv` end to end against a started `tinkerdb` binary.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::Process;

/// Runs the `tinkerdb kv` command against a node process.
trait KvCommand {
    fn kv(&self, args: &[&str], stdin: &[u8]) -> Output;
    fn ok(&self, args: &[&str]) -> Vec<u8>;
}

impl KvCommand for Process {
    /// Runs `tinkerdb kv --addr <node> args...`, feeding `stdin`.
    fn kv(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
            .arg("kv")
            .args(["--addr", &self.addresses.grpc.to_string()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tinkerdb kv runs");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(stdin)
            .expect("stdin");
        child.wait_with_output().expect("tinkerdb kv finishes")
    }

    /// Runs a command that must succeed and returns its stdout.
    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.kv(args, b"");
        assert!(
            out.status.success(),
            "kv {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

#[test]
fn kv_commands_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Process::start(&tmp.path().join("data"));

    assert!(node.ok(&["set", "greeting", "hello world"]).is_empty());
    assert_eq!(node.ok(&["get", "greeting"]), b"hello world");
    assert_eq!(node.ok(&["exists", "greeting"]), b"true\n");
    assert_eq!(node.ok(&["exists", "nothing"]), b"false\n");

    // A missing key: exit 1, "not found" on stderr, nothing on stdout.
    let out = node.kv(&["get", "nothing"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    node.ok(&["set", "user/1", "ann"]);
    node.ok(&["set", "user/2", "bob"]);
    assert_eq!(node.ok(&["keys", "--prefix", "user/"]), b"user/1\nuser/2\n");
    assert_eq!(
        node.ok(&["scan", "--from", "user/", "--to", "user/9"]),
        b"user/1\tann\nuser/2\tbob\n"
    );
    assert_eq!(
        node.ok(&["scan", "--prefix", "user/", "--reverse", "--limit", "1"]),
        b"user/2\tbob\n"
    );
    // Another tenant sees none of these.
    assert!(node.ok(&["--tenant", "other", "keys"]).is_empty());

    // Binary content from a file (and from stdin) comes back byte-exact.
    let content: Vec<u8> = (0..=255u8).chain([0, 0, b'\n', 0]).collect();
    let file = tmp.path().join("blob.bin");
    std::fs::write(&file, &content).unwrap();
    node.ok(&["set", "blob", "--file", file.to_str().unwrap()]);
    assert_eq!(node.ok(&["get", "blob"]), content);
    let out = node.kv(&["set", "piped", "--file", "-"], &content);
    assert!(out.status.success());
    assert_eq!(node.ok(&["get", "piped"]), content);

    // Delete, then history shows the delete above the put.
    assert_eq!(node.ok(&["del", "greeting"]), b"deleted\n");
    assert_eq!(node.ok(&["del", "greeting"]), b"not found\n");
    let history = String::from_utf8(node.ok(&["history", "greeting"])).unwrap();
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 2, "{history}");
    assert!(lines[0].starts_with("Delete commit_ts="), "{history}");
    assert!(
        lines[1].starts_with("Put commit_ts=") && lines[1].ends_with("value=hello world"),
        "{history}"
    );

    // TTLs parse as durations.
    node.ok(&["set", "session", "x", "--ttl", "1h"]);
    assert_eq!(node.ok(&["get", "session"]), b"x");

    // Errors go to stderr with a non-zero exit.
    let out = node.kv(&["get", ""], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidArgument"));
}
