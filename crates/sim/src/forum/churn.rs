//! Every later day: a little of everything changes, mostly the hot columns.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::copy::{lit, timestamp, Row};
use rows::*;

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
