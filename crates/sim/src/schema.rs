//! The Discourse-like schema in `public`: the tables, sequences and indexes whose shape decides
//! what a Discourse dump looks like (column order and types follow Discourse's own tables, cut
//! down to the columns that matter for size and churn).

/// Migration versions (`schema_migrations.version`) present on day 0, oldest first. The newest is
/// the `-v<migration>` of a backup's file name.
pub const BASE_MIGRATIONS: &[&str] = &[
    "20000225050318",
    "20120311163914",
    "20130204000159",
    "20140120155706",
    "20160201181320",
    "20180327062911",
    "20190313171338",
    "20200409033412",
    "20210915215041",
    "20220304162250",
    "20230130010335",
    "20240112043325",
    "20241031023045",
    "20250311095432",
    "20250612081530",
];

/// DDL creating every table, sequence and index (run once in an empty database).
///
/// Discourse installs the `hstore` and `pg_trgm` extensions (its db/structure.sql), and its dump
/// (`--schema=public`) uses them without creating them: a trigram index here makes the simulated
/// dump need them too, as a real one does on restore into a fresh database.
pub const DDL: &str = r#"
CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE schema_migrations (version character varying NOT NULL PRIMARY KEY);

CREATE TABLE site_settings (
    id serial PRIMARY KEY,
    name character varying NOT NULL,
    data_type integer NOT NULL,
    value text,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);
CREATE UNIQUE INDEX index_site_settings_on_name ON site_settings (name);

-- Written by every backup just before pg_dump (lib/backup_restore/creator.rb, update_metadata);
-- columns as app/models/backup_metadata.rb's schema comment lists them.
CREATE TABLE backup_metadata (
    id bigserial PRIMARY KEY,
    name character varying NOT NULL,
    value character varying
);

CREATE TABLE users (
    id serial PRIMARY KEY,
    username character varying(60) NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    name character varying,
    seen_notification_id integer DEFAULT 0 NOT NULL,
    last_posted_at timestamp without time zone,
    password_hash character varying(64),
    salt character varying(32),
    active boolean DEFAULT false NOT NULL,
    username_lower character varying(60) NOT NULL,
    last_seen_at timestamp without time zone,
    admin boolean DEFAULT false NOT NULL,
    last_emailed_at timestamp without time zone,
    trust_level integer NOT NULL,
    approved boolean DEFAULT false NOT NULL,
    previous_visit_at timestamp without time zone,
    suspended_at timestamp without time zone,
    suspended_till timestamp without time zone,
    date_of_birth date,
    views integer DEFAULT 0 NOT NULL,
    flag_level integer DEFAULT 0 NOT NULL,
    ip_address inet,
    moderator boolean DEFAULT false,
    title character varying,
    uploaded_avatar_id integer,
    locale character varying(10),
    primary_group_id integer,
    registration_ip_address inet,
    staged boolean DEFAULT false NOT NULL,
    first_seen_at timestamp without time zone,
    silenced_till timestamp without time zone,
    group_locked_trust_level integer,
    manual_locked_trust_level integer,
    secure_identifier character varying,
    flair_group_id integer
);
CREATE UNIQUE INDEX index_users_on_username ON users (username);
CREATE UNIQUE INDEX index_users_on_username_lower ON users (username_lower);
CREATE INDEX index_users_on_last_seen_at ON users (last_seen_at);

CREATE TABLE user_emails (
    id serial PRIMARY KEY,
    user_id integer NOT NULL,
    email character varying(513) NOT NULL,
    "primary" boolean DEFAULT false NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    normalized_email character varying
);
CREATE UNIQUE INDEX index_user_emails_on_email ON user_emails (lower(email));
CREATE INDEX index_user_emails_on_user_id ON user_emails (user_id);

