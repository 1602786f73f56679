//! What the types alone cannot check in a config ([`Config::validate`], at load: a problem
//! stops the whole run), and the files a site names ([`Config::check_site_files`], per site:
//! a missing file fails that site only).

use std::path::Path;

use super::{Config, ConfigError};

impl Config {
    /// Checks values that the types alone cannot.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(Err(e)) = self.pricing.as_ref().map(|p| p.validate()) {
            return Err(self.error("pricing", e));
        }
        if self.sites.is_empty() {
            return Err(self.error("sites", "no site configured (add a [sites.NAME] table)"));
        }
        for (name, site) in &self.sites {
            let key = |k: &str| format!("sites.{name}.{k}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(self.error(
                    format!("sites.{name:?}"),
                    "site names may only contain letters, digits, '-', '_' and '.'",
                ));
            }
            let src = &site.source;
            if src.folder.is_some() && src.s3.is_some() {
                return Err(self.error(key("source"), "give either `folder` or `s3`, not both"));
            }
            if let Some(ssh) = &src.ssh {
                if src.folder.is_some() || src.s3.is_some() {
                    return Err(self.error(
                        key("source.ssh"),
                        "give only one of `folder`, `s3` and `ssh` (the remote folder is the \
                         path in source.ssh.location)",
                    ));
                }
                if let Err((k, m)) = ssh.validate() {
                    return Err(self.error(key(&format!("source.ssh.{k}")), m));
                }
            }
            if let Some(folder) = &src.folder {
                if !folder.is_absolute() {
                    return Err(self.error(
                        key("source.folder"),
                        format!("{}: must be an absolute path", folder.display()),
                    ));
                }
            }
            if src.backfill_limit == 0 {
                return Err(self.error(
                    key("source.backfill_limit"),
                    "must be at least 1 (the newest backup)",
                ));
            }
            if let Some(s3) = &src.s3 {
                if s3.bucket.trim().is_empty() {
                    return Err(self.error(key("source.s3.bucket"), "must not be empty"));
                }
            }
            if let Some(api) = &src.api {
                if !(api.url.starts_with("http://") || api.url.starts_with("https://")) {
                    return Err(self.error(
                        key("source.api.url"),
                        format!("{:?}: expected an http:// or https:// URL", api.url),
                    ));
                }
                if api.poll_interval.is_zero() {
                    return Err(self.error(key("source.api.poll_interval"), "must be > 0"));
                }
                if api.timeout < api.poll_interval {
                    return Err(
                        self.error(key("source.api.timeout"), "must be at least poll_interval")
                    );
                }
            }
            match (&site.repository, &site.tarsnap) {
                (Some(r), None) => {
                    if r.location.trim().is_empty() {
                        return Err(self.error(key("repository.location"), "must not be empty"));
                    }
                }
                (None, Some(t)) => {
                    if site.retention.is_some() {
                        return Err(self.error(
                            key("retention"),
                            "a Tarsnap site keeps archives by tarsnap.keep_last / \
                             tarsnap.keep_daily (with tarsnap.admin_keyfile)",
                        ));
                    }
                    if site.check.is_some() {
                        return Err(self.error(
                            key("check"),
                            "Tarsnap checks its archives itself (`tarsnap --fsck` with the \
                             admin key); leave [check] out for a Tarsnap site",
                        ));
                    }
                    if site.drill.is_some() && t.admin_keyfile.is_none() {
                        return Err(self.error(
                            key("drill"),
                            "a drill reads the archive back: it needs tarsnap.admin_keyfile (a \
                             key with read rights)",
                        ));
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(self.error(
                        key("tarsnap"),
                        "give either [repository] or [tarsnap] for a site, not both",
                    ))
                }
                (None, None) => {
                    return Err(self.error(
                        key("repository"),
                        "missing: give [repository] (location, password_file) or [tarsnap]",
                    ))
                }
            }
            if let Some(r) = &site.repository {
                if r.s3_credentials_file.is_some() && !r.location.starts_with("s3:") {
                    return Err(self.error(
                        key("repository.s3_credentials_file"),
                        "only used with an s3: location",
                    ));
                }
                if r.rest_password_file.is_some() && !r.location.starts_with("rest:") {
                    return Err(self.error(
                        key("repository.rest_password_file"),
                        "only used with a rest: location",
                    ));
                }
            }
            if let Some(c) = &site.copy_to {
                let Some(first) = &site.repository else {
                    return Err(self.error(
                        key("copy_to"),
                        "needs the site's [repository] (the copy is made from it)",
                    ));
                };
                if c.location.trim().is_empty() {
                    return Err(self.error(key("copy_to.location"), "must not be empty"));
                }
                if crate::lock::location_key(&c.location)
                    == crate::lock::location_key(&first.location)
                {
                    return Err(self.error(
                        key("copy_to.location"),
                        "names the site's own repository; give a second one",
                    ));
                }
                if c.s3_credentials_file.is_some() && !c.location.starts_with("s3:") {
                    return Err(self.error(
                        key("copy_to.s3_credentials_file"),
                        "only used with an s3: location",
                    ));
                }
                if c.rest_password_file.is_some() && !c.location.starts_with("rest:") {
                    return Err(self.error(
                        key("copy_to.rest_password_file"),
                        "only used with a rest: location",
                    ));
                }
            }
            if let Some(r) = &site.retention {
                if r.forget && r.is_empty() {
                    // Forgetting with no keep rule would delete every snapshot.
                    return Err(self.error(
                        key("retention"),
                        "forget = true needs at least one keep_* rule greater than 0",
                    ));
                }
                if r.prune && !r.forget {
                    return Err(
                        self.error(key("retention.prune"), "prune = true needs forget = true")
                    );
                }
            }
            if let Some(c) = &site.check {
                if c.every.is_zero() {
                    return Err(self.error(key("check.every"), "must be > 0"));
                }
            }
            if let Some(d) = &site.drill {
                if d.every.is_zero() {
                    return Err(self.error(key("drill.every"), "must be > 0"));
                }
                if let Some(t) = &d.put_back {
                    if site.repository.is_none() {
                        return Err(self.error(
                            key("drill.put_back"),
                            "needs a repository site (a Tarsnap site's archive is restored by \
                             `tarsnap -x`)",
                        ));
                    }
                    crate::putback::Target::parse(t)
                        .map_err(|e| self.error(key("drill.put_back"), e.to_string()))?;
                }
                if let Some(r) = &d.put_back_restore {
                    if d.put_back.is_none() {
                        return Err(self.error(
                            key("drill.put_back_restore"),
                            "needs drill.put_back (the staging forum's backups folder or bucket)",
                        ));
                    }
                    if !(r.url.starts_with("https://") || r.url.starts_with("http://")) {
                        return Err(self.error(
                            key("drill.put_back_restore.url"),
                            "expected the staging forum's http(s):// URL",
                        ));
                    }
                }
                if let Some(url) = &d.postgres_url {
                    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                        return Err(self.error(
                            key("drill.postgres_url"),
                            "expected a postgres:// or postgresql:// URL",
                        ));
                    }
                }
            }
            let m = &site.monitoring;
            for (k, v) in [
                ("ping_url", &m.ping_url),
                ("ping_start", &m.ping_start),
                ("ping_success", &m.ping_success),
                ("ping_fail", &m.ping_fail),
            ] {
                if let Some(url) = v {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(self.error(
                            key(&format!("monitoring.{k}")),
                            format!("{url:?}: expected an http:// or https:// URL"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the files of every site ([`Config::check_site_files`]); the first problem is the
    /// error.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        self.sites
            .keys()
            .try_for_each(|name| self.check_site_files(name))
    }

    /// Checks that the files site `name` names exist and are readable (password file, key and
    /// credentials files, the local source folder), naming the key and the path when one is
    /// not. An unknown site name is an error naming the `sites` key.
    pub fn check_site_files(&self, name: &str) -> Result<(), ConfigError> {
        let site = self
            .sites
            .get(name)
            .ok_or_else(|| self.error(format!("sites.{name}"), "no such site"))?;
        let key = |k: &str| format!("sites.{name}.{k}");
        // Each of these holds a secret: also refused or warned about when others can read it.
        let readable = |k: &str, p: &Path| -> Result<(), ConfigError> {
            std::fs::File::open(p)
                .map(drop)
                .and_then(|()| crate::secret_file::check(p, &key(k)))
                .map_err(|e| self.error(key(k), format!("{}: {e}", p.display())))
        };
        if let Some(r) = &site.repository {
            readable("repository.password_file", &r.password_file)?;
            if let Some(f) = &r.s3_credentials_file {
                readable("repository.s3_credentials_file", f)?;
            }
            if let Some(f) = &r.rest_password_file {
                readable("repository.rest_password_file", f)?;
            }
        }
        if let Some(r) = &site.copy_to {
            readable("copy_to.password_file", &r.password_file)?;
            if let Some(f) = &r.s3_credentials_file {
                readable("copy_to.s3_credentials_file", f)?;
            }
            if let Some(f) = &r.rest_password_file {
                readable("copy_to.rest_password_file", f)?;
            }
        }
        if let Some(t) = &site.tarsnap {
            readable("tarsnap.keyfile", &t.keyfile)?;
            if let Some(k) = &t.admin_keyfile {
                readable("tarsnap.admin_keyfile", k)?;
            }
        }
        if let Some(api) = &site.source.api {
            if let Some(f) = &api.key_file {
                readable("source.api.key_file", f)?;
            }
        }
        if let Some(s3) = &site.source.s3 {
            if let Some(f) = &s3.credentials_file {
                readable("source.s3.credentials_file", f)?;
            }
        }
        if let Some(ssh) = &site.source.ssh {
            if let Some(f) = &ssh.identity_file {
                readable("source.ssh.identity_file", f)?;
            }
        }
        if site.source.s3.is_none() && site.source.ssh.is_none() {
            let folder = site.source.folder_or_default();
            match std::fs::metadata(&folder) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(self.error(
                        key("source.folder"),
                        format!("{}: not a directory", folder.display()),
                    ))
                }
                Err(e) => {
                    return Err(
                        self.error(key("source.folder"), format!("{}: {e}", folder.display()))
                    )
                }
            }
        }
        Ok(())
    }
}
