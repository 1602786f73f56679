//! Forum-like text from a built-in word list: titles, markdown-ish `raw` post bodies and the
//! HTML `cooked` form Discourse stores beside them. Only the PRNG decides, so a seed gives the
//! same text everywhere.
//!
//! Over 500 lines and still one file: more than half of it is the word list (one word a line,
//! as rustfmt writes it), and the functions below are the only ones drawing from it.

use rand::Rng;

const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "and",
    "of",
    "in",
    "is",
    "it",
    "that",
    "for",
    "you",
    "with",
    "on",
    "this",
    "be",
    "are",
    "not",
    "have",
    "but",
    "if",
    "or",
    "can",
    "was",
    "so",
    "at",
    "my",
    "we",
    "from",
    "just",
    "there",
    "what",
    "when",
    "would",
    "all",
    "about",
    "like",
    "they",
    "one",
    "do",
    "will",
    "an",
    "get",
    "more",
    "some",
    "think",
    "also",
    "how",
    "use",
    "any",
    "your",
    "no",
    "which",
    "then",
    "other",
    "out",
    "only",
    "time",
    "way",
    "new",
    "work",
    "need",
    "see",
    "after",
    "make",
    "could",
    "first",
    "know",
    "because",
    "really",
    "now",
    "good",
    "still",
    "people",
    "should",
    "well",
    "here",
    "same",
    "thanks",
    "problem",
    "issue",
    "update",
    "version",
    "server",
    "backup",
    "forum",
    "post",
    "topic",
    "category",
    "plugin",
    "theme",
    "setting",
    "email",
    "user",
    "admin",
    "moderator",
    "install",
    "upgrade",
    "docker",
    "container",
    "rebuild",
    "restore",
    "database",
    "upload",
    "image",
    "link",
    "search",
    "notification",
    "mobile",
    "browser",
    "cache",
    "error",
    "log",
    "memory",
    "disk",
    "space",
    "performance",
    "slow",
    "fast",
    "config",
    "domain",
    "ssl",
    "certificate",
    "nginx",
    "redis",
    "postgres",
    "sidekiq",
    "job",
    "queue",
    "migration",
    "feature",
    "request",
    "bug",
    "report",
    "fix",
    "release",
    "beta",
    "stable",
    "branch",
    "commit",
    "change",
    "test",
    "try",
    "tried",
    "works",
    "working",
    "broken",
    "again",
    "yesterday",
    "today",
    "week",
    "month",
    "daily",
    "weekly",
    "maybe",
    "probably",
    "exactly",
    "seems",
    "looks",
    "sure",
    "idea",
    "question",
    "answer",
    "solution",
    "help",
    "please",
    "sorry",
    "great",
    "nice",
    "agree",
    "disagree",
    "point",
    "example",
    "case",
    "reason",
    "different",
    "similar",
    "better",
    "worse",
    "old",
    "recent",
    "large",
    "small",
    "number",
    "count",
    "list",
    "page",
    "site",
    "community",
    "member",
    "group",
    "badge",
    "trust",
    "level",
    "like",
    "reply",
    "quote",
    "edit",
    "draft",
    "message",
    "private",
    "public",
    "read",
    "unread",
    "bookmark",
    "tag",
    "pinned",
    "closed",
    "archived",
    "summary",
    "digest",
    "mailing",
    "mode",
    "locale",
    "language",
    "translation",
    "timezone",
    "schedule",
    "event",
    "calendar",
    "poll",
    "vote",
    "chat",
    "channel",
    "thread",
    "garden",
    "tomato",
    "bicycle",
    "camera",
    "lens",
    "photo",
    "recipe",
    "coffee",
    "bread",
    "river",
    "mountain",
    "trail",
    "weather",
    "winter",
    "summer",
    "music",
    "guitar",
    "piano",
    "book",
    "chapter",
    "game",
    "board",
    "card",
    "rule",
    "score",
    "team",
    "player",
    "season",
    "station",
    "train",
    "engine",
    "battery",
    "solar",
    "panel",
    "roof",
    "window",
    "door",
    "kitchen",
    "paint",
    "wood",
    "glass",
    "steel",
    "plastic",
    "paper",
    "market",
    "price",
    "cost",
    "budget",
    "plan",
];

const NAMES: &[&str] = &[
    "alex", "sam", "jo", "kim", "lee", "max", "ana", "eva", "ivan", "lina", "omar", "rui", "mia",
    "noah", "zoe", "ben", "leo", "ada", "finn", "ines", "yuki", "ravi", "tom", "nora", "hugo",
    "ella", "kai", "lars", "maya", "otto", "paul", "rosa", "sven", "tara", "uma", "vera", "will",
];

const PLACES: &[&str] = &[
    "Berlin", "Lisbon", "Osaka", "Toronto", "Nairobi", "Lyon", "Austin", "Porto", "Oslo", "Pune",
    "Quito", "Seoul", "Perth", "Zurich", "Dublin", "Krakow", "Bergen", "Leeds", "Turin", "Utrecht",
];

/// A random word from the list.
pub fn word<R: Rng>(rng: &mut R) -> &'static str {
    WORDS[rng.random_range(0..WORDS.len())]
}

/// A sentence of `min..=max` words, capitalised, with a full stop.
pub fn sentence<R: Rng>(rng: &mut R, min: usize, max: usize) -> String {
    let n = rng.random_range(min..=max);
    let mut s = String::with_capacity(n * 7);
    for i in 0..n {
        let w = word(rng);
        if i == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                s.extend(f.to_uppercase());
                s.push_str(c.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(w);
        }
    }
    s.push(if rng.random_ratio(1, 8) { '?' } else { '.' });
    s
}