CREATE TABLE user_profiles (
    user_id integer NOT NULL PRIMARY KEY,
    location character varying(3000),
    website character varying(3000),
    bio_raw text,
    bio_cooked text,
    dismissed_banner_key integer,
    bio_cooked_version integer,
    badge_granted_title boolean DEFAULT false,
    views integer DEFAULT 0 NOT NULL,
    profile_background_upload_id integer,
    card_background_upload_id integer,
    granted_title_badge_id bigint,
    featured_topic_id integer
);

CREATE TABLE user_stats (
    user_id integer NOT NULL PRIMARY KEY,
    topics_entered integer DEFAULT 0 NOT NULL,
    time_read integer DEFAULT 0 NOT NULL,
    days_visited integer DEFAULT 0 NOT NULL,
    posts_read_count integer DEFAULT 0 NOT NULL,
    likes_given integer DEFAULT 0 NOT NULL,
    likes_received integer DEFAULT 0 NOT NULL,
    new_since timestamp without time zone NOT NULL,
    read_faq timestamp without time zone,
    first_post_created_at timestamp without time zone,
    post_count integer DEFAULT 0 NOT NULL,
    topic_count integer DEFAULT 0 NOT NULL,
    bounce_score double precision DEFAULT 0.0 NOT NULL,
    reset_bounce_score_after timestamp without time zone,
    flags_agreed integer DEFAULT 0 NOT NULL,
    flags_disagreed integer DEFAULT 0 NOT NULL,
    flags_ignored integer DEFAULT 0 NOT NULL,
    first_unread_at timestamp without time zone NOT NULL,
    distinct_badge_count integer DEFAULT 0 NOT NULL,
    first_unread_pm_at timestamp without time zone NOT NULL,
    digest_attempted_at timestamp without time zone,
    post_edits_count integer,
    draft_count integer DEFAULT 0 NOT NULL,
    pending_posts_count integer DEFAULT 0 NOT NULL
);

CREATE TABLE categories (
    id serial PRIMARY KEY,
    name character varying(50) NOT NULL,
    color character varying(6) DEFAULT '0088CC' NOT NULL,
    topic_id integer,
    topic_count integer DEFAULT 0 NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    user_id integer NOT NULL,
    topics_year integer DEFAULT 0,
    topics_month integer DEFAULT 0,
    topics_week integer DEFAULT 0,
    slug character varying NOT NULL,
    description text,
    text_color character varying(6) DEFAULT 'FFFFFF' NOT NULL,
    read_restricted boolean DEFAULT false NOT NULL,
    position integer,
    parent_category_id integer,
    posts_year integer DEFAULT 0,
    posts_month integer DEFAULT 0,
    posts_week integer DEFAULT 0,
    post_count integer DEFAULT 0 NOT NULL,
    latest_post_id integer,
    latest_topic_id integer
);
CREATE UNIQUE INDEX unique_index_categories_on_name ON categories (name);

CREATE TABLE topics (
    id serial PRIMARY KEY,
    title character varying NOT NULL,
    last_posted_at timestamp without time zone,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    views integer DEFAULT 0 NOT NULL,
    posts_count integer DEFAULT 0 NOT NULL,
    user_id integer,
    last_post_user_id integer NOT NULL,
    reply_count integer DEFAULT 0 NOT NULL,
    featured_user1_id integer,
    featured_user2_id integer,
    featured_user3_id integer,
    deleted_at timestamp without time zone,
    highest_post_number integer DEFAULT 0 NOT NULL,
    like_count integer DEFAULT 0 NOT NULL,
    incoming_link_count integer DEFAULT 0 NOT NULL,
    category_id integer,
    visible boolean DEFAULT true NOT NULL,
    moderator_posts_count integer DEFAULT 0 NOT NULL,
    closed boolean DEFAULT false NOT NULL,
    archived boolean DEFAULT false NOT NULL,
    bumped_at timestamp without time zone NOT NULL,
    has_summary boolean DEFAULT false NOT NULL,
    archetype character varying DEFAULT 'regular' NOT NULL,
    featured_user4_id integer,
    notify_moderators_count integer DEFAULT 0 NOT NULL,
    spam_count integer DEFAULT 0 NOT NULL,
    pinned_at timestamp without time zone,
    score double precision,
    percent_rank double precision DEFAULT 1.0 NOT NULL,
    subtype character varying,
    slug character varying,
    deleted_by_id integer,
    participant_count integer DEFAULT 1,
    word_count integer,
    excerpt character varying,
    pinned_globally boolean DEFAULT false NOT NULL,
    pinned_until timestamp without time zone,
    fancy_title character varying,
    highest_staff_post_number integer DEFAULT 0 NOT NULL,
    featured_link character varying,
    reviewable_score double precision DEFAULT 0.0 NOT NULL,
    image_upload_id bigint,
    slow_mode_seconds integer DEFAULT 0 NOT NULL,
    bannered_until timestamp without time zone,
    external_id character varying,
    visibility_reason_id integer,
    locale character varying(20)
);
CREATE INDEX idx_topics_front_page ON topics (deleted_at, visible, archetype, category_id, id);
CREATE INDEX index_topics_on_bumped_at ON topics (bumped_at DESC);
CREATE INDEX index_topics_on_user_id ON topics (user_id);
CREATE INDEX index_topics_on_title_trgm ON topics USING gin (title gin_trgm_ops);

