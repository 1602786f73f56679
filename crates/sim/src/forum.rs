//! The simulated forum: a Discourse-like database in a throwaway PostgreSQL cluster plus its
//! `uploads/default` folder, filled on day 0 and changed a little every following day the way a
//! live forum changes (hot columns: `users.last_seen_at`, `user_stats` counters, topic counters,
//! `topic_users`, post edits; new rows everywhere; a few deletions).
//!
//! Every value comes from ChaCha8 streams derived from the seed, the day and the object's id, and
//! the database is only changed by the statements we send (autovacuum is off, a plain `VACUUM`
//! ends each day), so one seed gives one forum.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dvault_core::postgres::TempCluster;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha1::{Digest, Sha1};

use crate::copy::{days_from_civil, lit, timestamp, Row};
use crate::{images, schema, text, Options};

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
                format!("/uploads/default/{}", up.path),
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

    // ---------------------------------------------------------------- day 0

    fn fill_day0(&mut self) -> Result<()> {
        let size = self.opts.size.clone();
        let seed = self.opts.seed;
        let mut plan = rng_for(seed, S_PLAN, 0);
        let mut rows = rng_for(seed, S_ROWS, 0);
        let now = self.midnight(0);
        let history = HISTORY_DAYS * MICROS_PER_DAY;
        let start = now - history;
        let n_users = size.users.max(2);
        let n_topics = size.topics.max(1);
        let n_posts = size.posts.max(n_topics);
        self.users = n_users;

        // Users join at an even pace over the forum's history.
        let user_created = |id: u32| start + (history / 2) * (id as i64 - 1) / n_users as i64;

        // Topics and how many posts each gets (popular topics are long).
        let mut per_topic = vec![1u32; n_topics as usize];
        for _ in n_topics..n_posts {
            let t = skewed(&mut plan, n_topics);
            per_topic[t as usize - 1] += 1;
        }
        let mut topic_created = Vec::with_capacity(n_topics as usize);
        for t in 1..=n_topics {
            let pm = plan.random_ratio(1, 12);
            let base = start + history / 2 + (history / 2) * (t as i64 - 1) / n_topics as i64;
            let user_id = skewed(&mut plan, n_users);
            topic_created.push(base.max(user_created(user_id) + 60_000_000));
            if pm {
                let mut members = vec![user_id];
                for _ in 0..plan.random_range(1..3) {
                    let u = skewed(&mut plan, n_users);
                    if !members.contains(&u) {
                        members.push(u);
                    }
                }
                self.pm_users.insert(t, members);
            }
            self.topics.push(TopicMeta {
                user_id,
                highest_post_number: per_topic[t as usize - 1],
                pm,
            });
        }
        // Posts, topic by topic.
        let mut post_created = Vec::with_capacity(n_posts as usize);
        let mut like_counts = Vec::with_capacity(n_posts as usize);
        for t in 1..=n_topics {
            let meta = self.topics[t as usize - 1].clone();
            let mut at = topic_created[t as usize - 1];
            for n in 1..=meta.highest_post_number {
                let user_id = if n == 1 {
                    meta.user_id
                } else if let Some(m) = self.pm_users.get(&t) {
                    m[plan.random_range(0..m.len())]
                } else {
                    skewed(&mut plan, n_users)
                };
                if n > 1 {
                    at += plan.random_range(60_000_000i64..3 * MICROS_PER_DAY / 2);
                }
                let at = at.min(now - 3_600_000_000);
                let version = if plan.random_ratio(1, 30) { 2 } else { 1 };
                self.posts.push(PostMeta {
                    topic_id: t,
                    post_number: n,
                    user_id,
                    version,
                    deleted: n > 1 && plan.random_ratio(1, 200),
                });
                post_created.push(at);
                let likes: u32 = if plan.random_ratio(1, 3) {
                    plan.random_range(1..6)
                } else {
                    0
                };
                like_counts.push(likes);
            }
        }
        // Uploads, each shown in one post.
        for i in 1..=size.uploads {
            let post_id = plan.random_range(1..=self.posts.len() as u32);
            let dup = i > 4 && plan.random_ratio(1, 20);
            let created = post_created[post_id as usize - 1];
            self.add_upload(i, post_id, created, dup)?;
            self.post_upload.entry(post_id).or_insert(i);
        }

        let mut ld = self.stream()?;
        ld.sql("BEGIN;\n")?;

        // schema_migrations: Discourse has thousands; invent the older ones around the base list.
        let mut versions: BTreeSet<String> = schema::BASE_MIGRATIONS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let newest: String = schema::BASE_MIGRATIONS
            .last()
            .copied()
            .unwrap_or("0")
            .into();
        while versions.len() < 1200 {
            let y = plan.random_range(2013..2025);
            let v = format!(
                "{y}{:02}{:02}{:02}{:02}{:02}",
                plan.random_range(1..13),
                plan.random_range(1..29),
                plan.random_range(0..24),
                plan.random_range(0..60),
                plan.random_range(0..60)
            );
            if v < newest {
                versions.insert(v);
            }
        }
        ld.copy("schema_migrations (version)")?;
        for v in &versions {
            Row::new(&mut ld.buf).s(v).end();
            ld.maybe_flush()?;
        }
        ld.end_copy()?;
        self.migrations = versions.into_iter().collect();

        ld.copy("site_settings (id, name, data_type, value, created_at, updated_at)")?;
        for (i, (name, ty, value)) in SITE_SETTINGS.iter().enumerate() {
            let t = start + (i as i64) * MICROS_PER_DAY;
            Row::new(&mut ld.buf)
                .n(i + 1)
                .s(name)
                .n(ty)
                .s(value)
                .ts(t)
                .ts(t)
                .end();
        }
        ld.end_copy()?;

        // Per-user aggregates for users and user_stats.
        let mut post_count = vec![0u32; n_users as usize + 1];
        let mut topic_count = vec![0u32; n_users as usize + 1];
        let mut first_post = vec![None::<i64>; n_users as usize + 1];
        let mut last_post = vec![None::<i64>; n_users as usize + 1];
        let mut likes_received = vec![0u32; n_users as usize + 1];
        for (i, p) in self.posts.iter().enumerate() {
            let u = p.user_id as usize;
            post_count[u] += 1;
            if p.post_number == 1 {
                topic_count[u] += 1;
            }
            let at = post_created[i];
            first_post[u] = Some(first_post[u].map_or(at, |f: i64| f.min(at)));
            last_post[u] = Some(last_post[u].map_or(at, |f: i64| f.max(at)));
            likes_received[u] += like_counts[i];
        }

        ld.copy(
            "users (id, username, created_at, updated_at, name, seen_notification_id, \
             last_posted_at, password_hash, salt, active, username_lower, last_seen_at, admin, \
             last_emailed_at, trust_level, approved, previous_visit_at, views, ip_address, \
             moderator, uploaded_avatar_id, registration_ip_address, first_seen_at)",
        )?;
        for id in 1..=n_users {
            let created = user_created(id);
            let seen = (last_post[id as usize].unwrap_or(created)
                + rows.random_range(0..20 * MICROS_PER_DAY))
            .min(now - 60_000_000);
            self.user_row(
                &mut ld.buf,
                &mut rows,
                id,
                created,
                seen,
                last_post[id as usize],
            );
            ld.maybe_flush()?;
        }
        ld.end_copy()?;
        ld.copy("user_emails (id, user_id, email, \"primary\", created_at, updated_at, normalized_email)")?;
        for id in 1..=n_users {
            self.email_row(&mut ld.buf, id, user_created(id));
            ld.maybe_flush()?;
        }
        ld.end_copy()?;
        ld.copy(
            "user_profiles (user_id, location, website, bio_raw, bio_cooked, bio_cooked_version, views)",
        )?;
        for id in 1..=n_users {
            profile_row(&mut ld.buf, &mut rows, id);
            ld.maybe_flush()?;
        }
        ld.end_copy()?;
        ld.copy(USER_STATS_COLUMNS)?;
        for id in 1..=n_users {
            let u = id as usize;
            let created = user_created(id);
            Row::new(&mut ld.buf)
                .n(id)
                .n(rows.random_range(0..400u32) + topic_count[u] * 3)
                .n(rows.random_range(0..200_000u32))
                .n(rows.random_range(1..300u32))
                .n(rows.random_range(0..5_000u32) + post_count[u] * 4)
                .n(rows.random_range(0..40u32))
                .n(likes_received[u])
                .ts(created)
                .ots(first_post[u])
                .n(post_count[u])
                .n(topic_count[u])
                .ts(created)
                .ts(created)
                .n(rows.random_range(0..20u32))
                .n(0)
                .end();
            ld.maybe_flush()?;
        }
        ld.end_copy()?;

        ld.copy(
            "categories (id, name, color, topic_count, created_at, updated_at, user_id, slug, \
             description, position, post_count)",
        )?;
        let mut cat_topics = [0u32; CATEGORIES as usize];
        for (t, m) in self.topics.iter().enumerate() {
            if !m.pm {
                cat_topics[t % CATEGORIES as usize] += 1;
            }
        }
        for c in 1..=CATEGORIES {
            let name = format!("{} {}", text::word(&mut rows), c);
            Row::new(&mut ld.buf)
                .n(c)
                .s(&name)
                .s(&format!("{:06X}", rows.random_range(0..0xFF_FFFFu32)))
                .n(cat_topics[c as usize - 1])
                .ts(start)
                .ts(start)
                .n(1)
                .s(&text::slug(&name))
                .s(&text::sentence(&mut rows, 5, 15))
                .n(c)
                .n(cat_topics[c as usize - 1] * 10)
                .end();
        }
        ld.end_copy()?;

        // Topics.
        let mut first_post_of = Vec::with_capacity(n_topics as usize);
        let mut next = 1u32;
        for m in &self.topics {
            first_post_of.push(next);
            next += m.highest_post_number;
        }
        ld.copy(TOPIC_COLUMNS)?;
        for t in 1..=n_topics {
            let m = &self.topics[t as usize - 1];
            let first = first_post_of[t as usize - 1] as usize - 1;
            let last = first + m.highest_post_number as usize - 1;
            let likes: u32 = like_counts[first..=last].iter().sum();
            let participants: BTreeSet<u32> =
                self.posts[first..=last].iter().map(|p| p.user_id).collect();
            let title = self.title(t);
            let r = TopicRow {
                id: t,
                title: &title,
                created: topic_created[t as usize - 1],
                last_posted: post_created[last],
                views: rows.random_range(1..50u32) * m.highest_post_number,
                posts_count: m.highest_post_number,
                user_id: m.user_id,
                last_post_user_id: self.posts[last].user_id,
                like_count: likes,
                category: (!m.pm).then_some((t - 1) % CATEGORIES + 1),
                pm: m.pm,
                participants: participants.len() as u32,
                word_count: m.highest_post_number * 60,
                excerpt: text::sentence(&mut rows, 8, 25),
            };
            r.write(&mut ld.buf);
            ld.maybe_flush()?;
        }
        ld.end_copy()?;

        // topic_users: posters and some readers of every topic.
        ld.copy(TOPIC_USER_COLUMNS)?;
        for t in 1..=n_topics {
            let m = self.topics[t as usize - 1].clone();
            let first = first_post_of[t as usize - 1] as usize - 1;
            let last = first + m.highest_post_number as usize - 1;
            let mut seen: BTreeMap<u32, (bool, u32, i64)> = BTreeMap::new();
            for (i, p) in self.posts[first..=last].iter().enumerate() {
                let e =
                    seen.entry(p.user_id)
                        .or_insert((true, p.post_number, post_created[first + i]));
                e.1 = p.post_number;
            }
            if !m.pm {
                for _ in 0..rows.random_range(0..4u32) {
                    let u = skewed(&mut rows, n_users);
                    seen.entry(u).or_insert((
                        false,
                        rows.random_range(1..=m.highest_post_number),
                        post_created[first],
                    ));
                }
            }
            for (u, (posted, read, first_visit)) in seen {
                let id = self.next_topic_user;
                self.next_topic_user += 1;
                self.topic_users.insert((t, u), id);
                Row::new(&mut ld.buf)
                    .n(u)
                    .n(t)
                    .b(posted)
                    .n(read)
                    .ts(post_created[last].max(first_visit))
                    .ts(first_visit)
                    .n(if posted { 3 } else { 1 })
                    .n(rows.random_range(1_000..900_000u32))
                    .n(id)
                    .b(rows.random_ratio(1, 5))
                    .b(rows.random_ratio(1, 40))
                    .ots(posted.then_some(first_visit))
                    .end();
                ld.maybe_flush()?;
            }
        }
        ld.end_copy()?;

        ld.copy("topic_allowed_users (id, user_id, topic_id, created_at, updated_at)")?;
        let mut pms: Vec<(&u32, &Vec<u32>)> = self.pm_users.iter().collect();
        pms.sort();
        let mut next_allowed = self.next_allowed_user;
        for (&t, members) in pms {
            for &u in members {
                let at = topic_created[t as usize - 1];
                Row::new(&mut ld.buf)
                    .n(next_allowed)
                    .n(u)
                    .n(t)
                    .ts(at)
                    .ts(at)
                    .end();
                next_allowed += 1;
            }
        }
        self.next_allowed_user = next_allowed;
        ld.end_copy()?;

        // Posts.
        ld.copy(POST_COLUMNS)?;
        for i in 0..self.posts.len() {
            let p = self.posts[i].clone();
            let id = i as u32 + 1;
            let body = self.post_body(id, p.version);
            let created = post_created[i];
            let edited = (p.version > 1).then(|| (created + 3_600_000_000).min(now - 1));
            PostRow {
                id,
                meta: &p,
                body: &body,
                created,
                updated: edited.unwrap_or(created),
                like_count: like_counts[i],
                reads: rows.random_range(1..200u32),
                deleted_at: p.deleted.then(|| created + MICROS_PER_DAY),
            }
            .write(&mut ld.buf);
            ld.maybe_flush()?;
        }
        ld.end_copy()?;

        ld.copy(REVISION_COLUMNS)?;
        for (i, &created) in post_created.iter().enumerate() {
            let p = &self.posts[i];
            if p.version < 2 {
                continue;
            }
            let at = (created + 3_600_000_000).min(now - 1);
            let (id, user) = (i as u32 + 1, p.user_id);
            let row = self.revision_row(id, user, 2, at);
            self.next_revision += 1;
            ld.buf.push_str(&row);
            ld.maybe_flush()?;
        }
        ld.end_copy()?;

        ld.copy(UPLOAD_COLUMNS)?;
        let upload_posts: BTreeMap<u32, u32> =
            self.uploads.iter().map(|u| (u.id, u.post_id)).collect();
        for up in self.uploads.clone() {
            let post = up.post_id;
            let created = post_created[post as usize - 1];
            self.upload_row(
                &mut ld.buf,
                &mut rows,
                &up,
                self.posts[post as usize - 1].user_id,
                created,
                post,
            );
        }
        ld.end_copy()?;
        ld.copy(
            "upload_references (id, upload_id, target_type, target_id, created_at, updated_at)",
        )?;
        for (&u, &p) in &upload_posts {
            let at = post_created[p as usize - 1];
            Row::new(&mut ld.buf)
                .n(self.next_upload_ref)
                .n(u)
                .s("Post")
                .n(p)
                .ts(at)
                .ts(at)
                .end();
            self.next_upload_ref += 1;
        }
        ld.end_copy()?;

        // Notifications (replies to topic owners, likes) and user_actions (posts, likes).
        ld.copy(NOTIFICATION_COLUMNS)?;
        for i in 0..self.posts.len() {
            let p = self.posts[i].clone();
            let owner = self.topics[p.topic_id as usize - 1].user_id;
            let at = post_created[i];
            if p.post_number > 1 && p.user_id != owner {
                let row = self.notification_row(
                    2,
                    owner,
                    &p,
                    i as u32 + 1,
                    at,
                    at < now - 30 * MICROS_PER_DAY || rows.random_bool(0.5),
                );
                ld.buf.push_str(&row);
            }
            if like_counts[i] > 0 {
                let row = self.notification_row(
                    5,
                    p.user_id,
                    &p,
                    i as u32 + 1,
                    at + 600_000_000,
                    rows.random_bool(0.8),
                );
                ld.buf.push_str(&row);
            }
            ld.maybe_flush()?;
        }
        ld.end_copy()?;
        ld.copy(USER_ACTION_COLUMNS)?;
        for i in 0..self.posts.len() {
            let p = self.posts[i].clone();
            let at = post_created[i];
            let kind = if p.post_number == 1 { 4 } else { 5 };
            self.user_action_row(
                &mut ld.buf,
                kind,
                p.user_id,
                &p,
                i as u32 + 1,
                p.user_id,
                at,
            );
            for _ in 0..like_counts[i] {
                let liker = skewed(&mut rows, n_users);
                let at = at + rows.random_range(0..MICROS_PER_DAY);
                self.user_action_row(&mut ld.buf, 1, liker, &p, i as u32 + 1, liker, at);
                self.user_action_row(&mut ld.buf, 2, p.user_id, &p, i as u32 + 1, liker, at);
            }
            ld.maybe_flush()?;
        }
        ld.end_copy()?;

        self.set_sequences(&mut ld)?;
        ld.sql("COMMIT;\nVACUUM ANALYZE;\n")?;
        ld.finish().context("loading day 0 of the forum")?;
        Ok(())
    }

    fn user_row<R: Rng>(
        &self,
        buf: &mut String,
        rng: &mut R,
        id: u32,
        created: i64,
        seen: i64,
        last_posted: Option<i64>,
    ) {
        let username = self.username(id);
        let mut hash = [0u8; 32];
        rng.fill(&mut hash);
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        let ip = format!(
            "{}.{}.{}.{}",
            rng.random_range(1..224u8),
            rng.random::<u8>(),
            rng.random::<u8>(),
            rng.random_range(1..255u8)
        );
        Row::new(buf)
            .n(id)
            .s(&username)
            .ts(created)
            .ts(created)
            .s(&text::display_name(rng))
            .n(0)
            .ots(last_posted)
            .s(&hex::encode(hash))
            .s(&hex::encode(salt))
            .b(true)
            .s(&username.to_lowercase())
            .ts(seen)
            .b(id == 1)
            .ots(rng.random_bool(0.5).then_some(seen - 86_400_000_000))
            .n(rng.random_range(0..4u8))
            .b(false)
            .ts(seen - rng.random_range(MICROS_PER_DAY..30 * MICROS_PER_DAY))
            .n(rng.random_range(0..300u32))
            .s(&ip)
            .b(id <= 3)
            .null()
            .s(&ip)
            .ts(created)
            .end();
    }

    fn email_row(&mut self, buf: &mut String, user: u32, created: i64) {
        let email = format!("{}@example.com", self.username(user).to_lowercase());
        Row::new(buf)
            .n(self.next_email)
            .n(user)
            .s(&email)
            .b(true)
            .ts(created)
            .ts(created)
            .s(&email)
            .end();
        self.next_email += 1;
    }

    fn revision_row(&self, post_id: u32, user: u32, number: u32, at: i64) -> String {
        let old = self.post_body(post_id, number - 1);
        let new = self.post_body(post_id, number);
        // Discourse keeps each changed field as [before, after] in YAML.
        let modifications = format!(
            "---\nraw:\n- {}\n- {}\ncooked:\n- {}\n- {}\n",
            yaml_str(&old.raw),
            yaml_str(&new.raw),
            yaml_str(&old.cooked),
            yaml_str(&new.cooked)
        );
        let mut buf = String::new();
        Row::new(&mut buf)
            .n(self.next_revision)
            .n(user)
            .n(post_id)
            .s(&modifications)
            .n(number)
            .ts(at)
            .ts(at)
            .b(false)
            .end();
        buf
    }

    fn notification_row(
        &mut self,
        kind: u32,
        user: u32,
        p: &PostMeta,
        post_id: u32,
        at: i64,
        read: bool,
    ) -> String {
        let poster = self.username(p.user_id);
        let data = format!(
            "{{\"topic_title\":\"{}\",\"original_post_id\":{post_id},\"original_post_type\":1,\
             \"original_username\":\"{poster}\",\"revision_number\":null,\"display_username\":\"{poster}\"}}",
            self.title(p.topic_id)
        );
        let mut buf = String::new();
        Row::new(&mut buf)
            .n(self.next_notification)
            .n(kind)
            .n(user)
            .s(&data)
            .b(read)
            .ts(at)
            .ts(at)
            .n(p.topic_id)
            .n(p.post_number)
            .null()
            .b(false)
            .end();
        self.next_notification += 1;
        buf
    }

    #[allow(clippy::too_many_arguments)]
    fn user_action_row(
        &mut self,
        buf: &mut String,
        kind: u32,
        user: u32,
        p: &PostMeta,
        post_id: u32,
        acting: u32,
        at: i64,
    ) {
        Row::new(buf)
            .n(self.next_user_action)
            .n(kind)
            .n(user)
            .n(p.topic_id)
            .n(post_id)
            .on((kind == 2).then_some(p.user_id))
            .n(acting)
            .ts(at)
            .ts(at)
            .end();
        self.next_user_action += 1;
    }

    fn upload_row<R: Rng>(
        &self,
        buf: &mut String,
        rng: &mut R,
        up: &UploadMeta,
        user: u32,
        at: i64,
        post: u32,
    ) {
        let secure = up.sha1 != up.content_sha1;
        let ext = up.path.rsplit('.').next().unwrap_or("png");
        let (w, h) = up.dims;
        Row::new(buf)
            .n(up.id)
            .n(user)
            .s(&format!(
                "{}_{}.{ext}",
                text::word(rng),
                rng.random_range(1..10_000u32)
            ))
            .n(up.filesize)
            .n(w)
            .n(h)
            .s(&format!("/uploads/default/{}", up.path))
            .ts(at)
            .ts(at)
            .s(&up.sha1)
            .null()
            .null()
            .s(ext)
            .n(w.min(690))
            .n((h * w.min(690)).checked_div(w).unwrap_or(0))
            .null()
            .b(secure)
            .on(secure.then_some(post))
            .on(secure.then_some(up.content_sha1.as_str()))
            .b(false)
            .n(2)
            .s(&format!("{:06x}", rng.random_range(0..0xFF_FFFFu32)))
            .end();
    }

    /// Makes an image (or, for `dup`, re-uploads an existing file's content as a secure upload
    /// with a random sha1, as Discourse does), writes it below `uploads/default`, and records it.
    fn add_upload(&mut self, id: u32, post_id: u32, created: i64, dup: bool) -> Result<()> {
        let mut rng = rng_for(self.opts.seed, S_UPLOAD, id as u64);
        let root = self.work.join("public/uploads/default");
        let (bytes, ext, content_sha1, sha1, dims) = if dup && !self.uploads.is_empty() {
            let src = self.uploads[rng.random_range(0..self.uploads.len())].clone();
            let bytes = std::fs::read(root.join(&src.path))
                .with_context(|| format!("reading upload {}", src.path))?;
            let ext = src.path.rsplit('.').next().unwrap_or("png").to_string();
            let mut random = [0u8; 20];
            rng.fill(&mut random);
            (
                bytes,
                ext,
                src.content_sha1.clone(),
                hex::encode(random),
                src.dims,
            )
        } else {
            let img = images::random_image(&mut rng, self.opts.size.max_image_side)?;
            let sha = hex::encode(Sha1::digest(&img.bytes));
            // A thumbnail under optimized/, which backups leave out.
            if rng.random_ratio(1, 3) {
                let (tw, th) = (img.width.min(120), img.height.min(120));
                let thumb = images::thumbnail(&mut rng, tw, th)?;
                let p = root.join(upload_path(
                    "optimized",
                    id,
                    &sha,
                    &format!("_2_{tw}x{th}.png"),
                ));
                write_file(&p, &thumb, created)?;
            }
            let dims = (img.width, img.height);
            (img.bytes, img.extension.to_string(), sha.clone(), sha, dims)
        };
        let path = upload_path("original", id, &sha1, &format!(".{ext}"));
        write_file(&root.join(&path), &bytes, created)?;
        self.uploads.push(UploadMeta {
            id,
            sha1,
            content_sha1,
            path,
            filesize: bytes.len() as u64,
            dims,
            post_id,
        });
        Ok(())
    }

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
    session: dvault_core::postgres::PsqlSession,
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

