//! Runs every `tests/slt/**/*.slt` file against a fresh in-process TinkerDB node: a new data
//! directory and an ephemeral SQL port per file, reached over pgwire by the same engine the
//! `slt` binary uses against PostgreSQL.

use std::path::Path;

use sqllogictest::harness::{Arguments, Failed, Trial, run};

fn main() {
    let args = Arguments::from_args();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let files = slt::slt_files(&dir).expect("tests/slt is readable");
    assert!(!files.is_empty(), "no .slt files under {}", dir.display());
    let tests = files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            Trial::test(name, move || run_file(&path))
        })
        .collect();
    run(&args, tests).exit();
}

/// Starts a node, runs one file against it, and stops the node.
fn run_file(path: &Path) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(async {
        let data_dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let config = tinkerdb::Config {
            data_dir: data_dir.path().to_path_buf(),
            sql_addr: "127.0.0.1:0".parse().expect("valid address"),
            http_addr: "127.0.0.1:0".parse().expect("valid address"),
            grpc_addr: "127.0.0.1:0".parse().expect("valid address"),
            // These files check SQL semantics only, never durability.
            unsafe_no_fsync: true,
            ..Default::default()
        };
        let node = tinkerdb::Node::start(config)
            .await
            .map_err(|e| format!("node start: {e}"))?;
        let url = format!("postgresql://root@{}/tinkerdb", node.sql_addr());
        let result = slt::run_file(&url, path).await;
        let stopped = node.shutdown().await;
        result.map_err(|e| Failed::from(e.display(false).to_string()))?;
        stopped.map_err(|e| Failed::from(format!("node shutdown: {e}")))
    })
}