CREATE TABLE topic_users (
    user_id integer NOT NULL,
    topic_id integer NOT NULL,
    posted boolean DEFAULT false NOT NULL,
    last_read_post_number integer,
    last_visited_at timestamp without time zone,
    first_visited_at timestamp without time zone,
    notification_level integer DEFAULT 1 NOT NULL,
    notifications_changed_at timestamp without time zone,
    notifications_reason_id integer,
    total_msecs_viewed integer DEFAULT 0 NOT NULL,
    cleared_pinned_at timestamp without time zone,
    id serial PRIMARY KEY,
    last_emailed_post_number integer,
    liked boolean DEFAULT false,
    bookmarked boolean DEFAULT false,
    last_posted_at timestamp without time zone
);
CREATE UNIQUE INDEX index_topic_users_on_topic_id_and_user_id ON topic_users (topic_id, user_id);
CREATE INDEX index_topic_users_on_user_id_and_topic_id ON topic_users (user_id, topic_id);

CREATE TABLE topic_allowed_users (
    id serial PRIMARY KEY,
    user_id integer NOT NULL,
    topic_id integer NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);
CREATE UNIQUE INDEX index_topic_allowed_users_on_topic_id_and_user_id ON topic_allowed_users (topic_id, user_id);

CREATE TABLE posts (
    id serial PRIMARY KEY,
    user_id integer,
    topic_id integer NOT NULL,
    post_number integer NOT NULL,
    raw text NOT NULL,
    cooked text NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    reply_to_post_number integer,
    reply_count integer DEFAULT 0 NOT NULL,
    quote_count integer DEFAULT 0 NOT NULL,
    deleted_at timestamp without time zone,
    off_topic_count integer DEFAULT 0 NOT NULL,
    like_count integer DEFAULT 0 NOT NULL,
    incoming_link_count integer DEFAULT 0 NOT NULL,
    bookmark_count integer DEFAULT 0 NOT NULL,
    score double precision,
    reads integer DEFAULT 0 NOT NULL,
    post_type integer DEFAULT 1 NOT NULL,
    sort_order integer,
    last_editor_id integer,
    hidden boolean DEFAULT false NOT NULL,
    hidden_reason_id integer,
    notify_moderators_count integer DEFAULT 0 NOT NULL,
    spam_count integer DEFAULT 0 NOT NULL,
    illegal_count integer DEFAULT 0 NOT NULL,
    inappropriate_count integer DEFAULT 0 NOT NULL,
    last_version_at timestamp without time zone NOT NULL,
    user_deleted boolean DEFAULT false NOT NULL,
    reply_to_user_id integer,
    percent_rank double precision DEFAULT 1.0,
    notify_user_count integer DEFAULT 0 NOT NULL,
    like_score integer DEFAULT 0 NOT NULL,
    deleted_by_id integer,
    edit_reason character varying,
    word_count integer,
    version integer DEFAULT 1 NOT NULL,
    cook_method integer DEFAULT 1 NOT NULL,
    wiki boolean DEFAULT false NOT NULL,
    baked_at timestamp without time zone,
    baked_version integer,
    hidden_at timestamp without time zone,
    self_edits integer DEFAULT 0 NOT NULL,
    reply_quoted boolean DEFAULT false NOT NULL,
    via_email boolean DEFAULT false NOT NULL,
    raw_email text,
    public_version integer DEFAULT 1 NOT NULL,
    action_code character varying,
    locked_by_id integer,
    image_upload_id bigint,
    outbound_message_id character varying,
    locale character varying(20)
);
CREATE UNIQUE INDEX index_posts_on_topic_id_and_post_number ON posts (topic_id, post_number);
CREATE INDEX index_posts_on_user_id_and_created_at ON posts (user_id, created_at);

