//! Tables as the scenarios print them: a title, aligned columns, the ratio last.

use std::time::Duration;

use crate::scenarios::Setup;

/// One scenario's figures.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    footer: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            footer: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// A line under the table (the ratio goes in the last one).
    pub fn footer(&mut self, line: impl Into<String>) {
        self.footer.push(line.into());
    }

    pub fn print(&self) {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<width$}", width = widths.get(i).copied().unwrap_or(0)))
                .collect();
            padded.join(" | ").trim_end().to_owned()
        };
        println!();
        println!("## {}", self.title);
        println!("{}", line(&self.header));
        println!(
            "{}",
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("-|-")
        );
        for row in &self.rows {
            println!("{}", line(row));
        }
        for footer in &self.footer {
            println!("{footer}");
        }
    }
}

/// Seconds with two decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Milliseconds with one decimal.
pub fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `a / b` as `1.23x` (or `n/a` when b is 0).
pub fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "n/a".to_owned()
    } else {
        format!("{:.2}x", a / b)
    }
}

/// The first line of every run: what was measured where.
pub fn machine_line(setup: &Setup) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let date = jiff::Zoned::now().strftime("%Y-%m-%d %H:%M %Z").to_string();
    let profile = setup
        .mmf
        .parent()
        .and_then(|d| d.file_name())
        .map_or_else(String::new, |d| d.to_string_lossy().into_owned());
    println!(
        "# bench: {date}, {cores} cores, {server:?} API server, mmf {profile} build ({path})",
        server = setup.server,
        path = setup.mmf.display()
    );
}
