//! The simulated forum: a Discourse-like database in a throwaway PostgreSQL cluster plus its
//! `uploads/default` folder, filled on day 0 and changed a little every following day the way a
//! live forum changes (hot columns: `users.last_seen_at`, `user_stats` counters, topic counters,
//! `topic_users`, post edits; new rows everywhere; a few deletions).
//!
//! Every value comes from ChaCha8 streams derived from the seed, the day and the object's id, and
//! the database is only changed by the statements we send (autovacuum is off, a plain `VACUUM`
//! ends each day), so one seed gives one forum.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dvault_pg::TempCluster;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::copy::days_from_civil;
use crate::{schema, text, Options};

mod churn;
mod day0;
mod rows;
mod uploads;

use rows::SITE_SETTINGS;
pub use uploads::{set_mtime, upload_path};

/// Name of the simulated forum's database (Discourse's default).
pub const DATABASE: &str = "discourse";

const MICROS_PER_DAY: i64 = 86_400_000_000;
const HISTORY_DAYS: i64 = 3 * 365;
const CATEGORIES: u32 = 12;

// Independent PRNG streams, so adding draws to one part leaves the others unchanged.
const S_PLAN: u64 = 1;
const S_POST: u64 = 2;
const S_EDIT: u64 = 3;
const S_TITLE: u64 = 4;
const S_USER: u64 = 5;
const S_DAY: u64 = 6;
const S_UPLOAD: u64 = 7;
const S_ROWS: u64 = 8;

/// A PRNG for `(seed, stream, key)`.
pub(crate) fn rng_for(seed: u64, stream: u64, key: u64) -> ChaCha8Rng {
    let mut x = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = splitmix(x) ^ key;
    ChaCha8Rng::seed_from_u64(splitmix(x))
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A number in `1..=n` biased to the low end (old users and topics are the busy ones).
fn skewed<R: Rng>(rng: &mut R, n: u32) -> u32 {
    let r: f64 = rng.random();
    1 + ((n as f64) * r * r) as u32 % n.max(1)
}

/// A number in `1..=n` biased to the high end (recent topics get the replies).
fn recent<R: Rng>(rng: &mut R, n: u32) -> u32 {
    n + 1 - skewed(rng, n)
}

fn count(base: u32, fraction: f64, churn: f64) -> u32 {
    ((base as f64) * fraction * churn).round().max(1.0) as u32
}

#[derive(Clone, Debug)]
struct TopicMeta {
    user_id: u32,
    highest_post_number: u32,
    pm: bool,
}

#[derive(Clone, Debug)]
struct PostMeta {
    topic_id: u32,
    post_number: u32,
    user_id: u32,
    version: u32,
    deleted: bool,
}

/// One row of `uploads` as the simulator remembers it.
#[derive(Clone, Debug)]
pub struct UploadMeta {
    /// `uploads.id`.
    pub id: u32,
    /// `uploads.sha1` (random for secure re-uploads, as Discourse does).
    pub sha1: String,
    /// SHA-1 of the file's content (`original_sha1` for secure uploads).
    pub content_sha1: String,
    /// Path below `uploads/default/`, e.g. `original/1X/<sha1>.png`.
    pub path: String,
    /// Size in bytes.
    pub filesize: u64,
    /// Pixel width and height.
    pub dims: (u32, u32),
    /// The post that shows it.
    pub post_id: u32,
}

/// Counters of one simulated day, for logs and tests.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DayStats {
    /// New users.
    pub new_users: u32,
    /// Users whose `last_seen_at` and `user_stats` changed.
    pub active_users: u32,
    /// New topics.
    pub new_topics: u32,
    /// New posts (including the first posts of new topics).
    pub new_posts: u32,
    /// Edited posts (each with a new `post_revisions` row).
    pub edits: u32,
    /// Likes given.
    pub likes: u32,
    /// Soft-deleted posts.
    pub deletions: u32,
    /// New uploads (of which some are duplicates of existing files).
    pub new_uploads: u32,
    /// New uploads whose content was already uploaded before.
    pub duplicate_uploads: u32,
}

/// The forum: its database cluster, its uploads folder and what the simulator tracks of it.
pub struct Forum {
    opts: Options,
    cluster: TempCluster,
    work: PathBuf,
    day: u32,
    users: u32,
    topics: Vec<TopicMeta>,
    posts: Vec<PostMeta>,
    uploads: Vec<UploadMeta>,
    post_upload: HashMap<u32, u32>,
    pm_users: HashMap<u32, Vec<u32>>,
    topic_users: HashMap<(u32, u32), u32>,
    next_topic_user: u32,
    next_notification: u32,
    next_user_action: u32,
    next_revision: u32,
    next_allowed_user: u32,
    next_email: u32,
    next_upload_ref: u32,
    migrations: Vec<String>,
}

