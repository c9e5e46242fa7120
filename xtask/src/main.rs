//! `cargo xtask` entry point; see `cargo xtask help`.

use std::process::ExitCode;
use xtask::cli::{parse, Command, USAGE};
use xtask::{fork, tasks, Paths};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse(&args).and_then(|a| {
        let paths = Paths::resolve(a.fork_dir, a.patches_dir, a.crate_file);
        match a.command {
            Command::Sync { force } => fork::sync(&paths, force),
            Command::Export => fork::export(&paths),
            Command::Check => fork::check(&paths),
            Command::Test(extra) => tasks::test(&paths, &extra),
            Command::Demo(extra) => tasks::demo(&paths, &extra),
            Command::Lint => tasks::lint(&paths),
            Command::Ci => tasks::ci(&paths),
            Command::Help => {
                print!("{USAGE}");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
