//! The dependency rules of `docs/ARCHITECTURE.md`, checked on the source: nothing outside
//! `src/store` names rusqlite or r2d2; nothing outside `src/http` (and the wiring in `app.rs`
//! and `main.rs`) names actix; `src/ledger` uses nothing of the crate but itself. Comments are
//! not code and may name anything.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(file relative to src/, line number, code)` of every non-comment line of `src/`.
fn code_lines() -> Vec<(String, usize, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "src/ has the crate's files");
    let mut out = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            out.push((rel.clone(), n + 1, code.to_owned()));
        }
    }
    out
}

/// Whether `code` names the identifier `name` (not as part of a longer word).
fn names(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + name.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before) && (!word(after) || code[i + name.len()..].starts_with('_'))
    })
}

fn violations(allowed: impl Fn(&str) -> bool, forbidden: &[&str]) -> Vec<String> {
    code_lines()
        .into_iter()
        .filter(|(file, _, _)| !allowed(file))
        .filter(|(_, _, code)| forbidden.iter().any(|name| names(code, name)))
        .map(|(file, n, code)| format!("src/{file}:{n}: {code}"))
        .collect()
}

#[test]
fn only_the_store_names_rusqlite_or_r2d2() {
    let found = violations(
        |f| f.starts_with("store/"),
        &["rusqlite", "r2d2", "r2d2_sqlite"],
    );
    assert!(
        found.is_empty(),
        "SQL types outside src/store:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_http_layer_and_the_wiring_name_actix() {
    let found = violations(
        |f| f.starts_with("http/") || f == "app.rs" || f == "main.rs",
        &["actix", "actix_web", "actix_web_prom"],
    );
    assert!(
        found.is_empty(),
        "actix outside src/http:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_ledger_uses_nothing_of_the_crate_but_itself() {
    let found: Vec<String> = code_lines()
        .into_iter()
        .filter(|(file, _, _)| file.starts_with("ledger/"))
        .filter(|(_, _, code)| {
            code.match_indices("crate::")
                .any(|(i, _)| !code[i + "crate::".len()..].starts_with("ledger"))
        })
        .map(|(file, n, code)| format!("src/{file}:{n}: {code}"))
        .collect();
    assert!(
        found.is_empty(),
        "src/ledger reaches outside itself:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_recognise_a_name_and_ignore_longer_words() {
    assert!(names("use rusqlite::Connection;", "rusqlite"));
    assert!(names("actix_web::HttpResponse", "actix"));
    assert!(!names("let transactix = 1;", "actix"));
    assert!(!names("my_rusqlite_wrapper()", "rusqlite"));
}
