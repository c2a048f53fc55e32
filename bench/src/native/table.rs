//! The one table the benchmark prints, as markdown, and number formatting.

/// One line of the table.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub area: String,
    pub case: String,
    pub measured: String,
    pub bound: String,
    pub ratio: String,
    pub target: String,
}

impl Row {
    pub fn new(area: &str, case: impl Into<String>, measured: impl Into<String>) -> Row {
        Row {
            area: area.to_string(),
            case: case.into(),
            measured: measured.into(),
            ..Row::default()
        }
    }

    pub fn bound(mut self, bound: impl Into<String>) -> Row {
        self.bound = bound.into();
        self
    }

    pub fn ratio(mut self, ratio: impl Into<String>) -> Row {
        self.ratio = ratio.into();
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Row {
        self.target = target.into();
        self
    }
}

/// The rows as a markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| area | case | measured | lower bound / reference | ratio | target |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let cells = [&r.area, &r.case, &r.measured, &r.bound, &r.ratio, &r.target];
        let cells: Vec<String> = cells
            .iter()
            .map(|c| {
                if c.is_empty() {
                    "—".to_string()
                } else {
                    c.replace('|', "\\|").replace('\n', " ")
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// 10000 → "10,000".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with sensible precision.
pub fn ms(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.2} s", value / 1000.0)
    } else if value >= 100.0 {
        format!("{value:.0} ms")
    } else if value >= 10.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.2} ms")
    }
}

/// Bytes as KiB/MiB with the exact count.
pub fn bytes(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.2} MiB ({} B)", n as f64 / 1048576.0, thousands(n))
    } else {
        format!("{:.1} KiB ({} B)", n as f64 / 1024.0, thousands(n))
    }
}

/// "met" or "missed by X".
pub fn verdict(met: bool, miss: impl FnOnce() -> String) -> String {
    if met {
        "met".to_string()
    } else {
        format!("missed ({})", miss())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(22), "22");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(ms(1234.0), "1.23 s");
        assert_eq!(ms(4.5), "4.50 ms");
        let t = markdown(&[Row::new("a", "b|c", "")]);
        assert!(t.ends_with("| a | b\\|c | — | — | — | — |\n"), "{t}");
    }
}
