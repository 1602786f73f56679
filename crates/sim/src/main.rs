//! `dvault-sim`: makes a simulated Discourse forum's daily backups.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use dvault_sim::{Format, Generation, Options, Size};

/// Simulate a Discourse forum for some days and write its backups the way Discourse does.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Folder for the backup files (and manifest.json).
    #[arg(long)]
    out: PathBuf,
    /// PRNG seed; the same seed gives the same forum and backups.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Days to simulate after day 0 (one backup set per day, day 0 included).
    #[arg(long, default_value_t = 0)]
    days: u32,
    /// Size of day 0: small (a few MB), medium (~150 MB dump), large (~1 GB dump).
    #[arg(long, default_value = "small")]
    size: String,
    /// Override the number of users.
    #[arg(long)]
    users: Option<u32>,
    /// Override the number of topics.
    #[arg(long)]
    topics: Option<u32>,
    /// Override the number of posts.
    #[arg(long)]
    posts: Option<u32>,
    /// Override the number of uploads.
    #[arg(long)]
    uploads: Option<u32>,
    /// Comma-separated formats: a (.tar.gz), sql (.sql.gz), b (.tar). Default: those of
    /// --generation, or a,sql,b without it.
    #[arg(long, value_delimiter = ',')]
    formats: Option<Vec<Format>>,
    /// Discourse generation to imitate: current (.tar with a directory dump, names with the
    /// dashed Discourse version) or older (.tar.gz and .sql.gz, names with the migration only).
    #[arg(long)]
    generation: Option<Generation>,
    /// Discourse::VERSION::STRING for current-generation names (dots become dashes).
    #[arg(long, default_value = "2026.1.0-latest")]
    discourse_version: String,
    /// Database-only backups in the current generation: the .tar holds only db/
    /// (Discourse's backup_with_uploads off).
    #[arg(long)]
    without_uploads: bool,
    /// Keep uploads/default/optimized (thumbnails) in backups (include_thumbnails_in_backups).
    #[arg(long)]
    include_thumbnails: bool,
    /// Store uploads on S3: upload rows get S3 URLs, files sit in a stand-in bucket folder.
    #[arg(long)]
    s3_uploads: bool,
    /// Download S3-stored uploads into backups (include_s3_uploads_in_backups).
    #[arg(long)]
    include_s3_uploads: bool,
    /// S3 upload bucket named in upload URLs.
    #[arg(long, default_value = "forum-uploads")]
    s3_bucket: String,
    /// S3 region named in upload URLs.
    #[arg(long, default_value = "us-east-1")]
    s3_region: String,
    /// pg_dump --jobs of current-generation dumps (backup_database_concurrency).
    #[arg(long, default_value_t = 1)]
    pg_dump_jobs: u32,
    /// Site name that starts the file names.
    #[arg(long, default_value = "forum")]
    site: String,
    /// Day 0 as YYYY-MM-DD.
    #[arg(long, default_value = "2026-01-01")]
    start_date: String,
    /// Multiplier of the daily change (1.0 ≈ 1–2 % of rows).
    #[arg(long, default_value_t = 1.0)]
    churn: f64,
    /// gzip level of format A's outer gzip.
    #[arg(long, default_value_t = 5)]
    gzip_level: u32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut size = Size::named(&args.size)?;
    size.users = args.users.unwrap_or(size.users);
    size.topics = args.topics.unwrap_or(size.topics);
    size.posts = args.posts.unwrap_or(size.posts);
    size.uploads = args.uploads.unwrap_or(size.uploads);
    let date: Vec<&str> = args.start_date.split('-').collect();
    let start_date = match date.as_slice() {
        [y, m, d] => (y.parse()?, m.parse()?, d.parse()?),
        _ => anyhow::bail!("--start-date {:?} is not YYYY-MM-DD", args.start_date),
    };
    let formats = match (args.formats, args.generation) {
        (Some(f), Some(g)) => {
            if let Some(other) = f.iter().find(|&&f| Generation::of(f) != g) {
                anyhow::bail!(
                    "format {other:?} is not written by the {g:?} generation (it writes {:?})",
                    g.formats()
                );
            }
            f
        }
        (Some(f), None) => f,
        (None, Some(g)) => g.formats().to_vec(),
        (None, None) => vec![Format::A, Format::Sql, Format::B],
    };
    let opts = Options {
        seed: args.seed,
        size,
        days: args.days,
        formats,
        discourse_version: args.discourse_version,
        with_uploads: !args.without_uploads,
        include_thumbnails: args.include_thumbnails,
        uploads_on_s3: args.s3_uploads,
        include_s3_uploads: args.include_s3_uploads,
        s3_bucket: args.s3_bucket,
        s3_region: args.s3_region,
        pg_dump_jobs: args.pg_dump_jobs,
        site: args.site,
        start_date,
        churn: args.churn,
        gzip_level: args.gzip_level,
    };
    let started = Instant::now();
    let files = dvault_sim::generate_with(&opts, &args.out, |day, files| {
        for f in files {
            eprintln!(
                "day {day:3} {:>12} bytes  {}  ({:.0} s)",
                f.size,
                f.path.display(),
                started.elapsed().as_secs_f64()
            );
        }
    })?;
    eprintln!(
        "{} files in {} in {:.1} s",
        files.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
