//! How the forum reacts during the day: topic and poster counters follow the new posts, active
//! users visit (the hottest columns of a forum: `users.last_seen_at` and the `user_stats`
//! reading counters), read recent topics (`topics.views`, `topic_users`), and like posts.

use std::collections::BTreeMap;

use anyhow::Result;
use rand::Rng;

use super::{Active, Day, Posted, Posters, TopicUsers};
use crate::copy::{timestamp, Row};
use crate::forum::rows::*;
use crate::forum::*;

/// Per topic with new posts: `(new posts, highest post number, its time, its author)`.
pub(super) type Touched = BTreeMap<u32, (u32, u32, i64, u32)>;

impl Forum {
    /// Bookkeeping for each new post: its topic and poster, the poster's `topic_users` row,
    /// a notification to the topic's owner for a reply, and the poster's `user_actions` row.
    pub(super) fn follow_new_posts(
        &mut self,
        d: &mut Day,
        posted: &Posted,
        topic_users: &mut TopicUsers,
    ) -> (Touched, Posters) {
        let mut touched = Touched::new();
        let mut posters = Posters::new();
        for &(id, created) in &posted.posts {
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
                    topic_users.updated.insert(
                        tu,
                        (p.post_number, created, d.rng.random_range(5_000..300_000)),
                    );
                }
                None => {
                    let tu = self.next_topic_user;
                    self.next_topic_user += 1;
                    self.topic_users.insert((p.topic_id, p.user_id), tu);
                    topic_users
                        .new
                        .push((tu, p.topic_id, p.user_id, created, true));
                }
            }
            let owner = self.topics[p.topic_id as usize - 1].user_id;
            if p.post_number > 1 && owner != p.user_id {
                d.notes
                    .push_str(&self.notification_row(2, owner, &p, id, created, false));
            }
            let kind = if p.post_number == 1 { 4 } else { 5 };
            self.user_action_row(&mut d.actions, kind, p.user_id, &p, id, p.user_id, created);
        }
        (touched, posters)
    }

    /// Visits: active users (5 % × churn of the users, and everyone who posted) get a new
    /// `last_seen_at` and add to their reading counters.
    pub(super) fn visit(&mut self, d: &mut Day, posters: &Posters) -> Result<Active> {
        let n_active = count(self.users, 0.05, self.opts.churn);
        let mut active = Active::new();
        for _ in 0..n_active {
            let u = skewed(&mut d.rng, self.users);
            let seen = d.at();
            active.insert(u, seen);
        }
        for (&u, &(_, _, c)) in posters {
            let e = active.entry(u).or_insert(c);
            *e = (*e).max(c);
        }
        d.stats.active_users = active.len() as u32;
        let vals: Vec<String> = active
            .iter()
            .map(|(u, t)| format!("({u},'{}'::timestamp)", timestamp(*t)))
            .collect();
        d.ld.sql(&format!(
            "UPDATE users u SET previous_visit_at = u.last_seen_at, last_seen_at = v.at \
             FROM (VALUES {}) v(id, at) WHERE u.id = v.id;\n",
            vals.join(",")
        ))?;
        let vals: Vec<String> = active
            .keys()
            .map(|u| {
                format!(
                    "({u},{},{},{})",
                    d.rng.random_range(30..3_600u32),
                    d.rng.random_range(1..80u32),
                    d.rng.random_range(0..6u32)
                )
            })
            .collect();
        d.ld.sql(&format!(
            "UPDATE user_stats s SET days_visited = s.days_visited + 1, time_read = s.time_read + v.tr, \
             posts_read_count = s.posts_read_count + v.pr, topics_entered = s.topics_entered + v.te \
             FROM (VALUES {}) v(id, tr, pr, te) WHERE s.user_id = v.id;\n",
            vals.join(",")
        ))?;
        Ok(active)
    }

    /// Reading: each active user opens a few recent topics they may see, and anonymous readers
    /// add views; `topics.views` grows, and each reader's `topic_users` row is added or moved on.
    pub(super) fn read_topics(
        &mut self,
        d: &mut Day,
        active: &Active,
        topic_users: &mut TopicUsers,
    ) -> Result<()> {
        let n_topics_now = self.topics.len() as u32;
        let mut views: BTreeMap<u32, u32> = BTreeMap::new();
        for (&u, &seen) in active {
            for _ in 0..d.rng.random_range(1..4u32) {
                let t = recent(&mut d.rng, n_topics_now);
                if self.pm_users.get(&t).is_some_and(|m| !m.contains(&u)) {
                    continue;
                }
                *views.entry(t).or_default() += 1;
                let highest = self.topics[t as usize - 1].highest_post_number;
                match self.topic_users.get(&(t, u)) {
                    Some(&tu) => {
                        topic_users.updated.entry(tu).or_insert((
                            highest,
                            seen,
                            d.rng.random_range(5_000..300_000),
                        ));
                    }
                    None => {
                        let tu = self.next_topic_user;
                        self.next_topic_user += 1;
                        self.topic_users.insert((t, u), tu);
                        topic_users.new.push((tu, t, u, seen, false));
                    }
                }
            }
        }
        for _ in 0..count(n_topics_now, 0.02, self.opts.churn) {
            *views.entry(recent(&mut d.rng, n_topics_now)).or_default() +=
                d.rng.random_range(1..20);
        }
        let vals: Vec<String> = views.iter().map(|(t, n)| format!("({t},{n})")).collect();
        d.ld.sql(&format!(
            "UPDATE topics t SET views = t.views + v.n FROM (VALUES {}) v(id, n) WHERE t.id = v.id;\n",
            vals.join(",")
        ))
    }

    /// The day's `topic_users` changes (posters' and readers'): new rows, then updates.
    pub(super) fn write_topic_users(&self, d: &mut Day, topic_users: &TopicUsers) -> Result<()> {
        d.ld.copy(TOPIC_USER_COLUMNS)?;
        for &(tu, t, u, c, posted) in &topic_users.new {
            let highest = self.topics[t as usize - 1].highest_post_number;
            Row::new(&mut d.ld.buf)
                .n(u)
                .n(t)
                .b(posted)
                .n(highest)
                .ts(c)
                .ts(c)
                .n(1)
                .n(d.rng.random_range(1_000..300_000u32))
                .n(tu)
                .b(false)
                .b(false)
                .null()
                .end();
        }
        d.ld.end_copy()?;
        if !topic_users.updated.is_empty() {
            let vals: Vec<String> = topic_users
                .updated
                .iter()
                .map(|(id, (n, c, ms))| format!("({id},{n},'{}'::timestamp,{ms})", timestamp(*c)))
                .collect();
            d.ld.sql(&format!(
                "UPDATE topic_users tu SET last_read_post_number = greatest(tu.last_read_post_number, v.n), \
                 last_visited_at = v.at, total_msecs_viewed = tu.total_msecs_viewed + v.ms \
                 FROM (VALUES {}) v(id, n, at, ms) WHERE tu.id = v.id;\n",
                vals.join(",")
            ))?;
        }
        Ok(())
    }

    /// Likes (0.4 % × churn of the posts, mostly recent ones): post, topic and user counters,
    /// a notification to the author, and a `user_actions` row on each side.
    pub(super) fn like_posts(&mut self, d: &mut Day) -> Result<()> {
        let n_posts_now = self.posts.len() as u32;
        let mut liked: BTreeMap<u32, u32> = BTreeMap::new();
        let mut given: BTreeMap<u32, u32> = BTreeMap::new();
        let mut received: BTreeMap<u32, u32> = BTreeMap::new();
        let mut topic_likes: BTreeMap<u32, u32> = BTreeMap::new();
        for _ in 0..count(n_posts_now, 0.004, self.opts.churn) {
            let post = recent(&mut d.rng, n_posts_now);
            let p = self.posts[post as usize - 1].clone();
            if p.deleted {
                continue;
            }
            let liker = skewed(&mut d.rng, self.users);
            let when = d.at();
            *liked.entry(post).or_default() += 1;
            *given.entry(liker).or_default() += 1;
            *received.entry(p.user_id).or_default() += 1;
            *topic_likes.entry(p.topic_id).or_default() += 1;
            self.user_action_row(&mut d.actions, 1, liker, &p, post, liker, when);
            self.user_action_row(&mut d.actions, 2, p.user_id, &p, post, liker, when);
            d.notes
                .push_str(&self.notification_row(5, p.user_id, &p, post, when, false));
            d.stats.likes += 1;
        }
        if liked.is_empty() {
            return Ok(());
        }
        let v = |m: &BTreeMap<u32, u32>| -> String {
            m.iter()
                .map(|(k, n)| format!("({k},{n})"))
                .collect::<Vec<_>>()
                .join(",")
        };
        d.ld.sql(&format!(
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
        d.ld.sql(&format!(
            "UPDATE user_stats s SET likes_given = s.likes_given + v.g, likes_received = s.likes_received + v.r \
             FROM (VALUES {}) v(id, g, r) WHERE s.user_id = v.id;\n",
            vals.join(",")
        ))
    }
}

/// Counters of the existing topics that got new posts (today's new topics were written whole).
pub(super) fn bump_topics(d: &mut Day, touched: &Touched, new_topics: &[u32]) -> Result<()> {
    let existing: Vec<String> = touched
        .iter()
        .filter(|(t, _)| !new_topics.contains(t))
        .map(|(t, (n, h, c, u))| format!("({t},{n},{h},'{}'::timestamp,{u})", timestamp(*c)))
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    d.ld.sql(&format!(
        "UPDATE topics t SET posts_count = t.posts_count + v.n, reply_count = t.reply_count + v.n, \
         highest_post_number = v.h, last_posted_at = v.at, bumped_at = v.at, updated_at = v.at, \
         last_post_user_id = v.u FROM (VALUES {}) v(id, n, h, at, u) WHERE t.id = v.id;\n",
        existing.join(",")
    ))
}

/// The posters' `user_stats` counters and `users.last_posted_at`.
pub(super) fn bump_posters(d: &mut Day, posters: &Posters) -> Result<()> {
    if posters.is_empty() {
        return Ok(());
    }
    let vals: Vec<String> = posters
        .iter()
        .map(|(u, (n, t, c))| format!("({u},{n},{t},'{}'::timestamp)", timestamp(*c)))
        .collect();
    d.ld.sql(&format!(
        "UPDATE user_stats s SET post_count = s.post_count + v.n, topic_count = s.topic_count + v.t, \
         first_post_created_at = coalesce(s.first_post_created_at, v.at) \
         FROM (VALUES {0}) v(id, n, t, at) WHERE s.user_id = v.id;\n\
         UPDATE users u SET last_posted_at = v.at FROM (VALUES {0}) v(id, n, t, at) WHERE u.id = v.id;\n",
        vals.join(",")
    ))
}
