//! Every later day: a little of everything changes, mostly the hot columns.
//!
//! [`Forum::next_day`] is the day's list of events in the order they happen; each event is one
//! function of this folder: people and content arrive (`arrivals.rs`: sign-ups, topics, private
//! messages, replies, uploads), the forum reacts (`activity.rs`: counters, visits, reading,
//! likes), and old content changes (`changes.rs`: edits, deletions, notifications, a setting,
//! a migration).
//!
//! All events draw from one random stream per day, in this order, and send their SQL into one
//! `psql` session in this order: moving an event, or a draw inside one, changes every later
//! value of the day (the simulator's output is pinned by its seed).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::*;

mod activity;
mod arrivals;
mod changes;

/// One day in the making: its random stream and time window, the SQL going to the database,
/// its counters, and the rows that several events add to.
struct Day {
    /// The day number (1 for the first day after day 0).
    n: u32,
    /// The day's one random stream (`S_DAY`).
    rng: ChaCha8Rng,
    /// 20:00 the evening before: the day's events happen in the `span` after it, before the
    /// 03:30 backup.
    t0: i64,
    /// Seven hours, in microseconds.
    span: i64,
    /// The `psql` session everything goes into, inside one transaction.
    ld: Loader,
    /// What happened, for logs and tests.
    stats: DayStats,
    /// `notifications` rows (replies and likes), copied in by [`Forum::deliver_notifications`].
    notes: String,
    /// `user_actions` rows (posts and likes), copied in with the notifications.
    actions: String,
}

impl Day {
    /// A random moment of the day's events.
    fn at(&mut self) -> i64 {
        self.t0 + self.rng.random_range(0..self.span)
    }
}

/// Today's new posts `(id, created)` in id order, and the topics the first of them opened.
struct Posted {
    posts: Vec<(u32, i64)>,
    topics: Vec<u32>,
}

/// Posts per user today: `(posts, topics opened, last post's time)`.
type Posters = BTreeMap<u32, (u32, u32, i64)>;

/// Users seen today and when.
type Active = BTreeMap<u32, i64>;

/// The day's `topic_users` changes: rows to add `(id, topic, user, first visit, posted)`, and
/// rows to update `id → (read up to post number, visited at, milliseconds read)`.
#[derive(Default)]
struct TopicUsers {
    new: Vec<(u32, u32, u32, i64, bool)>,
    updated: BTreeMap<u32, (u32, i64, u32)>,
}

impl Forum {
    /// Simulates one more day of forum life (about `churn` × 1 % of the content changes).
    pub fn next_day(&mut self) -> Result<DayStats> {
        let mut d = self.begin_day()?;

        // People and content arrive.
        self.sign_up_users(&mut d)?;
        let posted = self.post_topics_and_replies(&mut d);
        let uploads = self.attach_uploads(&mut d, &posted.posts)?;
        self.write_new_topics(&mut d, &posted)?;
        self.write_private_message_members(&mut d, &posted.topics)?;
        self.write_new_posts(&mut d, &posted.posts)?;
        self.write_new_uploads(&mut d, &uploads)?;

        // The forum reacts.
        let mut topic_users = TopicUsers::default();
        let (touched, posters) = self.follow_new_posts(&mut d, &posted, &mut topic_users);
        activity::bump_topics(&mut d, &touched, &posted.topics)?;
        activity::bump_posters(&mut d, &posters)?;
        let active = self.visit(&mut d, &posters)?;
        self.read_topics(&mut d, &active, &mut topic_users)?;
        self.write_topic_users(&mut d, &topic_users)?;
        self.like_posts(&mut d)?;

        // Old content changes.
        self.edit_posts(&mut d)?;
        self.delete_posts(&mut d)?;
        self.deliver_notifications(&mut d, &active)?;
        self.maybe_change_a_setting(&mut d)?;
        self.add_a_migration_weekly(&mut d)?;

        self.end_day(d)
    }

    /// Opens the day: its number, random stream, time window and transaction.
    fn begin_day(&mut self) -> Result<Day> {
        self.day += 1;
        let n = self.day;
        let mut ld = self.stream()?;
        ld.sql("BEGIN;\n")?;
        Ok(Day {
            n,
            rng: rng_for(self.opts.seed, S_DAY, n as u64),
            t0: self.midnight(n) - 4 * 3_600_000_000,
            span: 7 * 3_600_000_000,
            ld,
            stats: DayStats::default(),
            notes: String::new(),
            actions: String::new(),
        })
    }

    /// Closes the day: sequences, commit, and the `VACUUM` that keeps the next dump
    /// reproducible (autovacuum is off).
    fn end_day(&self, mut d: Day) -> Result<DayStats> {
        self.set_sequences(&mut d.ld)?;
        d.ld.sql("COMMIT;\nVACUUM;\n")?;
        let n = d.n;
        d.ld.finish()
            .with_context(|| format!("applying simulated day {n}"))?;
        Ok(d.stats)
    }
}
