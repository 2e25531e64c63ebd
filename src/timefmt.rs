//! Dates from the epoch, in UTC, without a clock: the few formats libvirt writes.

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC).
pub fn format_epoch(t: i64) -> String {
    let (date, secs) = split(t);
    format!("{date}T{}", hms(secs))
}

/// Milliseconds since the epoch as virsh's `--timestamp` prefix,
/// `YYYY-MM-DD HH:MM:SS.mmm+0000` (libvirt: virTimeStringNowRaw).
pub fn format_virsh_timestamp(ms: u64) -> String {
    let (date, secs) = split((ms / 1000) as i64);
    format!("{date} {}.{:03}+0000", hms(secs), ms % 1000)
}

fn split(t: i64) -> (String, i64) {
    let (y, m, d) = civil_from_days(t.div_euclid(86400));
    (format!("{y:04}-{m:02}-{d:02}"), t.rem_euclid(86400))
}

fn hms(secs: i64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// (year, month, day) of day `z` since 1970-01-01 (Howard Hinnant's civil_from_days).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virsh_timestamp() {
        assert_eq!(format_virsh_timestamp(0), "1970-01-01 00:00:00.000+0000");
        assert_eq!(
            format_virsh_timestamp(1_796_572_981_042),
            "2026-12-06 16:03:01.042+0000"
        );
    }
}