const USER_STATS_COLUMNS: &str = "user_stats (user_id, topics_entered, time_read, days_visited, \
    posts_read_count, likes_given, likes_received, new_since, first_post_created_at, post_count, \
    topic_count, first_unread_at, first_unread_pm_at, distinct_badge_count, draft_count)";
const TOPIC_COLUMNS: &str = "topics (id, title, last_posted_at, created_at, updated_at, views, \
    posts_count, user_id, last_post_user_id, reply_count, highest_post_number, like_count, \
    category_id, bumped_at, archetype, slug, participant_count, word_count, excerpt, fancy_title)";
const TOPIC_USER_COLUMNS: &str = "topic_users (user_id, topic_id, posted, last_read_post_number, \
    last_visited_at, first_visited_at, notification_level, total_msecs_viewed, id, liked, \
    bookmarked, last_posted_at)";
const POST_COLUMNS: &str = "posts (id, user_id, topic_id, post_number, raw, cooked, created_at, \
    updated_at, reply_to_post_number, like_count, reads, sort_order, last_editor_id, \
    last_version_at, word_count, version, public_version, baked_at, baked_version, deleted_at, \
    score)";
const REVISION_COLUMNS: &str =
    "post_revisions (id, user_id, post_id, modifications, number, created_at, updated_at, hidden)";
