//! The settle rule every source applies (the local folder, the same folder over SFTP, the S3
//! bucket), written once: the backups are listed twice a settle time apart, and going from the
//! newest down, the first one that is in both listings and finished is the newest complete
//! backup; the finished ones below it are the older backups. One that disappeared, changed in
//! between, or is otherwise unfinished (a `.tar.gz` whose `.tar` is still there) is passed over
//! when it is newer than the newest complete one (a later run takes it) and only left out when
//! it is older. Each source says what "changed" and "unfinished" mean for its listing.

use std::collections::BTreeMap;

/// The complete backups the rule found.
pub(super) struct Settled<T> {
    /// The newest complete backup, as the second listing saw it.
    pub newest: Option<T>,
    /// The older complete backups, oldest first.
    pub older: Vec<T>,
}

/// Applies the rule to `before` (the first listing's backups, oldest first) and `after` (the
/// second listing, by `key`). `unfinished(then, now)`: why a backup found in both listings is
/// not complete yet. `passed` gets each backup newer than the newest complete one that was
/// passed over, with the reason.
pub(super) fn settle<K: Ord, T: Clone>(
    before: Vec<T>,
    after: &BTreeMap<K, T>,
    key: impl Fn(&T) -> K,
    unfinished: impl Fn(&T, &T) -> Option<String>,
    mut passed: impl FnMut(T, String),
) -> Settled<T> {
    let mut settled = Settled {
        newest: None,
        older: Vec::new(),
    };
    for then in before.into_iter().rev() {
        let why = match after.get(&key(&then)) {
            None => "disappeared while waiting".to_string(),
            Some(now) => match unfinished(&then, now) {
                Some(why) => why,
                None => {
                    if settled.newest.is_none() {
                        settled.newest = Some(now.clone());
                    } else {
                        settled.older.push(now.clone());
                    }
                    continue;
                }
            },
        };
        if settled.newest.is_none() {
            passed(then, why);
        }
    }
    settled.older.reverse();
    settled
}
