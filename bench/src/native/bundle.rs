//! The Worker's bundle: `index_bg.wasm` raw and `gzip -9`, and what each crate costs in it,
//! from `twiggy top` over the shipped file (worker-build keeps its name section).
//!
//! Attribution is by symbol: a function belongs to the crate its path starts with; for
//! `<T as Trait>::f` the crate of `T`, or of the trait when `T` is a primitive; for
//! `drop_in_place<T>` the crate of `T`. Items without a Rust path are grouped: static data
//! (`.rodata`: strings and tables, not attributable by symbol), the name section, and
//! wasm-bindgen's glue. wasm-opt inlines most of the request handlers into the entry
//! future's `AssertUnwindSafe<F>::poll`; that is shown as its own line.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::Res;

/// `path` raw and after `gzip -9`.
pub fn sizes(path: &Path) -> Res<(u64, u64)> {
    let raw = std::fs::metadata(path)?.len();
    let output = Command::new("gzip")
        .arg("-9")
        .arg("-c")
        .arg(path)
        .output()?;
    if !output.status.success() {
        return Err(format!("gzip -9 {} failed", path.display()).into());
    }
    Ok((raw, output.stdout.len() as u64))
}

/// Bytes per crate (or group), largest first, with the total of all items.
pub fn by_crate(twiggy: &Path, wasm: &Path) -> Res<(Vec<(String, u64)>, u64)> {
    let output = Command::new(twiggy)
        .args(["top", "-n", "1000000", "-f", "json"])
        .arg(wasm)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "twiggy top {} failed: {}",
            wasm.display(),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let items: Vec<Value> = serde_json::from_slice(&output.stdout)?;
    let mut sizes: HashMap<String, u64> = HashMap::new();
    let mut total = 0;
    for item in &items {
        let (Some(name), Some(size)) = (item["name"].as_str(), item["shallow_size"].as_u64())
        else {
            continue;
        };
        total += size;
        *sizes.entry(group(name)).or_default() += size;
    }
    let mut sorted: Vec<(String, u64)> = sizes.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok((sorted, total))
}

/// Crates that make outbound HTTP requests, if they are in the bundle.
pub const HTTP_CLIENTS: [&str; 7] = [
    "reqwest",
    "hyper",
    "ureq",
    "surf",
    "gloo_net",
    "isahc",
    "attohttpc",
];

/// The crate or group an item of `twiggy top` belongs to.
pub fn group(name: &str) -> String {
    if name.starts_with("custom section") || name.ends_with("subsection") {
        return "(name section and custom sections)".into();
    }
    if name.starts_with("data segment") {
        return "(static data: strings, tables)".into();
    }
    if name.starts_with(
        "<core::panic::unwind_safe::AssertUnwindSafe<F> as core::future::future::Future>::poll",
    ) {
        return "(entry future: handlers inlined by wasm-opt)".into();
    }
    if let Some(inner) = name
        .strip_prefix("core::ptr::drop_in_place<")
        .and_then(crate_of)
    {
        return inner;
    }
    if let Some(rest) = name.strip_prefix('<') {
        if let Some((ty, tail)) = rest.split_once(" as ") {
            if let Some(krate) = crate_of(ty).or_else(|| crate_of(tail)) {
                return krate;
            }
        }
    }
    if let Some(krate) = crate_of(name) {
        return krate;
    }
    if name.starts_with("__wbg")
        || name.starts_with("__wbindgen")
        || name.starts_with("__externref")
        || name.starts_with("import ")
        || name.starts_with("export ")
        || name.contains("externref shim")
        || name.starts_with("intounderlying")
    {
        return "(wasm-bindgen glue, imports, exports)".into();
    }
    "(other)".into()
}

/// The crate a Rust path starts with (`serde_json::de::...` → `serde_json`; `core[abc]::fmt`
/// → `core`), skipping leading `&`, `*const`, `dyn`; `None` for primitives and generics.
fn crate_of(path: &str) -> Option<String> {
    let mut p = path.trim_start_matches(['<', '&', '(', '[', ' ', '*']);
    for prefix in ["mut ", "const ", "dyn "] {
        p = p.strip_prefix(prefix).unwrap_or(p);
    }
    let end = p
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(p.len());
    let (ident, rest) = p.split_at(end);
    let rest = match rest.strip_prefix('[') {
        Some(r) => &r[r.find(']')? + 1..],
        None => rest,
    };
    (!ident.is_empty() && rest.starts_with("::") && !ident.starts_with(char::is_numeric))
        .then(|| ident.to_string())
}

#[cfg(test)]
mod tests {
    use super::group;

    #[test]
    fn groups_items_by_crate() {
        assert_eq!(group("serde_json::de::from_str::h1"), "serde_json");
        assert_eq!(
            group("<reqwest::Client as core::fmt::Debug>::fmt::h2"),
            "reqwest"
        );
        assert_eq!(
            group("<f64 as core[c5930c85a12de822]::fmt::Display>::fmt"),
            "core"
        );
        assert_eq!(group("<&T as core::fmt::Debug>::fmt::h8"), "core");
        assert_eq!(
            group("core::ptr::drop_in_place<token_manager::domain::candidate::Candidate>::h3"),
            "token_manager"
        );
        assert_eq!(
            group("data segment \".rodata\""),
            "(static data: strings, tables)"
        );
        assert_eq!(
            group("\"function names\" subsection"),
            "(name section and custom sections)"
        );
        assert_eq!(
            group("<core::panic::unwind_safe::AssertUnwindSafe<F> as core::future::future::Future>::poll::h69"),
            "(entry future: handlers inlined by wasm-opt)"
        );
        assert_eq!(
            group("__wbg_fetch_41d29a2b2428e0c7"),
            "(wasm-bindgen glue, imports, exports)"
        );
        assert_eq!(group("elem[0]"), "(other)");
    }
}