impl Forum {
    /// Starts a cluster, creates the schema and fills day 0; uploads go below `work`.
    pub fn create(opts: &Options, work: &Path) -> Result<Forum> {
        let cluster = TempCluster::start().context("starting PostgreSQL for the simulator")?;
        cluster.create_database(DATABASE)?;
        cluster
            .psql(DATABASE, schema::DDL)
            .context("creating the forum schema")?;
        std::fs::create_dir_all(work.join("public/uploads/default"))
            .with_context(|| format!("creating {}", work.display()))?;
        if opts.uploads_on_s3 {
            let bucket = work.join("s3").join(&opts.s3_bucket);
            std::fs::create_dir_all(&bucket)
                .with_context(|| format!("creating {}", bucket.display()))?;
        }
        let mut forum = Forum {
            opts: opts.clone(),
            cluster,
            work: work.to_path_buf(),
            day: 0,
            users: 0,
            topics: Vec::new(),
            posts: Vec::new(),
            uploads: Vec::new(),
            post_upload: HashMap::new(),
            pm_users: HashMap::new(),
            topic_users: HashMap::new(),
            next_topic_user: 1,
            next_notification: 1,
            next_user_action: 1,
            next_revision: 1,
            next_allowed_user: 1,
            next_email: 1,
            next_upload_ref: 1,
            migrations: Vec::new(),
        };
        forum.fill_day0()?;
        Ok(forum)
    }

    /// The cluster holding the forum's database ([`DATABASE`]).
    pub fn cluster(&self) -> &TempCluster {
        &self.cluster
    }

    /// The current simulated day (0 after [`Forum::create`]).
    pub fn day(&self) -> u32 {
        self.day
    }

    /// The options the forum was made with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The folder standing in for Discourse's `public/` (holds `uploads/default`).
    pub fn public_dir(&self) -> PathBuf {
        self.work.join("public")
    }

    /// Where the upload files are: `public/uploads/default`, or with uploads on S3 the folder
    /// standing in for the bucket (keys `original/1X/<sha1>.<ext>`, as a single site's S3
    /// store writes them: `lib/file_store/s3_store.rb` prefixes `uploads/<db>/` only on
    /// multisite). [`UploadMeta::path`] is relative to it.
    pub fn upload_root(&self) -> PathBuf {
        if self.opts.uploads_on_s3 {
            self.work.join("s3").join(&self.opts.s3_bucket)
        } else {
            self.public_dir().join("uploads/default")
        }
    }

    /// The `uploads.url` of an upload: `/uploads/default/<path>` for the local store, or
    /// `//<bucket>.s3.dualstack.<region>.amazonaws.com/<path>` on S3: Discourse's
    /// `app/models/site_setting.rb` (`Upload.absolute_base_url`, AWS endpoint outside China),
    /// joined with the key by `lib/file_store/s3_store.rb` (`store_file`).
    pub fn upload_url(&self, up: &UploadMeta) -> String {
        if self.opts.uploads_on_s3 {
            format!(
                "//{}.s3.dualstack.{}.amazonaws.com/{}",
                self.opts.s3_bucket, self.opts.s3_region, up.path
            )
        } else {
            format!("/uploads/default/{}", up.path)
        }
    }

    /// The simulator's scratch folder.
    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    /// The uploads known to the database.
    pub fn uploads(&self) -> &[UploadMeta] {
        &self.uploads
    }

    /// The newest migration version (`-v<migration>` in backup file names).
    pub fn migration(&self) -> &str {
        self.migrations.last().map(String::as_str).unwrap_or("0")
    }

    /// Microseconds since the epoch of midnight (UTC) starting simulated day `day`.
    pub fn midnight(&self, day: u32) -> i64 {
        let (y, m, d) = self.opts.start_date;
        (days_from_civil(y, m, d) + day as i64) * MICROS_PER_DAY
    }

    /// Row counts of every table, from the database.
    pub fn row_counts(&self) -> Result<BTreeMap<String, u64>> {
        row_counts(&self.cluster, DATABASE)
    }

    fn username(&self, id: u32) -> String {
        text::username(&mut rng_for(self.opts.seed, S_USER, id as u64), id)
    }