CREATE TABLE post_revisions (
    id serial PRIMARY KEY,
    user_id integer,
    post_id integer,
    modifications text,
    number integer,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    hidden boolean DEFAULT false NOT NULL
);
CREATE INDEX index_post_revisions_on_post_id_and_number ON post_revisions (post_id, number);

CREATE TABLE uploads (
    id serial PRIMARY KEY,
    user_id integer NOT NULL,
    original_filename character varying NOT NULL,
    filesize bigint NOT NULL,
    width integer,
    height integer,
    url character varying NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    sha1 character varying(40),
    origin character varying(1000),
    retain_hours integer,
    extension character varying(10),
    thumbnail_width integer,
    thumbnail_height integer,
    etag character varying,
    secure boolean DEFAULT false NOT NULL,
    access_control_post_id bigint,
    original_sha1 character varying,
    animated boolean,
    verification_status integer DEFAULT 1 NOT NULL,
    security_last_changed_at timestamp without time zone,
    security_last_changed_reason character varying,
    dominant_color text
);
CREATE UNIQUE INDEX index_uploads_on_sha1 ON uploads (sha1);
CREATE INDEX index_uploads_on_original_sha1 ON uploads (original_sha1);
CREATE INDEX index_uploads_on_url ON uploads (url);

CREATE TABLE upload_references (
    id bigserial PRIMARY KEY,
    upload_id bigint NOT NULL,
    target_type character varying NOT NULL,
    target_id bigint NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);
CREATE UNIQUE INDEX index_upload_references_on_upload_and_target ON upload_references (upload_id, target_type, target_id);

CREATE TABLE notifications (
    id serial PRIMARY KEY,
    notification_type integer NOT NULL,
    user_id integer NOT NULL,
    data character varying(1000) NOT NULL,
    read boolean DEFAULT false NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    topic_id integer,
    post_number integer,
    post_action_id integer,
    high_priority boolean DEFAULT false NOT NULL
);
CREATE INDEX idx_notifications_speedup_unread_count ON notifications (user_id, notification_type) WHERE (NOT read);
CREATE INDEX index_notifications_on_user_id_and_created_at ON notifications (user_id, created_at);

CREATE TABLE user_actions (
    id serial PRIMARY KEY,
    action_type integer NOT NULL,
    user_id integer NOT NULL,
    target_topic_id integer,
    target_post_id integer,
    target_user_id integer,
    acting_user_id integer,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);
CREATE INDEX index_user_actions_on_acting_user_id ON user_actions (acting_user_id);
CREATE INDEX index_user_actions_on_user_id_and_action_type ON user_actions (user_id, action_type);
"#;

/// Tables in the order they are filled on day 0 (all of them are in `public`).
pub const TABLES: &[&str] = &[
    "schema_migrations",
    "site_settings",
    "users",
    "user_emails",
    "user_profiles",
    "user_stats",
    "categories",
    "topics",
    "topic_users",
    "topic_allowed_users",
    "posts",
    "post_revisions",
    "uploads",
    "upload_references",
    "notifications",
    "user_actions",
    "backup_metadata",
];