const UPLOAD_COLUMNS: &str = "uploads (id, user_id, original_filename, filesize, width, height, \
    url, created_at, updated_at, sha1, origin, retain_hours, extension, thumbnail_width, \
    thumbnail_height, etag, secure, access_control_post_id, original_sha1, animated, \
    verification_status, dominant_color)";
const NOTIFICATION_COLUMNS: &str = "notifications (id, notification_type, user_id, data, read, \
    created_at, updated_at, topic_id, post_number, post_action_id, high_priority)";
const USER_ACTION_COLUMNS: &str = "user_actions (id, action_type, user_id, target_topic_id, \
    target_post_id, target_user_id, acting_user_id, created_at, updated_at)";

const SITE_SETTINGS: &[(&str, u32, &str)] = &[
    ("title", 1, "Simulated Forum"),
    ("site_description", 1, "A forum that exists to be backed up"),
    ("contact_email", 14, "admin@example.com"),
    ("notification_email", 14, "noreply@example.com"),
    ("default_locale", 7, "en"),
    ("min_password_length", 3, "10"),
    ("max_image_size_kb", 3, "4096"),
    (
        "authorized_extensions",
        20,
        "jpg|jpeg|png|gif|heic|heif|webp",
    ),
    ("backup_frequency", 3, "1"),
    ("maximum_backups", 3, "5"),
    ("backup_gzip_compression_level_for_uploads", 3, "5"),
    ("include_thumbnails_in_backups", 5, "f"),
    ("automatic_backups_enabled", 5, "t"),
    ("backup_time_of_day", 1, "3:30"),
    ("enable_local_logins", 5, "t"),
    ("login_required", 5, "f"),
    ("must_approve_users", 5, "f"),
    ("allow_uncategorized_topics", 5, "f"),
    ("tl1_requires_read_posts", 3, "30"),
    ("tl2_requires_days_visited", 3, "15"),
    ("max_post_length", 3, "32000"),
    ("secure_uploads", 5, "t"),
    ("enable_s3_uploads", 5, "f"),
    ("purge_unactivated_users_grace_period_days", 3, "14"),
    ("suppress_digest_email_after_days", 3, "365"),
    ("personal_message_enabled_groups", 20, "11"),
    ("chat_enabled", 5, "f"),
    ("top_menu", 8, "latest|new|unread|hot|categories"),
];

