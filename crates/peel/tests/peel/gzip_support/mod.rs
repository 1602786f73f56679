//! Shared helpers of the gzip tests: realistic text, real tools, round trips.

use std::io::Write;
use std::process::{Command, Stdio};

use peel::gzip::{self, GzipOptions, GzipRecipe, GzipReport};
use sha2::{Digest, Sha256};

/// Deterministic text that looks like a pg_dump COPY block: numbers, names, timestamps, words.
pub fn sql_text(size: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "discourse",
        "topic",
        "reply",
        "the",
        "a",
        "user",
        "post",
        "like",
        "forum",
        "backup",
        "restore",
        "category",
        "badge",
        "notification",
        "email",
        "digest",
        "moderator",
        "flag",
        "quote",
        "thanks",
        "please",
        "question",
        "answer",
        "solved",
        "rails",
        "postgres",
    ];
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut out = Vec::with_capacity(size + 256);
    let mut id = 1000 + seed as usize;
    while out.len() < size {
        id += 1 + next() % 3;
        let user = next() % 5000;
        let words: Vec<&str> = (0..3 + next() % 25)
            .map(|_| WORDS[next() % WORDS.len()])
            .collect();
        writeln!(
            out,
            "{id}\t{user}\tuser_{user}\t2024-{:02}-{:02} {:02}:{:02}:{:02}.{:06}\t{}\t{}\tf",
            1 + next() % 12,
            1 + next() % 28,
            next() % 24,
            next() % 60,
            next() % 60,
            next() % 1_000_000,
            words.join(" "),
            next() % 100
        )
        .unwrap();
    }
    out.truncate(size);
    out
}

/// Runs `program args` with `stdin` as input; returns stdout, panics on failure.
pub fn run(program: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .env_remove("GZIP")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        out.status
    );
    out.stdout
}

/// Python with its zlib module (the system zlib, not our bundled one).
pub fn python(script: &str, stdin: &[u8]) -> Vec<u8> {
    run("python3", &["-c", script], stdin)
}

pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Expands `gz`, checks the plain content against `gzip -dc`'s when `expected_plain` is given,
/// sends the recipe through JSON, rebuilds, and asserts the rebuild has the original SHA-256.
pub fn roundtrip(
    gz: &[u8],
    opts: &GzipOptions,
    expected_plain: Option<&[u8]>,
) -> (GzipRecipe, GzipReport, Vec<u8>) {
    let mut input: &[u8] = gz;
    let mut plain = Vec::new();
    let (recipe, report) = gzip::expand(&mut input, &mut plain, opts, "test.gz")
        .unwrap_or_else(|e| panic!("expand failed: {e}"));
    if let Some(expected) = expected_plain {
        assert_eq!(sha256(&plain), sha256(expected), "plain content differs");
    }
    let json = serde_json::to_string(&recipe).unwrap();
    let recipe: GzipRecipe = serde_json::from_str(&json).unwrap();
    let mut rebuilt = Vec::new();
    let mut plain_in: &[u8] = &plain;
    gzip::rebuild(&recipe, &mut plain_in, &mut rebuilt, "test.gz")
        .unwrap_or_else(|e| panic!("rebuild failed: {e}"));
    assert_eq!(sha256(&rebuilt), sha256(gz), "rebuild is not bit-exact");
    (recipe, report, plain)
}

/// Options that send members longer than 512 KiB down the streaming path.
pub fn small_probe() -> GzipOptions {
    GzipOptions {
        probe_size: 512 * 1024,
        ..GzipOptions::default()
    }
}
