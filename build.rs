//! Build facts for `mmf version`: the git revision and the build date, as the environment
//! variables `MMF_GIT_REVISION` and `MMF_BUILD_DATE`. Built from a source tarball (no `.git`,
//! or no `git`), the revision is "unknown"; `SOURCE_DATE_EPOCH` (reproducible builds) fixes the
//! date. Only git's HEAD and the current branch's ref trigger a rerun, so the date is the date
//! of the build that last saw a new commit, not of every incremental build.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A tarball unpacked inside some other repository must not report that repository's commit.
    let ours = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        std::env::var("CARGO_MANIFEST_DIR")
            .is_ok_and(|dir| std::fs::canonicalize(top).ok() == std::fs::canonicalize(dir).ok())
    });
    let revision = ours
        .then(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .flatten()
        .unwrap_or_else(|| "unknown".into());
    if revision != "unknown" {
        // In a worktree or with packed refs these paths differ from .git/HEAD; ask git.
        let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(git(&["rev-parse", "--git-path", &branch]));
            watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
        }
        for path in watched.into_iter().flatten() {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs())
        });
    println!("cargo:rustc-env=MMF_GIT_REVISION={revision}");
    println!("cargo:rustc-env=MMF_BUILD_DATE={}", civil_date(seconds));
}

/// The trimmed output of a successful git command, if git and a repository are there.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// `YYYY-MM-DD` (UTC) of a Unix time, by Howard Hinnant's days-to-civil algorithm.
fn civil_date(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