/// Path of an upload below `uploads/default/`, as Discourse's file store lays it out: a depth
/// that grows with the id (`1X` up to id 1000, then one hex folder per factor 16).
pub fn upload_path(kind: &str, id: u32, sha1: &str, suffix: &str) -> String {
    let depth = if id as f64 / 1000.0 > 1.0 {
        ((id as f64 / 1000.0).log(16.0)).ceil() as usize
    } else {
        0
    };
    let depth = depth.min(sha1.len());
    let mut p = format!("{kind}/{}X/", depth + 1);
    for c in sha1.chars().take(depth) {
        p.push(c);
        p.push('/');
    }
    p.push_str(sha1);
    p.push_str(suffix);
    p
}

fn write_file(path: &Path, bytes: &[u8], mtime_micros: i64) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    set_mtime(path, mtime_micros / 1_000_000)
}

/// Sets a file's or folder's modification time (seconds since the epoch).
pub fn set_mtime(path: &Path, secs: i64) -> Result<()> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    f.set_modified(t)
        .with_context(|| format!("setting the mtime of {}", path.display()))
}

fn profile_row<R: Rng>(buf: &mut String, rng: &mut R, id: u32) {
    let has_bio = rng.random_ratio(1, 3);
    let bio = has_bio.then(|| text::sentence(rng, 5, 30));
    let mut r = Row::new(buf);
    r.n(id);
    if rng.random_ratio(1, 2) {
        r.s(text::place(rng));
    } else {
        r.null();
    }
    if rng.random_ratio(1, 5) {
        r.s(&format!("https://{}.example.net", text::word(rng)));
    } else {
        r.null();
    }
    match &bio {
        Some(b) => r.s(b).s(&format!("<p>{b}</p>")).n(1),
        None => r.null().null().null(),
    };
    r.n(rng.random_range(0..500u32)).end();
}