/// A topic title (no final punctuation).
pub fn title<R: Rng>(rng: &mut R) -> String {
    let mut t = sentence(rng, 3, 9);
    t.pop();
    t
}

/// The URL slug Discourse derives from a title.
pub fn slug(title: &str) -> String {
    let mut s = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
}

/// A username that is unique for `id`.
pub fn username<R: Rng>(rng: &mut R, id: u32) -> String {
    let a = NAMES[rng.random_range(0..NAMES.len())];
    let b = WORDS[rng.random_range(0..WORDS.len())];
    format!("{a}_{b}{id}")
}

/// A display name.
pub fn display_name<R: Rng>(rng: &mut R) -> String {
    let a = NAMES[rng.random_range(0..NAMES.len())];
    let b = NAMES[rng.random_range(0..NAMES.len())];
    format!(
        "{}{} {}{}",
        &a[..1].to_uppercase(),
        &a[1..],
        &b[..1].to_uppercase(),
        &b[1..]
    )
}

/// A city name for profiles.
pub fn place<R: Rng>(rng: &mut R) -> &'static str {
    PLACES[rng.random_range(0..PLACES.len())]
}

/// One post body: markdown-ish `raw` and its HTML `cooked` form, built together so they agree.
pub struct Body {
    /// What the author typed.
    pub raw: String,
    /// What Discourse renders and stores.
    pub cooked: String,
    /// Words in `raw`, for `word_count` columns.
    pub words: u32,
}

/// A post body of a few paragraphs; sometimes a list, a quote, a code block, a link, or an
/// image referring to `upload` (its `upload://` short URL and real `/uploads/...` path).
pub fn body<R: Rng>(rng: &mut R, upload: Option<(&str, &str)>) -> Body {
    let mut raw = String::new();
    let mut cooked = String::new();
    let mut words = 0u32;
    let paragraphs = 1 + rng.random_range(0..4usize) + usize::from(rng.random_ratio(1, 4)) * 3;
    for p in 0..paragraphs {
        if p > 0 {
            raw.push_str("\n\n");
            cooked.push('\n');
        }
        match rng.random_range(0..12u32) {
            0 => {
                let items = rng.random_range(2..6);
                cooked.push_str("<ul>\n");
                for i in 0..items {
                    let s = sentence(rng, 2, 8);
                    words += s.split(' ').count() as u32;
                    if i > 0 {
                        raw.push('\n');
                    }
                    raw.push_str("* ");
                    raw.push_str(&s);
                    cooked.push_str("<li>");
                    cooked.push_str(&s);
                    cooked.push_str("</li>\n");
                }
                cooked.push_str("</ul>");
            }
            1 => {
                let s = sentence(rng, 5, 20);
                words += s.split(' ').count() as u32;
                raw.push_str("> ");
                raw.push_str(&s);
                cooked.push_str("<blockquote>\n<p>");
                cooked.push_str(&s);
                cooked.push_str("</p>\n</blockquote>");
            }
            2 => {
                let n = rng.random_range(1..5);
                let mut code = String::new();
                for i in 0..n {
                    if i > 0 {
                        code.push('\n');
                    }
                    code.push_str(&format!(
                        "{} = {}({})",
                        word(rng),
                        word(rng),
                        rng.random_range(0..10_000u32)
                    ));
                }
                raw.push_str("```\n");
                raw.push_str(&code);
                raw.push_str("\n```");
                cooked.push_str("<pre><code class=\"lang-auto\">");
                cooked.push_str(&code);
                cooked.push_str("</code></pre>");
            }
            3 => {
                let w = word(rng);
                let s = sentence(rng, 4, 14);
                words += s.split(' ').count() as u32 + 1;
                let url = format!(
                    "https://example.{}/{}/{}",
                    ["com", "org", "net"][rng.random_range(0..3)],
                    w,
                    rng.random_range(1..100_000u32)
                );
                raw.push_str(&format!("{s} See [{w}]({url})."));
                cooked.push_str(&format!(
                    "<p>{s} See <a href=\"{url}\" rel=\"noopener nofollow ugc\">{w}</a>.</p>"
                ));
            }
            _ => {
                let sentences = rng.random_range(1..6);
                let mut para = String::new();
                for i in 0..sentences {
                    if i > 0 {
                        para.push(' ');
                    }
                    let s = sentence(rng, 4, 18);
                    words += s.split(' ').count() as u32;
                    para.push_str(&s);
                }
                raw.push_str(&para);
                cooked.push_str("<p>");
                cooked.push_str(&para);
                cooked.push_str("</p>");
            }
        }
    }
    if let Some((short, url)) = upload {
        raw.push_str(&format!("\n\n![image|690x460]({short})"));
        cooked.push_str(&format!(
            "\n<p><div class=\"lightbox-wrapper\"><a class=\"lightbox\" href=\"{url}\" \
             data-download-href=\"{short}\"><img src=\"{url}\" alt=\"image\" width=\"690\" \
             height=\"460\"></a></div></p>"
        ));
    }
    Body { raw, cooked, words }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn same_seed_gives_same_text() {
        let a = body(&mut ChaCha8Rng::seed_from_u64(7), None);
        let b = body(&mut ChaCha8Rng::seed_from_u64(7), None);
        assert_eq!(a.raw, b.raw);
        assert_eq!(a.cooked, b.cooked);
        assert!(a.words > 0);
    }

    #[test]
    fn slug_is_lowercase_and_dashed() {
        assert_eq!(
            slug("How do I  restore, please?"),
            "how-do-i-restore-please"
        );
    }
}