    fn title(&self, topic_id: u32) -> String {
        text::title(&mut rng_for(self.opts.seed, S_TITLE, topic_id as u64))
    }

    /// The body of a post at a version: the original text plus one short edit per later version.
    fn post_body(&self, post_id: u32, version: u32) -> text::Body {
        let upload = self.post_upload.get(&post_id).map(|&u| {
            let up = &self.uploads[u as usize - 1];
            let ext = up.path.rsplit('.').next().unwrap_or("png");
            (
                format!("upload://{}.{ext}", &up.sha1[..27]),
                self.upload_url(up),
            )
        });
        let mut rng = rng_for(self.opts.seed, S_POST, post_id as u64);
        let mut body = text::body(
            &mut rng,
            upload.as_ref().map(|(s, u)| (s.as_str(), u.as_str())),
        );
        for v in 2..=version {
            let mut rng = rng_for(self.opts.seed, S_EDIT, ((post_id as u64) << 16) | v as u64);
            let s = text::sentence(&mut rng, 3, 14);
            body.words += s.split(' ').count() as u32 + 1;
            body.raw.push_str("\n\nEdit: ");
            body.raw.push_str(&s);
            body.cooked.push_str("\n<p>Edit: ");
            body.cooked.push_str(&s);
            body.cooked.push_str("</p>");
        }
        body
    }

    fn stream(&self) -> Result<Loader> {
        Ok(Loader {
            session: self.cluster.psql_session(DATABASE)?,
            buf: String::with_capacity(1 << 20),
        })
    }
}

impl Forum {
    fn set_sequences(&self, ld: &mut Loader) -> Result<()> {
        let seqs = [
            ("site_settings_id_seq", SITE_SETTINGS.len() as u32),
            ("users_id_seq", self.users),
            ("user_emails_id_seq", self.next_email - 1),
            ("categories_id_seq", CATEGORIES),
            ("topics_id_seq", self.topics.len() as u32),
            ("topic_users_id_seq", self.next_topic_user - 1),
            ("topic_allowed_users_id_seq", self.next_allowed_user - 1),
            ("posts_id_seq", self.posts.len() as u32),
            ("post_revisions_id_seq", self.next_revision - 1),
            ("uploads_id_seq", self.uploads.len() as u32),
            ("upload_references_id_seq", self.next_upload_ref - 1),
            ("notifications_id_seq", self.next_notification - 1),
            ("user_actions_id_seq", self.next_user_action - 1),
        ];
        for (seq, v) in seqs {
            ld.sql(&format!(
                "SELECT setval('{seq}', {}, {});\n",
                v.max(1),
                v > 0
            ))?;
        }
        Ok(())
    }
}

/// Row counts of the simulator's tables in database `db` of `cluster` (for comparing a restored
/// copy with the source).
pub fn row_counts(cluster: &TempCluster, db: &str) -> Result<BTreeMap<String, u64>> {
    let sql: Vec<String> = schema::TABLES
        .iter()
        .map(|t| format!("SELECT '{t}', count(*) FROM public.{t};"))
        .collect();
    let out = cluster
        .psql(db, &sql.join("\n"))
        .with_context(|| format!("counting rows in database {db}"))?;
    let mut counts = BTreeMap::new();
    for line in out.lines() {
        if let Some((t, n)) = line.split_once('|') {
            let n = n
                .trim()
                .parse()
                .with_context(|| format!("row count of {t} in {db}: {n:?}"))?;
            counts.insert(t.to_string(), n);
        }
    }
    Ok(counts)
}

/// Streams SQL and COPY data into one `psql` session.
struct Loader {
    session: dvault_pg::PsqlSession,
    buf: String,
}

impl Loader {
    fn sql(&mut self, s: &str) -> Result<()> {
        self.buf.push_str(s);
        self.maybe_flush()
    }

    fn copy(&mut self, target: &str) -> Result<()> {
        self.buf.push_str("COPY ");
        self.buf.push_str(target);
        self.buf.push_str(" FROM stdin;\n");
        Ok(())
    }

    fn end_copy(&mut self) -> Result<()> {
        self.buf.push_str("\\.\n");
        self.maybe_flush()
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.session
            .write_all(self.buf.as_bytes())
            .context("writing to psql (see its error below when it finishes)")?;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<String> {
        let wrote = self.flush();
        let out = self.session.finish();
        match (wrote, out) {
            (_, Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(e),
            (Ok(()), Ok(s)) => Ok(s),
        }
    }
}