fn yaml_str(s: &str) -> String {
    // Double-quoted YAML scalar: escape backslashes, quotes and line breaks.
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct TopicRow<'a> {
    id: u32,
    title: &'a str,
    created: i64,
    last_posted: i64,
    views: u32,
    posts_count: u32,
    user_id: u32,
    last_post_user_id: u32,
    like_count: u32,
    category: Option<u32>,
    pm: bool,
    participants: u32,
    word_count: u32,
    excerpt: String,
}

impl TopicRow<'_> {
    fn write(&self, buf: &mut String) {
        Row::new(buf)
            .n(self.id)
            .s(self.title)
            .ts(self.last_posted)
            .ts(self.created)
            .ts(self.last_posted)
            .n(self.views)
            .n(self.posts_count)
            .n(self.user_id)
            .n(self.last_post_user_id)
            .n(self.posts_count - 1)
            .n(self.posts_count)
            .n(self.like_count)
            .on(self.category)
            .ts(self.last_posted)
            .s(if self.pm {
                "private_message"
            } else {
                "regular"
            })
            .s(&text::slug(self.title))
            .n(self.participants)
            .n(self.word_count)
            .s(&self.excerpt)
            .s(self.title)
            .end();
    }
}

struct PostRow<'a> {
    id: u32,
    meta: &'a PostMeta,
    body: &'a text::Body,
    created: i64,
    updated: i64,
    like_count: u32,
    reads: u32,
    deleted_at: Option<i64>,
}

impl PostRow<'_> {
    fn write(&self, buf: &mut String) {
        let p = self.meta;
        Row::new(buf)
            .n(self.id)
            .n(p.user_id)
            .n(p.topic_id)
            .n(p.post_number)
            .s(&self.body.raw)
            .s(&self.body.cooked)
            .ts(self.created)
            .ts(self.updated)
            .on((p.post_number > 2 && self.id.is_multiple_of(3)).then_some(p.post_number - 1))
            .n(self.like_count)
            .n(self.reads)
            .n(p.post_number)
            .n(p.user_id)
            .ts(self.updated)
            .n(self.body.words)
            .n(p.version)
            .n(p.version)
            .ts(self.updated)
            .n(2)
            .ots(self.deleted_at)
            .n(format!(
                "{}.{}",
                self.like_count * 15 + self.reads / 5,
                self.id % 10
            ))
            .end();
    }
}

// ---------------------------------------------------------------- daily churn

