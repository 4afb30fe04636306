//! `slt`: runs sqllogictest files against any PostgreSQL endpoint (TinkerDB or PostgreSQL).
//!
//! ```text
//! cargo run -p slt -- --url postgresql://postgres@127.0.0.1:55432/slt tests/slt/*.slt
//! ```
//!
//! Prints one line per file and a summary; exits with status 1 if any file failed.
//!
//! With `--conformance`, runs files of the SQLite corpus with its harness settings
//! (`slt::conformance`), keeping going past failed records, and prints one tab-separated line
//! per file: path, records, run, passed, failed, skipped, not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Runs sqllogictest files against a PostgreSQL endpoint.
#[derive(Parser, Debug)]
#[command(name = "slt", version)]
struct Args {
    /// Connection URL, e.g. postgresql://root@127.0.0.1:5433/tinkerdb.
    #[arg(long, env = "SLT_URL")]
    url: String,
    /// Run corpus files with the conformance settings and print per-file counts.
    #[arg(long)]
    conformance: bool,
    /// With --conformance: print every failed record to stderr.
    #[arg(long)]
    verbose: bool,
    /// .slt files, or directories searched recursively for .slt files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Runs corpus files with the conformance settings; fails only if a file cannot be run.
async fn conformance(args: &Args) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for file in &args.files {
        match slt::conformance::run_file(&args.url, file, args.verbose).await {
            Ok(c) => println!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                file.display(),
                c.records,
                c.run,
                c.passed,
                c.failed,
                c.skipped,
                c.not_run
            ),
            Err(e) => {
                eprintln!("slt: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.conformance {
        return conformance(&args).await;
    }
    let mut files = Vec::new();
    for path in &args.files {
        if path.is_dir() {
            match slt::slt_files(path) {
                Ok(found) => files.extend(found),
                Err(e) => {
                    eprintln!("slt: cannot read {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut failed = 0;
    for file in &files {
        match slt::run_file(&args.url, file).await {
            Ok(()) => println!("ok     {}", file.display()),
            Err(e) => {
                failed += 1;
                println!("FAILED {}\n{}", file.display(), e.display(false));
            }
        }
    }
    println!("{} passed, {failed} failed", files.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
