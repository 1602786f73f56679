//! Day 0's posts and what hangs off them: revisions of the edited posts, uploads and their
//! references, notifications (replies to topic owners, likes) and `user_actions` (posts, likes).

use std::collections::BTreeMap;

use anyhow::Result;
use rand::Rng;

use super::History;
use crate::copy::Row;
use crate::forum::rows::*;
use crate::forum::*;

impl Forum {
    /// `posts`: every planned post at its planned version (an edit an hour after posting).
    pub(super) fn load_posts(&mut self, h: &mut History, ld: &mut Loader) -> Result<()> {
        ld.copy(POST_COLUMNS)?;
        for i in 0..self.posts.len() {
            let p = self.posts[i].clone();
            let id = i as u32 + 1;
            let body = self.post_body(id, p.version);
            let created = h.post_created[i];
            let edited = (p.version > 1).then(|| (created + 3_600_000_000).min(h.now - 1));
            PostRow {
                id,
                meta: &p,
                body: &body,
                created,
                updated: edited.unwrap_or(created),
                like_count: h.like_counts[i],
                reads: h.rows.random_range(1..200u32),
                deleted_at: p.deleted.then(|| created + MICROS_PER_DAY),
            }
            .write(&mut ld.buf);
            ld.maybe_flush()?;
        }
        ld.end_copy()
    }

    /// `post_revisions`: one for each edited post.
    pub(super) fn load_revisions(&mut self, h: &History, ld: &mut Loader) -> Result<()> {
        ld.copy(REVISION_COLUMNS)?;
        for (i, &created) in h.post_created.iter().enumerate() {
            let p = &self.posts[i];
            if p.version < 2 {
                continue;
            }
            let at = (created + 3_600_000_000).min(h.now - 1);
            let (id, user) = (i as u32 + 1, p.user_id);
            let row = self.revision_row(id, user, 2, at);
            self.next_revision += 1;
            ld.buf.push_str(&row);
            ld.maybe_flush()?;
        }
        ld.end_copy()
    }

    /// `uploads` and `upload_references` (each upload shown in its post).
    pub(super) fn load_uploads(&mut self, h: &mut History, ld: &mut Loader) -> Result<()> {
        ld.copy(UPLOAD_COLUMNS)?;
        let upload_posts: BTreeMap<u32, u32> =
            self.uploads.iter().map(|u| (u.id, u.post_id)).collect();
        for up in self.uploads.clone() {
            let post = up.post_id;
            let created = h.post_created[post as usize - 1];
            self.upload_row(
                &mut ld.buf,
                &mut h.rows,
                &up,
                self.posts[post as usize - 1].user_id,
                created,
                post,
            );
        }
        ld.end_copy()?;
        ld.copy(UPLOAD_REFERENCE_COLUMNS)?;
        for (&u, &p) in &upload_posts {
            let at = h.post_created[p as usize - 1];
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
        ld.end_copy()
    }

    /// `notifications`: a reply notifies the topic's owner, likes notify the author; older
    /// than 30 days all are read, newer ones half.
    pub(super) fn load_notifications(&mut self, h: &mut History, ld: &mut Loader) -> Result<()> {
        ld.copy(NOTIFICATION_COLUMNS)?;
        for i in 0..self.posts.len() {
            let p = self.posts[i].clone();
            let owner = self.topics[p.topic_id as usize - 1].user_id;
            let at = h.post_created[i];
            if p.post_number > 1 && p.user_id != owner {
                let row = self.notification_row(
                    2,
                    owner,
                    &p,
                    i as u32 + 1,
                    at,
                    at < h.now - 30 * MICROS_PER_DAY || h.rows.random_bool(0.5),
                );
                ld.buf.push_str(&row);
            }
            if h.like_counts[i] > 0 {
                let row = self.notification_row(
                    5,
                    p.user_id,
                    &p,
                    i as u32 + 1,
                    at + 600_000_000,
                    h.rows.random_bool(0.8),
                );
                ld.buf.push_str(&row);
            }
            ld.maybe_flush()?;
        }
        ld.end_copy()
    }

    /// `user_actions`: each post, and each like on both sides (liker and author).
    pub(super) fn load_user_actions(&mut self, h: &mut History, ld: &mut Loader) -> Result<()> {
        ld.copy(USER_ACTION_COLUMNS)?;
        for i in 0..self.posts.len() {
            let p = self.posts[i].clone();
            let at = h.post_created[i];
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
            for _ in 0..h.like_counts[i] {
                let liker = skewed(&mut h.rows, h.n_users);
                let at = at + h.rows.random_range(0..MICROS_PER_DAY);
                self.user_action_row(&mut ld.buf, 1, liker, &p, i as u32 + 1, liker, at);
                self.user_action_row(&mut ld.buf, 2, p.user_id, &p, i as u32 + 1, liker, at);
            }
            ld.maybe_flush()?;
        }
        ld.end_copy()
    }
}