impl Forum {
    /// Simulates one more day of forum life (about `churn` × 1 % of the content changes).
    pub fn next_day(&mut self) -> Result<DayStats> {
        self.day += 1;
        let day = self.day;
        let churn = self.opts.churn;
        let seed = self.opts.seed;
        let mut rng = rng_for(seed, S_DAY, day as u64);
        let mut st = DayStats::default();
        // The day's events happen between 20:00 the day before and 03:00, before the 03:30 backup.
        let t0 = self.midnight(day) - 4 * 3_600_000_000;
        let span = 7 * 3_600_000_000i64;
        let at = |rng: &mut ChaCha8Rng| t0 + rng.random_range(0..span);
        let mut ld = self.stream()?;
        ld.sql("BEGIN;\n")?;

        // New users.
        let n_new_users = count(self.users, 0.002, churn);
        let first_new = self.users + 1;
        self.users += n_new_users;
        st.new_users = n_new_users;
        let mut created_new = Vec::new();
        ld.copy(
            "users (id, username, created_at, updated_at, name, seen_notification_id, \
             last_posted_at, password_hash, salt, active, username_lower, last_seen_at, admin, \
             last_emailed_at, trust_level, approved, previous_visit_at, views, ip_address, \
             moderator, uploaded_avatar_id, registration_ip_address, first_seen_at)",
        )?;
        for id in first_new..=self.users {
            let c = at(&mut rng);
            created_new.push((id, c));
            self.user_row(&mut ld.buf, &mut rng, id, c, c + 600_000_000, None);
        }
        ld.end_copy()?;
        ld.copy("user_emails (id, user_id, email, \"primary\", created_at, updated_at, normalized_email)")?;
        for &(id, c) in &created_new {
            self.email_row(&mut ld.buf, id, c);
        }
        ld.end_copy()?;
        ld.copy("user_profiles (user_id, location, website, bio_raw, bio_cooked, bio_cooked_version, views)")?;
        for &(id, _) in &created_new {
            profile_row(&mut ld.buf, &mut rng, id);
        }
        ld.end_copy()?;
        ld.copy(USER_STATS_COLUMNS)?;
        for &(id, c) in &created_new {
            Row::new(&mut ld.buf)
                .n(id)
                .n(0)
                .n(0)
                .n(1)
                .n(0)
                .n(0)
                .n(0)
                .ts(c)
                .null()
                .n(0)
                .n(0)
                .ts(c)
                .ts(c)
                .n(0)
                .n(0)
                .end();
        }
        ld.end_copy()?;

        // New topics and replies; uploads go into some of today's posts.
        let n_topics = count(self.topics.len() as u32, 0.004, churn);
        let n_replies = count(self.posts.len() as u32, 0.006, churn);
        let mut new_posts: Vec<(u32, i64)> = Vec::new();
        let mut new_topic_ids = Vec::new();
        for _ in 0..n_topics {
            let user_id = skewed(&mut rng, self.users);
            let pm = rng.random_ratio(1, 12);
            self.topics.push(TopicMeta {
                user_id,
                highest_post_number: 0,
                pm,
            });
            let t = self.topics.len() as u32;
            if pm {
                let other = skewed(&mut rng, self.users);
                let members = if other == user_id {
                    vec![user_id]
                } else {
                    vec![user_id, other]
                };
                self.pm_users.insert(t, members);
            }
            new_topic_ids.push(t);
            self.add_post(t, user_id, at(&mut rng), &mut new_posts);
        }
        for _ in 0..n_replies {
            let t = recent(&mut rng, self.topics.len() as u32);
            let user_id = match self.pm_users.get(&t) {
                Some(m) => m[rng.random_range(0..m.len())],
                None => skewed(&mut rng, self.users),
            };
            self.add_post(t, user_id, at(&mut rng), &mut new_posts);
        }
        new_posts.sort_by_key(|&(id, _)| id);
        st.new_topics = n_topics;
        st.new_posts = new_posts.len() as u32;

        // Uploads for today (some are secure re-uploads of content already on disk).
        let n_uploads = count(self.opts.size.uploads, 0.01, churn);
        let mut new_uploads = Vec::new();
        for _ in 0..n_uploads {
            let id = self.uploads.len() as u32 + 1;
            let (post, created) = new_posts[rng.random_range(0..new_posts.len())];
            if self.post_upload.contains_key(&post) {
                continue;
            }
            let dup = rng.random_ratio(1, 10);
            self.add_upload(id, post, created, dup)?;
            if dup {
                st.duplicate_uploads += 1;
            }
            self.post_upload.insert(post, id);
            new_uploads.push((id, post, created));
        }
        st.new_uploads = new_uploads.len() as u32;

        ld.copy(TOPIC_COLUMNS)?;
        for &t in &new_topic_ids {
            let m = self.topics[t as usize - 1].clone();
            let title = self.title(t);
            let created = new_posts
                .iter()
                .find(|&&(p, _)| self.posts[p as usize - 1].topic_id == t)
                .map(|&(_, c)| c)
                .unwrap_or(t0);
            TopicRow {
                id: t,
                title: &title,
                created,
                last_posted: created,
                views: 1,
                posts_count: 1,
                user_id: m.user_id,
                last_post_user_id: m.user_id,
                like_count: 0,
                category: (!m.pm).then_some((t - 1) % CATEGORIES + 1),
                pm: m.pm,
                participants: 1,
                word_count: 60,
                excerpt: text::sentence(&mut rng, 8, 25),
            }
            .write(&mut ld.buf);
        }
        ld.end_copy()?;
        ld.copy("topic_allowed_users (id, user_id, topic_id, created_at, updated_at)")?;
        for &t in &new_topic_ids {
            if let Some(m) = self.pm_users.get(&t).cloned() {
                for u in m {
                    Row::new(&mut ld.buf)
                        .n(self.next_allowed_user)
                        .n(u)
                        .n(t)
                        .ts(t0)
                        .ts(t0)
                        .end();
                    self.next_allowed_user += 1;
                }
            }
        }
        ld.end_copy()?;

        ld.copy(POST_COLUMNS)?;
        for &(id, created) in &new_posts {
            let p = self.posts[id as usize - 1].clone();
            let body = self.post_body(id, 1);
            PostRow {
                id,
                meta: &p,
                body: &body,
                created,
                updated: created,
                like_count: 0,
                reads: 1,
                deleted_at: None,
            }
            .write(&mut ld.buf);
            ld.maybe_flush()?;
        }
        ld.end_copy()?;

        ld.copy(UPLOAD_COLUMNS)?;
        for &(id, post, created) in &new_uploads {
            let up = self.uploads[id as usize - 1].clone();
            let user = self.posts[post as usize - 1].user_id;
            self.upload_row(&mut ld.buf, &mut rng, &up, user, created, post);
        }
        ld.end_copy()?;
        ld.copy(
            "upload_references (id, upload_id, target_type, target_id, created_at, updated_at)",
        )?;
        for &(id, post, created) in &new_uploads {
            Row::new(&mut ld.buf)
                .n(self.next_upload_ref)
                .n(id)
                .s("Post")
                .n(post)
                .ts(created)
                .ts(created)
                .end();
            self.next_upload_ref += 1;
        }
        ld.end_copy()?;

        // Topic counters, per topic touched by new posts (existing topics only).
        let mut touched: BTreeMap<u32, (u32, u32, i64, u32)> = BTreeMap::new();
        let mut posters: BTreeMap<u32, (u32, u32, i64)> = BTreeMap::new();
        let mut new_tu: Vec<(u32, u32, u32, i64, bool)> = Vec::new();
        let mut upd_tu: BTreeMap<u32, (u32, i64, u32)> = BTreeMap::new();
        let mut notes = String::new();
        let mut actions = String::new();
        for &(id, created) in &new_posts {
            let p = self.posts[id as usize - 1].clone();
            let e = touched.entry(p.topic_id).or_insert((0, 0, 0, 0));
            e.0 += 1;
            if p.post_number >= e.1 {
                e.1 = p.post_number;
                e.2 = created;
                e.3 = p.user_id;
            }
            let s = posters.entry(p.user_id).or_insert((0, 0, 0));
            s.0 += 1;
            s.1 += u32::from(p.post_number == 1);
            s.2 = s.2.max(created);
            match self.topic_users.get(&(p.topic_id, p.user_id)) {
                Some(&tu) => {
                    upd_tu.insert(
                        tu,
                        (p.post_number, created, rng.random_range(5_000..300_000)),
                    );
                }
                None => {
                    let tu = self.next_topic_user;
                    self.next_topic_user += 1;
                    self.topic_users.insert((p.topic_id, p.user_id), tu);
                    new_tu.push((tu, p.topic_id, p.user_id, created, true));
                }
            }
            let owner = self.topics[p.topic_id as usize - 1].user_id;
            if p.post_number > 1 && owner != p.user_id {
                notes.push_str(&self.notification_row(2, owner, &p, id, created, false));
            }
            let kind = if p.post_number == 1 { 4 } else { 5 };
            self.user_action_row(&mut actions, kind, p.user_id, &p, id, p.user_id, created);
        }
        let existing: Vec<String> = touched
            .iter()
            .filter(|(t, _)| !new_topic_ids.contains(t))
            .map(|(t, (n, h, c, u))| format!("({t},{n},{h},'{}'::timestamp,{u})", timestamp(*c)))
            .collect();
        if !existing.is_empty() {
            ld.sql(&format!(
                "UPDATE topics t SET posts_count = t.posts_count + v.n, reply_count = t.reply_count + v.n, \
                 highest_post_number = v.h, last_posted_at = v.at, bumped_at = v.at, updated_at = v.at, \
                 last_post_user_id = v.u FROM (VALUES {}) v(id, n, h, at, u) WHERE t.id = v.id;\n",
                existing.join(",")
            ))?;
        }
        if !posters.is_empty() {
            let vals: Vec<String> = posters
                .iter()
                .map(|(u, (n, t, c))| format!("({u},{n},{t},'{}'::timestamp)", timestamp(*c)))
                .collect();
            ld.sql(&format!(
                "UPDATE user_stats s SET post_count = s.post_count + v.n, topic_count = s.topic_count + v.t, \
                 first_post_created_at = coalesce(s.first_post_created_at, v.at) \
                 FROM (VALUES {0}) v(id, n, t, at) WHERE s.user_id = v.id;\n\
                 UPDATE users u SET last_posted_at = v.at FROM (VALUES {0}) v(id, n, t, at) WHERE u.id = v.id;\n",
                vals.join(",")
            ))?;
        }

        // Active users: last_seen_at and reading counters (the hottest columns of a forum).
        let n_active = count(self.users, 0.05, churn);
        let mut active: BTreeMap<u32, i64> = BTreeMap::new();
        for _ in 0..n_active {
            let u = skewed(&mut rng, self.users);
            active.insert(u, at(&mut rng));
        }
        for (&u, &(_, _, c)) in &posters {
            let e = active.entry(u).or_insert(c);
            *e = (*e).max(c);
        }
        st.active_users = active.len() as u32;
        let vals: Vec<String> = active
            .iter()
            .map(|(u, t)| format!("({u},'{}'::timestamp)", timestamp(*t)))
            .collect();
        ld.sql(&format!(
            "UPDATE users u SET previous_visit_at = u.last_seen_at, last_seen_at = v.at \
             FROM (VALUES {}) v(id, at) WHERE u.id = v.id;\n",
            vals.join(",")
        ))?;
        let vals: Vec<String> = active
            .keys()
            .map(|u| {
                format!(
                    "({u},{},{},{})",
                    rng.random_range(30..3_600u32),
                    rng.random_range(1..80u32),
                    rng.random_range(0..6u32)
                )
            })
            .collect();
        ld.sql(&format!(
            "UPDATE user_stats s SET days_visited = s.days_visited + 1, time_read = s.time_read + v.tr, \
             posts_read_count = s.posts_read_count + v.pr, topics_entered = s.topics_entered + v.te \
             FROM (VALUES {}) v(id, tr, pr, te) WHERE s.user_id = v.id;\n",
            vals.join(",")
        ))?;

        // Reading: active users open a few recent topics.
        let n_topics_now = self.topics.len() as u32;
        let mut views: BTreeMap<u32, u32> = BTreeMap::new();
        for (&u, &seen) in &active {
            for _ in 0..rng.random_range(1..4u32) {
                let t = recent(&mut rng, n_topics_now);
                if self.pm_users.get(&t).is_some_and(|m| !m.contains(&u)) {
                    continue;
                }
                *views.entry(t).or_default() += 1;
                let highest = self.topics[t as usize - 1].highest_post_number;
                match self.topic_users.get(&(t, u)) {
                    Some(&tu) => {
                        upd_tu.entry(tu).or_insert((
                            highest,
                            seen,
                            rng.random_range(5_000..300_000),
                        ));
                    }
                    None => {
                        let tu = self.next_topic_user;
                        self.next_topic_user += 1;
                        self.topic_users.insert((t, u), tu);
                        new_tu.push((tu, t, u, seen, false));
                    }
                }
            }
        }
        for _ in 0..count(n_topics_now, 0.02, churn) {
            *views.entry(recent(&mut rng, n_topics_now)).or_default() += rng.random_range(1..20);
        }
        let vals: Vec<String> = views.iter().map(|(t, n)| format!("({t},{n})")).collect();
        ld.sql(&format!(
            "UPDATE topics t SET views = t.views + v.n FROM (VALUES {}) v(id, n) WHERE t.id = v.id;\n",
            vals.join(",")
        ))?;
        ld.copy(TOPIC_USER_COLUMNS)?;
        for &(tu, t, u, c, posted) in &new_tu {
            let highest = self.topics[t as usize - 1].highest_post_number;
            Row::new(&mut ld.buf)
                .n(u)
                .n(t)
                .b(posted)
                .n(highest)
                .ts(c)
                .ts(c)
                .n(1)
                .n(rng.random_range(1_000..300_000u32))
                .n(tu)
                .b(false)
                .b(false)
                .null()
                .end();
        }
        ld.end_copy()?;
        if !upd_tu.is_empty() {
            let vals: Vec<String> = upd_tu
                .iter()
                .map(|(id, (n, c, ms))| format!("({id},{n},'{}'::timestamp,{ms})", timestamp(*c)))
                .collect();
            ld.sql(&format!(
                "UPDATE topic_users tu SET last_read_post_number = greatest(tu.last_read_post_number, v.n), \
                 last_visited_at = v.at, total_msecs_viewed = tu.total_msecs_viewed + v.ms \
                 FROM (VALUES {}) v(id, n, at, ms) WHERE tu.id = v.id;\n",
                vals.join(",")
            ))?;
        }

        // Likes.
        let n_posts_now = self.posts.len() as u32;
        let mut liked: BTreeMap<u32, u32> = BTreeMap::new();
        let mut given: BTreeMap<u32, u32> = BTreeMap::new();
        let mut received: BTreeMap<u32, u32> = BTreeMap::new();
        let mut topic_likes: BTreeMap<u32, u32> = BTreeMap::new();
        for _ in 0..count(n_posts_now, 0.004, churn) {
            let post = recent(&mut rng, n_posts_now);
            let p = self.posts[post as usize - 1].clone();
            if p.deleted {
                continue;
            }
            let liker = skewed(&mut rng, self.users);
            let when = at(&mut rng);
            *liked.entry(post).or_default() += 1;
            *given.entry(liker).or_default() += 1;
            *received.entry(p.user_id).or_default() += 1;
            *topic_likes.entry(p.topic_id).or_default() += 1;
            self.user_action_row(&mut actions, 1, liker, &p, post, liker, when);
            self.user_action_row(&mut actions, 2, p.user_id, &p, post, liker, when);
            notes.push_str(&self.notification_row(5, p.user_id, &p, post, when, false));
            st.likes += 1;
        }
        if !liked.is_empty() {
            let v = |m: &BTreeMap<u32, u32>| -> String {
                m.iter()
                    .map(|(k, n)| format!("({k},{n})"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            ld.sql(&format!(
                "UPDATE posts p SET like_count = p.like_count + v.n FROM (VALUES {}) v(id, n) WHERE p.id = v.id;\n\
                 UPDATE topics t SET like_count = t.like_count + v.n FROM (VALUES {}) v(id, n) WHERE t.id = v.id;\n",
                v(&liked),
                v(&topic_likes)
            ))?;
            let mut both: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
            for (&u, &n) in &given {
                both.entry(u).or_default().0 = n;
            }
            for (&u, &n) in &received {
                both.entry(u).or_default().1 = n;
            }
            let vals: Vec<String> = both
                .iter()
                .map(|(u, (g, r))| format!("({u},{g},{r})"))
                .collect();
            ld.sql(&format!(
                "UPDATE user_stats s SET likes_given = s.likes_given + v.g, likes_received = s.likes_received + v.r \
                 FROM (VALUES {}) v(id, g, r) WHERE s.user_id = v.id;\n",
                vals.join(",")
            ))?;
        }

        // Edits: a new version of the raw and cooked text and a post_revisions row.
        let mut edited = BTreeSet::new();
        for _ in 0..count(n_posts_now, 0.0015, churn) {
            let post = recent(&mut rng, n_posts_now);
            if self.posts[post as usize - 1].deleted || !edited.insert(post) {
                continue;
            }
        }
        let mut revisions = String::new();
        for &post in &edited {
            let when = at(&mut rng);
            let (user, version) = {
                let p = &mut self.posts[post as usize - 1];
                p.version += 1;
                (p.user_id, p.version)
            };
            let body = self.post_body(post, version);
            ld.sql(&format!(
                "UPDATE posts SET raw = {}, cooked = {}, updated_at = '{2}', last_version_at = '{2}', \
                 baked_at = '{2}', version = {3}, public_version = {3}, word_count = {4}, \
                 last_editor_id = {5}, self_edits = self_edits + 1 WHERE id = {post};\n",
                lit(&body.raw),
                lit(&body.cooked),
                timestamp(when),
                version,
                body.words,
                user
            ))?;
            revisions.push_str(&self.revision_row(post, user, version, when));
            self.next_revision += 1;
            st.edits += 1;
        }
        ld.copy(REVISION_COLUMNS)?;
        ld.sql(&revisions)?;
        ld.end_copy()?;

        // Soft deletions.
        let mut deleted = Vec::new();
        for _ in 0..count(n_posts_now, 0.0003, churn) {
            let post = recent(&mut rng, n_posts_now);
            let p = &mut self.posts[post as usize - 1];
            if p.deleted || p.post_number == 1 {
                continue;
            }
            p.deleted = true;
            deleted.push(post);
        }
        st.deletions = deleted.len() as u32;
        if !deleted.is_empty() {
            let ids: Vec<String> = deleted.iter().map(|d| d.to_string()).collect();
            ld.sql(&format!(
                "UPDATE posts SET deleted_at = '{}', deleted_by_id = 1 WHERE id IN ({});\n",
                timestamp(t0 + span / 2),
                ids.join(",")
            ))?;
        }

        // Notifications: today's new ones, active users read theirs, old read ones are purged.
        ld.copy(NOTIFICATION_COLUMNS)?;
        let new_notes = notes.lines().count();
        ld.sql(&notes)?;
        ld.end_copy()?;
        ld.copy(USER_ACTION_COLUMNS)?;
        ld.sql(&actions)?;
        ld.end_copy()?;
        let readers: Vec<String> = active.keys().map(|u| u.to_string()).collect();
        ld.sql(&format!(
            "UPDATE notifications SET read = true WHERE NOT read AND user_id IN ({});\n\
             DELETE FROM notifications WHERE id IN (SELECT id FROM notifications WHERE read ORDER BY id LIMIT {});\n",
            readers.join(","),
            new_notes / 2
        ))?;

        // Settings and migrations change now and then (a Discourse upgrade adds migrations).
        if rng.random_ratio(1, 4) {
            let (i, (name, _, _)) = {
                let i = rng.random_range(0..SITE_SETTINGS.len());
                (i, SITE_SETTINGS[i])
            };
            let _ = i;
            ld.sql(&format!(
                "UPDATE site_settings SET value = {}, updated_at = '{}' WHERE name = {};\n",
                lit(&rng.random_range(1..100u32).to_string()),
                timestamp(at(&mut rng)),
                lit(name)
            ))?;
        }
        if day.is_multiple_of(7) {
            let (y, m, d) = crate::copy::civil_from_days(self.midnight(day) / MICROS_PER_DAY - 1);
            let v = format!("{y:04}{m:02}{d:02}{:06}", rng.random_range(0..235_959u32));
            ld.sql(&format!(
                "INSERT INTO schema_migrations (version) VALUES ({});\n",
                lit(&v)
            ))?;
            self.migrations.push(v);
            self.migrations.sort();
        }

        self.set_sequences(&mut ld)?;
        ld.sql("COMMIT;\nVACUUM;\n")?;
        ld.finish()
            .with_context(|| format!("applying simulated day {day}"))?;
        Ok(st)
    }

    fn add_post(&mut self, topic: u32, user: u32, created: i64, out: &mut Vec<(u32, i64)>) {
        let t = &mut self.topics[topic as usize - 1];
        t.highest_post_number += 1;
        self.posts.push(PostMeta {
            topic_id: topic,
            post_number: t.highest_post_number,
            user_id: user,
            version: 1,
            deleted: false,
        });
        out.push((self.posts.len() as u32, created));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_paths_follow_discourse_depths() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            upload_path("original", 5, sha, ".png"),
            format!("original/1X/{sha}.png")
        );
        assert_eq!(
            upload_path("original", 1000, sha, ".png"),
            format!("original/1X/{sha}.png")
        );
        assert_eq!(
            upload_path("original", 1001, sha, ".png"),
            format!("original/2X/0/{sha}.png")
        );
        assert_eq!(
            upload_path("original", 20_000, sha, ".jpeg"),
            format!("original/3X/0/1/{sha}.jpeg")
        );
    }
}
