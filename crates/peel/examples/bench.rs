//! Benchmark of one backup file: `cargo run --release -p peel --example bench -- FILE [WORKDIR]`.
//!
//! Reports, on the same file in one run:
//! - expand time (peel, into a tree on disk) against `gzip -dc FILE | gzip -5 > /dev/null`
//!   (what a plain "decompress and prove by recompressing" costs with the stock tools);
//! - rebuild time (tree to /dev/null, SHA-256 checked) against `gzip -5` of the same tar;
//! - peak RSS of this process and of its children (the `gzip` that GNU-gzip layers drive).
//!
//! The tree and the decompressed tar go to WORKDIR (default: next to FILE), removed afterwards.
//! `PARALLEL_PROOFS=N` sets [`peel::ExpandOptions::parallel_proofs`] (0: the sequential path, to
//! compare with the default, the core count). `PARALLEL_REBUILD=N` sets
//! [`peel::RebuildOptions::parallel_jobs`] the same way, and `REBUILD_BUFFER_CAP=BYTES` its
//! buffer cap.
//! For a file whose outer layer is not gzip the baselines are skipped.
//!
//! `bench TREE` (an expanded tree, as `dvault expand` writes it) only rebuilds it to /dev/null,
//! so that `/usr/bin/time -v` measures the rebuild alone (say, with `PARALLEL_REBUILD=0` and
//! without).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first().map(PathBuf::from) else {
        eprintln!("usage: bench FILE [WORKDIR] | bench TREE");
        std::process::exit(2);
    };
    let workdir = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        file.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    });
    if let Err(e) = run(&file, &workdir) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run(file: &Path, workdir: &Path) -> Result<(), String> {
    let rebuild_opts = rebuild_options()?;
    if file.join(peel::tree::RECIPE_PATH).is_file() {
        let t = Instant::now();
        let cpu = cpu_secs();
        let mut null = std::fs::File::create("/dev/null").map_err(|e| e.to_string())?;
        let digest = peel::tree::rebuild_from_dir_with(file, &mut null, &rebuild_opts)
            .map_err(|e| e.to_string())?;
        println!(
            "rebuild of {} with parallel_jobs {} (buffer cap {} bytes): {} bytes, sha256 {} \
             checked; {:.2} s wall, {:.2} s CPU (with children), peak RSS {:.1} MiB",
            file.display(),
            rebuild_opts.parallel_jobs,
            rebuild_opts.buffer_cap,
            digest.size,
            digest.sha256,
            secs(t.elapsed()),
            cpu_secs() - cpu,
            max_rss_kib(libc::RUSAGE_SELF) as f64 / 1024.0
        );
        return Ok(());
    }
    let size = std::fs::metadata(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    let scratch = tempfile::Builder::new()
        .prefix(".peel-bench-")
        .tempdir_in(workdir)
        .map_err(|e| format!("creating a scratch dir in {}: {e}", workdir.display()))?;
    let tree = scratch.path().join("tree");

    let mut opts = peel::ExpandOptions::default();
    if let Ok(n) = std::env::var("PARALLEL_PROOFS") {
        opts.parallel_proofs = n.parse().map_err(|e| format!("PARALLEL_PROOFS={n}: {e}"))?;
    }
    let t = Instant::now();
    let cpu = cpu_secs();
    let (_, report) = peel::tree::expand_to_dir(file, &tree, &opts).map_err(|e| e.to_string())?;
    let expand = t.elapsed();
    println!(
        "expand with parallel_proofs {}: {:.2} s wall, {:.2} s CPU (with children)",
        opts.parallel_proofs,
        secs(expand),
        cpu_secs() - cpu
    );
    let rss_after_expand = max_rss_kib(libc::RUSAGE_SELF);

    let t = Instant::now();
    let cpu = cpu_secs();
    let mut null = std::fs::File::create("/dev/null").map_err(|e| e.to_string())?;
    peel::tree::rebuild_from_dir_with(&tree, &mut null, &rebuild_opts)
        .map_err(|e| e.to_string())?;
    let rebuild = t.elapsed();
    println!(
        "rebuild with parallel_jobs {} (buffer cap {} bytes): {:.2} s wall, {:.2} s CPU (with \
         children)",
        rebuild_opts.parallel_jobs,
        rebuild_opts.buffer_cap,
        secs(rebuild),
        cpu_secs() - cpu
    );
    let rss_self = max_rss_kib(libc::RUSAGE_SELF);
    let rss_children = max_rss_kib(libc::RUSAGE_CHILDREN);

    println!("file: {} ({size} bytes)", file.display());
    print!("{report}");
    println!(
        "peak RSS: {:.1} MiB after expand, {:.1} MiB after rebuild (this process); {:.1} MiB \
         (largest child)",
        rss_after_expand as f64 / 1024.0,
        rss_self as f64 / 1024.0,
        rss_children as f64 / 1024.0
    );
    let outer_gzip = report.layers.first().is_some_and(|l| l.kind == "gzip");
    if !outer_gzip {
        println!(
            "expand: {:.2} s; rebuild: {:.2} s",
            secs(expand),
            secs(rebuild)
        );
        println!("(outer layer is not gzip: no gzip baselines)");
        return Ok(());
    }
    let q = shell_quote(file);
    let plain_tar = scratch.path().join("plain.tar");
    let base_expand = time_sh(&format!("gzip -dc {q} | gzip -5 > /dev/null"))?;
    time_sh(&format!("gzip -dc {q} > {}", shell_quote(&plain_tar)))?;
    let base_rebuild = time_sh(&format!(
        "gzip -5 -c {} > /dev/null",
        shell_quote(&plain_tar)
    ))?;
    println!(
        "expand:  {:.2} s vs {:.2} s for `gzip -dc | gzip -5`: ratio {:.2}",
        secs(expand),
        secs(base_expand),
        secs(expand) / secs(base_expand)
    );
    println!(
        "rebuild: {:.2} s vs {:.2} s for `gzip -5` of the tar: ratio {:.2}",
        secs(rebuild),
        secs(base_rebuild),
        secs(rebuild) / secs(base_rebuild)
    );
    Ok(())
}

/// The rebuild options, from `PARALLEL_REBUILD` and `REBUILD_BUFFER_CAP`.
fn rebuild_options() -> Result<peel::RebuildOptions, String> {
    let mut opts = peel::RebuildOptions::default();
    if let Ok(n) = std::env::var("PARALLEL_REBUILD") {
        opts.parallel_jobs = n
            .parse()
            .map_err(|e| format!("PARALLEL_REBUILD={n}: {e}"))?;
    }
    if let Ok(n) = std::env::var("REBUILD_BUFFER_CAP") {
        opts.buffer_cap = n
            .parse()
            .map_err(|e| format!("REBUILD_BUFFER_CAP={n}: {e}"))?;
    }
    Ok(opts)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-6)
}

fn time_sh(script: &str) -> Result<Duration, String> {
    let t = Instant::now();
    let st = Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .status()
        .map_err(|e| format!("{script}: {e}"))?;
    if !st.success() {
        return Err(format!("{script}: {st}"));
    }
    Ok(t.elapsed())
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// CPU seconds (user and system) of this process and its waited-for children so far.
fn cpu_secs() -> f64 {
    let of = |who| {
        // SAFETY: getrusage writes into the zeroed struct we pass; no other memory is touched.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    of(libc::RUSAGE_SELF) + of(libc::RUSAGE_CHILDREN)
}

/// Peak resident set size in KiB (Linux reports ru_maxrss in KiB).
fn max_rss_kib(who: i32) -> i64 {
    // SAFETY: getrusage writes into the zeroed struct we pass; no other memory is touched.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    ru.ru_maxrss
}
