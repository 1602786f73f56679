//! Day 0's topics: the categories, every topic with its counters, who posted in or read each
//! (`topic_users`), and who may see each private message (`topic_allowed_users`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use rand::Rng;

use super::History;
use crate::copy::Row;
use crate::forum::rows::*;
use crate::forum::*;

impl Forum {
    /// `categories`, with the number of (public) topics each holds.
    pub(super) fn load_categories(&mut self, h: &mut History, ld: &mut Loader) -> Result<()> {
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
            let name = format!("{} {}", text::word(&mut h.rows), c);
            Row::new(&mut ld.buf)
                .n(c)
                .s(&name)
                .s(&format!("{:06X}", h.rows.random_range(0..0xFF_FFFFu32)))
                .n(cat_topics[c as usize - 1])
                .ts(h.start)
                .ts(h.start)
                .n(1)
                .s(&text::slug(&name))
                .s(&text::sentence(&mut h.rows, 5, 15))
                .n(c)
                .n(cat_topics[c as usize - 1] * 10)
                .end();
        }
        ld.end_copy()
    }

    /// `topics`, the counters agreeing with the planned posts and likes.
    pub(super) fn load_topics(&mut self, h: &mut History, ld: &mut Loader) -> Result<()> {
        ld.copy(TOPIC_COLUMNS)?;
        for (i, posts) in self.posts_of_topics().into_iter().enumerate() {
            let t = i as u32 + 1;
            let m = &self.topics[i];
            let last = *posts.end();
            let likes: u32 = h.like_counts[posts.clone()].iter().sum();
            let participants: BTreeSet<u32> = self.posts[posts].iter().map(|p| p.user_id).collect();
            let title = self.title(t);
            let r = TopicRow {
                id: t,
                title: &title,
                created: h.topic_created[i],
                last_posted: h.post_created[last],
                views: h.rows.random_range(1..50u32) * m.highest_post_number,
                posts_count: m.highest_post_number,
                user_id: m.user_id,
                last_post_user_id: self.posts[last].user_id,
                like_count: likes,
                category: (!m.pm).then_some((t - 1) % CATEGORIES + 1),
                pm: m.pm,
                participants: participants.len() as u32,
                word_count: m.highest_post_number * 60,
                excerpt: text::sentence(&mut h.rows, 8, 25),
            };
            r.write(&mut ld.buf);
            ld.maybe_flush()?;
        }
        ld.end_copy()
    }

    /// `topic_users`: the posters and, in public topics, up to three readers of every topic.
    pub(super) fn load_topic_users(&mut self, h: &mut History, ld: &mut Loader) -> Result<()> {
        ld.copy(TOPIC_USER_COLUMNS)?;
        for (i, posts) in self.posts_of_topics().into_iter().enumerate() {
            let t = i as u32 + 1;
            let m = self.topics[i].clone();
            let (first, last) = (*posts.start(), *posts.end());
            let mut seen: BTreeMap<u32, (bool, u32, i64)> = BTreeMap::new();
            for (j, p) in self.posts[posts].iter().enumerate() {
                let e = seen.entry(p.user_id).or_insert((
                    true,
                    p.post_number,
                    h.post_created[first + j],
                ));
                e.1 = p.post_number;
            }
            if !m.pm {
                for _ in 0..h.rows.random_range(0..4u32) {
                    let u = skewed(&mut h.rows, h.n_users);
                    seen.entry(u).or_insert((
                        false,
                        h.rows.random_range(1..=m.highest_post_number),
                        h.post_created[first],
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
                    .ts(h.post_created[last].max(first_visit))
                    .ts(first_visit)
                    .n(if posted { 3 } else { 1 })
                    .n(h.rows.random_range(1_000..900_000u32))
                    .n(id)
                    .b(h.rows.random_ratio(1, 5))
                    .b(h.rows.random_ratio(1, 40))
                    .ots(posted.then_some(first_visit))
                    .end();
                ld.maybe_flush()?;
            }
        }
        ld.end_copy()
    }

    /// `topic_allowed_users`: the members of every private message, by topic id.
    pub(super) fn load_private_message_members(
        &mut self,
        h: &History,
        ld: &mut Loader,
    ) -> Result<()> {
        ld.copy(TOPIC_ALLOWED_USER_COLUMNS)?;
        let mut pms: Vec<(&u32, &Vec<u32>)> = self.pm_users.iter().collect();
        pms.sort();
        let mut next_allowed = self.next_allowed_user;
        for (&t, members) in pms {
            for &u in members {
                let at = h.topic_created[t as usize - 1];
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
        ld.end_copy()
    }
}
