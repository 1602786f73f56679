//! Day 0: the forum's whole history, loaded with COPY.
//!
//! [`Forum::fill_day0`] first plans the history (who opened which topic when, who replied,
//! which posts were edited, liked or deleted, which got an upload) from the planning stream,
//! then loads it table by table; the loaders draw the values nothing else depends on from the
//! row stream (`users.rs`: migrations, settings and users; `topics.rs`: categories, topics and
//! who read or may read them; `posts.rs`: posts and everything hanging off them).
//!
//! The order of the steps is the order of the draws from each stream and of the SQL sent to
//! `psql`: moving a step changes the simulator's output (pinned by its seed).

use anyhow::{Context, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::*;

mod posts;
mod topics;
mod users;

/// The planned history, and the row stream the loaders draw from.
struct History {
    /// Planning stream (`S_PLAN`): topics, posts, uploads, invented old migrations.
    plan: ChaCha8Rng,
    /// Row stream (`S_ROWS`): column values nothing else depends on.
    rows: ChaCha8Rng,
    /// Midnight starting day 0 (the history ends an hour before it).
    now: i64,
    /// When the forum opened, [`HISTORY_DAYS`] before `now`.
    start: i64,
    /// `now - start`.
    span: i64,
    n_users: u32,
    n_topics: u32,
    /// Creation time of each topic, by topic id - 1.
    topic_created: Vec<i64>,
    /// Creation time of each post, by post id - 1.
    post_created: Vec<i64>,
    /// Likes of each post, by post id - 1.
    like_counts: Vec<u32>,
}

impl History {
    /// Users join at an even pace over the first half of the forum's history.
    fn user_created(&self, id: u32) -> i64 {
        self.start + (self.span / 2) * (id as i64 - 1) / self.n_users as i64
    }
}

impl Forum {
    pub(super) fn fill_day0(&mut self) -> Result<()> {
        let mut h = self.begin_history();
        self.plan_topics(&mut h);
        self.plan_posts(&mut h);
        self.plan_uploads(&mut h)?;

        let mut ld = self.stream()?;
        ld.sql("BEGIN;\n")?;
        self.load_schema_migrations(&mut h, &mut ld)?;
        users::load_site_settings(&h, &mut ld)?;
        self.load_users(&mut h, &mut ld)?;
        self.load_categories(&mut h, &mut ld)?;
        self.load_topics(&mut h, &mut ld)?;
        self.load_topic_users(&mut h, &mut ld)?;
        self.load_private_message_members(&h, &mut ld)?;
        self.load_posts(&mut h, &mut ld)?;
        self.load_revisions(&h, &mut ld)?;
        self.load_uploads(&mut h, &mut ld)?;
        self.load_notifications(&mut h, &mut ld)?;
        self.load_user_actions(&mut h, &mut ld)?;

        self.set_sequences(&mut ld)?;
        ld.sql("COMMIT;\nVACUUM ANALYZE;\n")?;
        ld.finish().context("loading day 0 of the forum")?;
        Ok(())
    }

    /// The two streams and the time span; the users exist from here on.
    fn begin_history(&mut self) -> History {
        let seed = self.opts.seed;
        let now = self.midnight(0);
        let span = HISTORY_DAYS * MICROS_PER_DAY;
        let n_users = self.opts.size.users.max(2);
        self.users = n_users;
        History {
            plan: rng_for(seed, S_PLAN, 0),
            rows: rng_for(seed, S_ROWS, 0),
            now,
            start: now - span,
            span,
            n_users,
            n_topics: self.opts.size.topics.max(1),
            topic_created: Vec::new(),
            post_created: Vec::new(),
            like_counts: Vec::new(),
        }
    }

    /// Topics, at an even pace over the second half of the history, and how many posts each
    /// gets (popular topics are long); one in twelve is a private message.
    fn plan_topics(&mut self, h: &mut History) {
        let n_topics = h.n_topics;
        let n_posts = self.opts.size.posts.max(n_topics);
        let mut per_topic = vec![1u32; n_topics as usize];
        for _ in n_topics..n_posts {
            let t = skewed(&mut h.plan, n_topics);
            per_topic[t as usize - 1] += 1;
        }
        h.topic_created = Vec::with_capacity(n_topics as usize);
        for t in 1..=n_topics {
            let pm = h.plan.random_ratio(1, 12);
            let base = h.start + h.span / 2 + (h.span / 2) * (t as i64 - 1) / n_topics as i64;
            let user_id = skewed(&mut h.plan, h.n_users);
            let created = base.max(h.user_created(user_id) + 60_000_000);
            h.topic_created.push(created);
            if pm {
                self.plan_private_message(h, t, user_id);
            }
            self.topics.push(TopicMeta {
                user_id,
                highest_post_number: per_topic[t as usize - 1],
                pm,
            });
        }
    }

    /// The members of private message `t`: its author and one or two others.
    fn plan_private_message(&mut self, h: &mut History, t: u32, author: u32) {
        let mut members = vec![author];
        for _ in 0..h.plan.random_range(1..3) {
            let u = skewed(&mut h.plan, h.n_users);
            if !members.contains(&u) {
                members.push(u);
            }
        }
        self.pm_users.insert(t, members);
    }

    /// Posts, topic by topic: author, time, whether edited (1 in 30), deleted (1 in 200
    /// replies) and liked (1 in 3, one to five likes).
    fn plan_posts(&mut self, h: &mut History) {
        let n_posts = self.opts.size.posts.max(h.n_topics) as usize;
        h.post_created = Vec::with_capacity(n_posts);
        h.like_counts = Vec::with_capacity(n_posts);
        for t in 1..=h.n_topics {
            let meta = self.topics[t as usize - 1].clone();
            let mut at = h.topic_created[t as usize - 1];
            for n in 1..=meta.highest_post_number {
                let user_id = if n == 1 {
                    meta.user_id
                } else if let Some(m) = self.pm_users.get(&t) {
                    m[h.plan.random_range(0..m.len())]
                } else {
                    skewed(&mut h.plan, h.n_users)
                };
                if n > 1 {
                    at += h.plan.random_range(60_000_000i64..3 * MICROS_PER_DAY / 2);
                }
                let at = at.min(h.now - 3_600_000_000);
                let version = if h.plan.random_ratio(1, 30) { 2 } else { 1 };
                self.posts.push(PostMeta {
                    topic_id: t,
                    post_number: n,
                    user_id,
                    version,
                    deleted: n > 1 && h.plan.random_ratio(1, 200),
                });
                h.post_created.push(at);
                let likes: u32 = if h.plan.random_ratio(1, 3) {
                    h.plan.random_range(1..6)
                } else {
                    0
                };
                h.like_counts.push(likes);
            }
        }
    }

    /// Uploads, each shown in one post; one in twenty (after the first four) repeats content
    /// already uploaded. Writes the files.
    fn plan_uploads(&mut self, h: &mut History) -> Result<()> {
        for i in 1..=self.opts.size.uploads {
            let post_id = h.plan.random_range(1..=self.posts.len() as u32);
            let dup = i > 4 && h.plan.random_ratio(1, 20);
            let created = h.post_created[post_id as usize - 1];
            self.add_upload(i, post_id, created, dup)?;
            self.post_upload.entry(post_id).or_insert(i);
        }
        Ok(())
    }

    /// The posts of each topic as indices into `posts` (post id - 1), by topic id - 1: posts
    /// were planned topic by topic.
    fn posts_of_topics(&self) -> Vec<std::ops::RangeInclusive<usize>> {
        let mut first = 0usize;
        self.topics
            .iter()
            .map(|m| {
                let range = first..=first + m.highest_post_number as usize - 1;
                first += m.highest_post_number as usize;
                range
            })
            .collect()
    }
}
