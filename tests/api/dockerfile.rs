//! The Dockerfile, checked without a Docker engine (there is none where the tests run): every
//! path it copies exists and is not excluded by `.dockerignore`, the directories the build reads
//! outside `src/` (the protos for build.rs, the migrations sqlx embeds, the scenario
//! `include_str!` embeds) are all copied, and its HEALTHCHECK runs a real `diplog` command
//! (answering 1, not a usage error, when nothing serves).

use std::path::Path;

use crate::helpers::{diplog, shown};

fn dockerfile() -> String {
    std::fs::read_to_string("Dockerfile").expect("the Dockerfile")
}

/// The instructions, continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(rest) => {
                current.push_str(rest);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
}

#[test]
fn every_copied_path_exists_and_the_build_gets_what_it_reads() {
    let ignored: Vec<String> = std::fs::read_to_string(".dockerignore")
        .expect("a .dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let mut copied = Vec::new();
    for instruction in instructions(&dockerfile()) {
        let words: Vec<&str> = instruction.split_whitespace().collect();
        if words[0] != "COPY" || words.iter().any(|w| w.starts_with("--from")) {
            continue;
        }
        for source in &words[1..words.len() - 1] {
            assert!(Path::new(source).exists(), "COPY {source}: no such path");
            assert!(
                !ignored
                    .iter()
                    .any(|pattern| source.starts_with(pattern.as_str())),
                "COPY {source}: excluded by .dockerignore"
            );
            copied.push(source.to_string());
        }
    }
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "proto",
        "src",
        "migrations",
        "scenarios",
    ] {
        assert!(copied.iter().any(|c| c == needed), "{needed} is not copied");
    }
}

#[tokio::test]
async fn the_healthcheck_runs_a_real_command() {
    let healthcheck = instructions(&dockerfile())
        .into_iter()
        .find(|i| i.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    let (_, command) = healthcheck.split_once("CMD").expect("a CMD");
    let args: Vec<String> = serde_json::from_str(command.trim()).expect("CMD in exec form");
    assert_eq!(args[0], "diplog");
    // Nothing listens on port 9 of loopback: the command runs and reports the server down.
    let mut args: Vec<String> = args[1..].to_vec();
    let server = args.iter().position(|a| a == "--server").expect("--server");
    args[server + 1] = "http://127.0.0.1:9".into();
    let output = diplog(&args).await;
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
}
