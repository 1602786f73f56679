//! One row of each table, as COPY text (shared by day 0 and the daily changes).

use rand::Rng;

use super::*;
use crate::copy::Row;

impl Forum {
    pub(super) fn user_row<R: Rng>(
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

    pub(super) fn email_row(&mut self, buf: &mut String, user: u32, created: i64) {
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

    pub(super) fn revision_row(&self, post_id: u32, user: u32, number: u32, at: i64) -> String {
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

    pub(super) fn notification_row(
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
    pub(super) fn user_action_row(
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

    pub(super) fn upload_row<R: Rng>(
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
            .s(&self.upload_url(up))
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
}

// The column lists of the COPY blocks that day 0 and the daily changes both write.
pub(super) const USER_COLUMNS: &str =
    "users (id, username, created_at, updated_at, name, seen_notification_id, \
    last_posted_at, password_hash, salt, active, username_lower, last_seen_at, admin, \
    last_emailed_at, trust_level, approved, previous_visit_at, views, ip_address, \
    moderator, uploaded_avatar_id, registration_ip_address, first_seen_at)";
pub(super) const USER_EMAIL_COLUMNS: &str =
    "user_emails (id, user_id, email, \"primary\", created_at, updated_at, normalized_email)";
pub(super) const USER_PROFILE_COLUMNS: &str =
    "user_profiles (user_id, location, website, bio_raw, bio_cooked, bio_cooked_version, views)";
pub(super) const TOPIC_ALLOWED_USER_COLUMNS: &str =
    "topic_allowed_users (id, user_id, topic_id, created_at, updated_at)";
pub(super) const UPLOAD_REFERENCE_COLUMNS: &str =
    "upload_references (id, upload_id, target_type, target_id, created_at, updated_at)";
pub(super) const USER_STATS_COLUMNS: &str =
    "user_stats (user_id, topics_entered, time_read, days_visited, \
    posts_read_count, likes_given, likes_received, new_since, first_post_created_at, post_count, \
    topic_count, first_unread_at, first_unread_pm_at, distinct_badge_count, draft_count)";
pub(super) const TOPIC_COLUMNS: &str =
    "topics (id, title, last_posted_at, created_at, updated_at, views, \
    posts_count, user_id, last_post_user_id, reply_count, highest_post_number, like_count, \
    category_id, bumped_at, archetype, slug, participant_count, word_count, excerpt, fancy_title)";
pub(super) const TOPIC_USER_COLUMNS: &str =
    "topic_users (user_id, topic_id, posted, last_read_post_number, \
    last_visited_at, first_visited_at, notification_level, total_msecs_viewed, id, liked, \
    bookmarked, last_posted_at)";
pub(super) const POST_COLUMNS: &str =
    "posts (id, user_id, topic_id, post_number, raw, cooked, created_at, \
    updated_at, reply_to_post_number, like_count, reads, sort_order, last_editor_id, \
    last_version_at, word_count, version, public_version, baked_at, baked_version, deleted_at, \
    score)";
pub(super) const REVISION_COLUMNS: &str =
    "post_revisions (id, user_id, post_id, modifications, number, created_at, updated_at, hidden)";
pub(super) const UPLOAD_COLUMNS: &str =
    "uploads (id, user_id, original_filename, filesize, width, height, \
    url, created_at, updated_at, sha1, origin, retain_hours, extension, thumbnail_width, \
    thumbnail_height, etag, secure, access_control_post_id, original_sha1, animated, \
    verification_status, dominant_color)";
pub(super) const NOTIFICATION_COLUMNS: &str =
    "notifications (id, notification_type, user_id, data, read, \
    created_at, updated_at, topic_id, post_number, post_action_id, high_priority)";
pub(super) const USER_ACTION_COLUMNS: &str =
    "user_actions (id, action_type, user_id, target_topic_id, \
    target_post_id, target_user_id, acting_user_id, created_at, updated_at)";

pub(super) const SITE_SETTINGS: &[(&str, u32, &str)] = &[
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

pub(super) fn profile_row<R: Rng>(buf: &mut String, rng: &mut R, id: u32) {
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

pub(super) fn yaml_str(s: &str) -> String {
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

pub(super) struct TopicRow<'a> {
    pub(super) id: u32,
    pub(super) title: &'a str,
    pub(super) created: i64,
    pub(super) last_posted: i64,
    pub(super) views: u32,
    pub(super) posts_count: u32,
    pub(super) user_id: u32,
    pub(super) last_post_user_id: u32,
    pub(super) like_count: u32,
    pub(super) category: Option<u32>,
    pub(super) pm: bool,
    pub(super) participants: u32,
    pub(super) word_count: u32,
    pub(super) excerpt: String,
}

impl TopicRow<'_> {
    pub(super) fn write(&self, buf: &mut String) {
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

pub(super) struct PostRow<'a> {
    pub(super) id: u32,
    pub(super) meta: &'a PostMeta,
    pub(super) body: &'a text::Body,
    pub(super) created: i64,
    pub(super) updated: i64,
    pub(super) like_count: u32,
    pub(super) reads: u32,
    pub(super) deleted_at: Option<i64>,
}

impl PostRow<'_> {
    pub(super) fn write(&self, buf: &mut String) {
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
