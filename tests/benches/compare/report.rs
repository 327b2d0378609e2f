//! The report: markdown tables printed to stdout in every mode, and in full mode written
//! with the machine facts to the results file that BENCHMARKS.md quotes.

use std::fmt::Write as _;
use std::path::Path;

/// One markdown table.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(title: &str, headers: &[&str]) -> Table {
        Table {
            title: title.to_owned(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "row width of table {:?}", self.title);
        self.rows.push(cells);
    }

    /// The table as markdown, under a bold title line.
    pub(crate) fn markdown(&self) -> String {
        let mut s = format!("**{}**\n\n| {} |\n|", self.title, self.headers.join(" | "));
        for _ in &self.headers {
            s.push_str("---|");
        }
        s.push('\n');
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", r.join(" | "));
        }
        s
    }
}

/// Events per second, rounded, with thousands separators.
pub(crate) fn rate(v: f64) -> String {
    if !v.is_finite() {
        return "—".to_owned();
    }
    let digits = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio, e.g. `0.85×`.
pub(crate) fn ratio(v: f64) -> String {
    if !v.is_finite() {
        return "—".to_owned();
    }
    if v >= 10.0 {
        format!("{v:.0}×")
    } else {
        format!("{v:.2}×")
    }
}

/// Microseconds (no decimals from 100 on).
pub(crate) fn us(v: f64) -> String {
    if !v.is_finite() {
        "—".to_owned()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Milliseconds from microseconds (two decimals below 10 ms).
pub(crate) fn ms(v_us: f64) -> String {
    if !v_us.is_finite() {
        "—".to_owned()
    } else if v_us < 10_000.0 {
        format!("{:.2}", v_us / 1000.0)
    } else {
        format!("{:.1}", v_us / 1000.0)
    }
}

/// Writes the full report (header lines and tables) to `path`.
pub(crate) fn write(path: &Path, header: &[String], tables: &[Table]) -> Result<(), String> {
    let mut s = String::new();
    for h in header {
        let _ = writeln!(s, "{h}  ");
    }
    for t in tables {
        s.push('\n');
        s.push_str(&t.markdown());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(path, s).map_err(|e| format!("writing {}: {e}", path.display()))
}
