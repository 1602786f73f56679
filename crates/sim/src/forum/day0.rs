//! Day 0: the forum's whole history, loaded with COPY.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use rand::Rng;

use super::*;
use crate::copy::Row;
use rows::*;

impl Forum {
    pub(super) fn fill_day0(&mut self) -> Result<()> {
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
}
