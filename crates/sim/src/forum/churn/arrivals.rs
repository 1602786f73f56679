//! The day's arrivals: new users sign up, new topics (some of them private messages) and
//! replies are posted, some of today's posts get an upload; then their rows are written.

use anyhow::Result;
use rand::Rng;

use super::{Day, Posted};
use crate::copy::Row;
use crate::forum::rows::*;
use crate::forum::*;

/// A new upload `(id, post, created)`.
pub(super) type NewUpload = (u32, u32, i64);

impl Forum {
    /// New users sign up (about 0.2 % × churn of the users): their `users`, `user_emails`,
    /// `user_profiles` and `user_stats` rows.
    pub(super) fn sign_up_users(&mut self, d: &mut Day) -> Result<()> {
        let n_new_users = count(self.users, 0.002, self.opts.churn);
        let first_new = self.users + 1;
        self.users += n_new_users;
        d.stats.new_users = n_new_users;
        let mut created_new = Vec::new();
        d.ld.copy(USER_COLUMNS)?;
        for id in first_new..=self.users {
            let c = d.at();
            created_new.push((id, c));
            self.user_row(&mut d.ld.buf, &mut d.rng, id, c, c + 600_000_000, None);
        }
        d.ld.end_copy()?;
        d.ld.copy(USER_EMAIL_COLUMNS)?;
        for &(id, c) in &created_new {
            self.email_row(&mut d.ld.buf, id, c);
        }
        d.ld.end_copy()?;
        d.ld.copy(USER_PROFILE_COLUMNS)?;
        for &(id, _) in &created_new {
            profile_row(&mut d.ld.buf, &mut d.rng, id);
        }
        d.ld.end_copy()?;
        d.ld.copy(USER_STATS_COLUMNS)?;
        for &(id, c) in &created_new {
            Row::new(&mut d.ld.buf)
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
        d.ld.end_copy()
    }

    /// New topics (0.4 % × churn of the topics) and replies (0.6 % × churn of the posts,
    /// mostly in recent topics); only the simulator's memory changes, the rows come later.
    pub(super) fn post_topics_and_replies(&mut self, d: &mut Day) -> Posted {
        let n_topics = count(self.topics.len() as u32, 0.004, self.opts.churn);
        let n_replies = count(self.posts.len() as u32, 0.006, self.opts.churn);
        let mut posted = Posted {
            posts: Vec::new(),
            topics: Vec::new(),
        };
        for _ in 0..n_topics {
            let t = self.start_topic(d, &mut posted.posts);
            posted.topics.push(t);
        }
        for _ in 0..n_replies {
            self.reply(d, &mut posted.posts);
        }
        posted.posts.sort_by_key(|&(id, _)| id);
        d.stats.new_topics = n_topics;
        d.stats.new_posts = posted.posts.len() as u32;
        posted
    }

    /// A user opens a topic with its first post; one in twelve is a private message.
    fn start_topic(&mut self, d: &mut Day, posts: &mut Vec<(u32, i64)>) -> u32 {
        let user_id = skewed(&mut d.rng, self.users);
        let pm = d.rng.random_ratio(1, 12);
        self.topics.push(TopicMeta {
            user_id,
            highest_post_number: 0,
            pm,
        });
        let t = self.topics.len() as u32;
        if pm {
            self.address_private_message(d, t, user_id);
        }
        let at = d.at();
        self.add_post(t, user_id, at, posts);
        t
    }

    /// The members of new private message `t`: its author and one other user (the author
    /// alone when the draw picks the author).
    fn address_private_message(&mut self, d: &mut Day, t: u32, author: u32) {
        let other = skewed(&mut d.rng, self.users);
        let members = if other == author {
            vec![author]
        } else {
            vec![author, other]
        };
        self.pm_users.insert(t, members);
    }

    /// A reply in a recent topic, by one of its members when it is a private message.
    fn reply(&mut self, d: &mut Day, posts: &mut Vec<(u32, i64)>) {
        let t = recent(&mut d.rng, self.topics.len() as u32);
        let user_id = match self.pm_users.get(&t) {
            Some(m) => m[d.rng.random_range(0..m.len())],
            None => skewed(&mut d.rng, self.users),
        };
        let at = d.at();
        self.add_post(t, user_id, at, posts);
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

    /// Uploads into some of today's posts (1 % × churn of the uploads, at most one a post);
    /// one in ten is a secure re-upload of content already on disk. Writes the files.
    pub(super) fn attach_uploads(
        &mut self,
        d: &mut Day,
        new_posts: &[(u32, i64)],
    ) -> Result<Vec<NewUpload>> {
        let n_uploads = count(self.opts.size.uploads, 0.01, self.opts.churn);
        let mut new_uploads = Vec::new();
        for _ in 0..n_uploads {
            let id = self.uploads.len() as u32 + 1;
            let (post, created) = new_posts[d.rng.random_range(0..new_posts.len())];
            if self.post_upload.contains_key(&post) {
                continue;
            }
            let dup = d.rng.random_ratio(1, 10);
            self.add_upload(id, post, created, dup)?;
            if dup {
                d.stats.duplicate_uploads += 1;
            }
            self.post_upload.insert(post, id);
            new_uploads.push((id, post, created));
        }
        d.stats.new_uploads = new_uploads.len() as u32;
        Ok(new_uploads)
    }

    /// The `topics` rows of today's new topics.
    pub(super) fn write_new_topics(&mut self, d: &mut Day, posted: &Posted) -> Result<()> {
        d.ld.copy(TOPIC_COLUMNS)?;
        for &t in &posted.topics {
            let m = self.topics[t as usize - 1].clone();
            let title = self.title(t);
            let created = posted
                .posts
                .iter()
                .find(|&&(p, _)| self.posts[p as usize - 1].topic_id == t)
                .map(|&(_, c)| c)
                .unwrap_or(d.t0);
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
                excerpt: text::sentence(&mut d.rng, 8, 25),
            }
            .write(&mut d.ld.buf);
        }
        d.ld.end_copy()
    }

    /// The `topic_allowed_users` rows of today's new private messages.
    pub(super) fn write_private_message_members(
        &mut self,
        d: &mut Day,
        new_topics: &[u32],
    ) -> Result<()> {
        d.ld.copy(TOPIC_ALLOWED_USER_COLUMNS)?;
        for &t in new_topics {
            if let Some(m) = self.pm_users.get(&t).cloned() {
                for u in m {
                    Row::new(&mut d.ld.buf)
                        .n(self.next_allowed_user)
                        .n(u)
                        .n(t)
                        .ts(d.t0)
                        .ts(d.t0)
                        .end();
                    self.next_allowed_user += 1;
                }
            }
        }
        d.ld.end_copy()
    }

    /// The `posts` rows of today's new posts.
    pub(super) fn write_new_posts(&self, d: &mut Day, new_posts: &[(u32, i64)]) -> Result<()> {
        d.ld.copy(POST_COLUMNS)?;
        for &(id, created) in new_posts {
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
            .write(&mut d.ld.buf);
            d.ld.maybe_flush()?;
        }
        d.ld.end_copy()
    }

    /// The `uploads` and `upload_references` rows of today's uploads.
    pub(super) fn write_new_uploads(&mut self, d: &mut Day, uploads: &[NewUpload]) -> Result<()> {
        d.ld.copy(UPLOAD_COLUMNS)?;
        for &(id, post, created) in uploads {
            let up = self.uploads[id as usize - 1].clone();
            let user = self.posts[post as usize - 1].user_id;
            self.upload_row(&mut d.ld.buf, &mut d.rng, &up, user, created, post);
        }
        d.ld.end_copy()?;
        d.ld.copy(UPLOAD_REFERENCE_COLUMNS)?;
        for &(id, post, created) in uploads {
            Row::new(&mut d.ld.buf)
                .n(self.next_upload_ref)
                .n(id)
                .s("Post")
                .n(post)
                .ts(created)
                .ts(created)
                .end();
            self.next_upload_ref += 1;
        }
        d.ld.end_copy()
    }
}
