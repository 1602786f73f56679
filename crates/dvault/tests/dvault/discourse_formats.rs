//! Discourse backups in all three formats, made the way Discourse makes them from a real
//! `pg_dump` of a real PostgreSQL database, go through `dvault expand` and `dvault rebuild`
//! bit for bit, with the exact method Discourse used found for every compressed layer.

use std::path::{Path, PathBuf};
use std::process::Command;

use dvault_core::postgres::TempCluster;
use peel::gzip::Method;
use peel::Node;
use sha2::{Digest, Sha256};

const DVAULT: &str = env!("CARGO_BIN_EXE_dvault");

fn sh(dir: &Path, script: &str) {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn dvault(args: &[&str]) -> std::process::Output {
    let out = Command::new(DVAULT).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "dvault {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A small forum database, dumped the way Discourse dumps it: `dump.sql.gz` (format A and
/// SQL-only) and `db/` (format B). Also writes `uploads/default/...` with images, text and a
/// duplicate. The cluster is stopped and removed before returning.
fn make_dumps(work: &Path) {
    let pg = TempCluster::start().expect("PostgreSQL starts");
    pg.create_database("discourse").unwrap();
    pg.psql(
        "discourse",
        "CREATE TABLE users (id serial PRIMARY KEY, username text, last_seen_at timestamptz);
         CREATE TABLE posts (id serial PRIMARY KEY, user_id int, raw text, cooked text);
         CREATE TABLE uploads (id serial PRIMARY KEY, url text, sha1 text);
         INSERT INTO users (username, last_seen_at)
           SELECT 'user' || i, timestamptz '2024-01-01' + i * interval '1 minute'
           FROM generate_series(1, 2000) i;
         INSERT INTO posts (user_id, raw, cooked)
           SELECT 1 + i % 2000, 'Post number ' || i || ' says ' || md5(i::text) || repeat(' words', i % 20),
                  '<p>Post number ' || i || '</p>'
           FROM generate_series(1, 20000) i;
         INSERT INTO uploads (url, sha1)
           SELECT '/uploads/default/original/1X/' || md5(i::text) || '.png', md5(i::text)
           FROM generate_series(1, 50) i;",
    )
    .unwrap();
    let common = [
        "--schema=public",
        "-T",
        "public.pg_*",
        "--no-owner",
        "--no-privileges",
        "--verbose",
        "--compress=4",
    ];
    let dump = work.join("dump.sql.gz");
    let mut args: Vec<String> = common.iter().map(|s| s.to_string()).collect();
    args.extend(["-f".into(), dump.display().to_string(), "discourse".into()]);
    pg.pg_dump(&args).unwrap();
    let mut args: Vec<String> = common.iter().map(|s| s.to_string()).collect();
    let db = work.join("db");
    args.extend([
        "--format=directory".into(),
        "-f".into(),
        db.display().to_string(),
        "discourse".into(),
    ]);
    pg.pg_dump(&args).unwrap();
    pg.stop().unwrap();
    let deep = format!("uploads/default/original/2X/{}", "a1b2c3d4/".repeat(10));
    sh(
        work,
        &format!(
            "mkdir -p uploads/default/original/1X {deep}
             for i in 1 2 3; do (printf '\\211PNG\\r\\n\\032\\n'; head -c 40000 /dev/urandom) > uploads/default/original/1X/img$i.png; done
             (printf '\\377\\330\\377\\340'; head -c 60000 /dev/urandom) > uploads/default/original/1X/photo.jpeg
             cp uploads/default/original/1X/img1.png uploads/default/original/1X/zz-copy-of-img1.png
             seq 1 5000 > {deep}/notes-with-a-long-name.txt"
        ),
    );
}

/// Expands `backup` with the CLI, rebuilds it, checks the SHA-256, and returns the recipe and
/// the `inspect --json` report.
fn cli_round_trip(work: &Path, backup: &Path) -> (PathBuf, peel::Recipe, serde_json::Value) {
    let name = backup.file_name().unwrap().to_string_lossy().into_owned();
    let tree = work.join(format!("tree-{name}"));
    let out = work.join(format!("rebuilt-{name}"));
    dvault(&["expand", backup.to_str().unwrap(), tree.to_str().unwrap()]);
    dvault(&["rebuild", tree.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(sha256(&out), sha256(backup), "{name}: rebuilt bytes differ");
    let inspect = dvault(&["inspect", "--json", backup.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let recipe = peel::tree::read_recipe(&tree.join(peel::tree::RECIPE_PATH)).unwrap();
    assert_eq!(report["stored_fallback"], false, "{name}: {report:#}");
    for layer in report["layers"].as_array().unwrap() {
        assert!(
            layer["kind"] == "gzip" || layer["kind"] == "tar",
            "{name}: no layer is stored or left unpeeled: {layer:#}"
        );
    }
    (tree, recipe, report)
}

fn gzip_method(node: &Node) -> (&Method, &Node) {
    match node {
        Node::Gzip { gzip, inner } => (&gzip.members[0].method, inner),
        other => panic!("not a gzip layer: {other:?}"),
    }
}

#[test]
fn discourse_formats_round_trip_with_the_methods_discourse_used() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    make_dumps(w);

    // Format A: the real command sequence of Discourse's backuper, then `gzip -5`.
    sh(
        w,
        "tar --create --file=backup.tar --files-from /dev/null
         tar --append --dereference --file=backup.tar dump.sql.gz
         tar --append --dereference --file=backup.tar uploads/default
         gzip -5 backup.tar
         mv backup.tar.gz forum-2024-01-02-030405-v20240101000000.tar.gz",
    );
    let a = w.join("forum-2024-01-02-030405-v20240101000000.tar.gz");
    let (tree, recipe, _) = cli_round_trip(w, &a);
    let (outer, tar) = gzip_method(&recipe.root);
    assert_eq!(outer, &Method::GnuGzip { level: 5 });
    let Node::Tar(t) = tar else {
        panic!("format A holds a tar")
    };
    let dump = t.members[0].data.as_ref().expect("dump.sql.gz has data");
    let (inner, _) = gzip_method(dump);
    assert!(
        matches!(inner, Method::Zlib { level: 4, .. }),
        "dump.sql.gz: {inner:?}"
    );
    sh(
        w,
        &format!("gzip -dc dump.sql.gz | cmp - {}/dump.sql", tree.display()),
    );
    assert!(tree
        .join("uploads/default/original/1X/photo.jpeg")
        .is_file());

    // SQL only: the pg_dump output itself.
    let sql = w.join("forum-2024-01-02-030405-v20240101000000.sql.gz");
    std::fs::copy(w.join("dump.sql.gz"), &sql).unwrap();
    let (tree, recipe, _) = cli_round_trip(w, &sql);
    let (m, _) = gzip_method(&recipe.root);
    assert!(matches!(m, Method::Zlib { level: 4, .. }), "{m:?}");
    assert!(tree
        .join("forum-2024-01-02-030405-v20240101000000.sql")
        .is_file());

    // Format B: ustar written like Discourse's Ruby code (empty uname/gname, PAX headers for
    // long names, hard links for duplicate uploads, exactly 1024 zero bytes at the end).
    sh(
        w,
        r#"python3 - <<'PY'
import hashlib, os, tarfile
out = open("forum-2024-01-02-030405-v3.4.0-20240101000000.tar", "wb")
seen = {}
def add(path):
    st = os.lstat(path)
    ti = tarfile.TarInfo(path + ("/" if os.path.isdir(path) else ""))
    ti.mtime, ti.mode, ti.uname, ti.gname = int(st.st_mtime), 0o644, "", ""
    data = b""
    if os.path.isdir(path):
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    else:
        data = open(path, "rb").read()
        digest = hashlib.sha1(data).hexdigest()
        if path.startswith("uploads/") and digest in seen:
            ti.type, ti.linkname, data = tarfile.LNKTYPE, seen[digest], b""
        else:
            seen.setdefault(digest, path)
        ti.size = len(data)
    fmt = tarfile.PAX_FORMAT if len(ti.name) > 100 or len(ti.linkname) > 100 else tarfile.USTAR_FORMAT
    out.write(ti.tobuf(format=fmt, encoding="utf-8"))
    out.write(data + b"\0" * ((512 - len(data) % 512) % 512))
for root in ("db", "uploads"):
    for d, dirs, files in os.walk(root):
        dirs.sort()
        add(d)
        for f in sorted(files):
            add(os.path.join(d, f))
out.write(b"\0" * 1024)
PY"#,
    );
    let b = w.join("forum-2024-01-02-030405-v3.4.0-20240101000000.tar");
    let (tree, recipe, report) = cli_round_trip(w, &b);
    let Node::Tar(t) = &recipe.root else {
        panic!("format B is a tar")
    };
    assert_eq!(t.end_zeros, 1024);
    let gz: Vec<&Method> = t
        .members
        .iter()
        .filter_map(|m| m.data.as_ref())
        .filter(|n| matches!(n, Node::Gzip { .. }))
        .map(|n| gzip_method(n).0)
        .collect();
    assert!(gz.len() >= 3, "one .dat.gz per table: {gz:?}");
    assert!(
        gz.iter().all(|m| matches!(m, Method::Zlib { .. })),
        "{gz:?}"
    );
    // The posts table's data is big enough that only level 4 reproduces it.
    assert!(
        gz.iter()
            .any(|m| matches!(m, Method::Zlib { level: 4, .. })),
        "{gz:?}"
    );
    assert!(tree.join("db/toc.dat").is_file());
    let dat: Vec<_> = std::fs::read_dir(tree.join("db"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dat") && n != "toc.dat")
        .collect();
    assert_eq!(dat.len(), gz.len(), "each NNNN.dat.gz is NNNN.dat: {dat:?}");
    assert!(
        !tree
            .join("uploads/default/original/1X/zz-copy-of-img1.png")
            .exists(),
        "hard links are recipe-only"
    );
    assert!(report["layers"].as_array().unwrap().len() > 3);
}
