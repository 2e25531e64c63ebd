//! libvirt's scaled integers (`<memory unit='GiB'>4</memory>`), stored in KiB.

use super::DomainError;

/// Bytes per unit, as libvirt defines its suffixes: single letters and `KiB`-style names are
/// powers of 1024, `KB`-style names powers of 1000.
fn unit_scale(unit: &str) -> Option<u64> {
    let u = unit;
    let (base, pow): (u64, u32) = match u {
        "" | "b" | "byte" | "bytes" | "B" => return Some(1),
        _ => {
            let mut chars = u.chars();
            let first = chars.next()?.to_ascii_lowercase();
            let rest: String = chars.collect();
            let pow = match first {
                'k' => 1,
                'm' => 2,
                'g' => 3,
                't' => 4,
                'p' => 5,
                'e' => 6,
                _ => return None,
            };
            let base = match rest.as_str() {
                "" | "iB" | "ib" => 1024,
                "B" | "b" => 1000,
                _ => return None,
            };
            (base, pow)
        }
    };
    base.checked_pow(pow)
}

/// `value` × the scale of `unit` (default `default_unit`), with libvirt's errors for a bad
/// number or suffix; `None` when the product overflows u64.
fn scaled(value: &str, unit: Option<&str>, default_unit: &str) -> Result<Option<u64>, DomainError> {
    let v: u64 = value.trim().parse().map_err(|_| {
        DomainError::Xml(format!(
            "XML error: Invalid value '{value}' for element or attribute"
        ))
    })?;
    let unit = unit.unwrap_or(default_unit);
    let scale = unit_scale(unit).ok_or_else(|| {
        DomainError::InvalidArg(format!("invalid argument: unknown suffix '{unit}'"))
    })?;
    Ok(v.checked_mul(scale))
}

fn overflow(value: &str, unit: Option<&str>, default_unit: &str) -> DomainError {
    DomainError::Overflow(format!(
        "numerical overflow: value too large: {value}{}",
        unit.unwrap_or(default_unit)
    ))
}

/// Parse `value` in `unit` (default `default_unit`) into bytes, refusing values above
/// `max_bytes`.
pub fn parse_scaled_bytes(
    value: &str,
    unit: Option<&str>,
    default_unit: &str,
    max_bytes: u64,
) -> Result<u64, DomainError> {
    match scaled(value, unit, default_unit)? {
        Some(b) if b <= max_bytes => Ok(b),
        _ => Err(overflow(value, unit, default_unit)),
    }
}

/// Parse `value` in `unit` (empty = the element's default unit, `default_unit`) into KiB,
/// rounding up as libvirt does and refusing values above `max_kib`.
pub fn parse_scaled_kib(
    value: &str,
    unit: Option<&str>,
    default_unit: &str,
    max_kib: u64,
) -> Result<u64, DomainError> {
    match scaled(value, unit, default_unit)?.map(|b| b.div_ceil(1024)) {
        Some(kib) if kib <= max_kib => Ok(kib),
        _ => Err(overflow(value, unit, default_unit)),
    }
}

/// libvirt caps memory sizes so that the byte count fits a signed 64-bit integer.
pub const MAX_MEMORY_KIB: u64 = (i64::MAX as u64) / 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(
            parse_scaled_kib("4", Some("GiB"), "KiB", MAX_MEMORY_KIB).unwrap(),
            4 << 20
        );
        assert_eq!(
            parse_scaled_kib("1", Some("MB"), "KiB", MAX_MEMORY_KIB).unwrap(),
            977
        );
        assert_eq!(
            parse_scaled_kib("1024", None, "KiB", MAX_MEMORY_KIB).unwrap(),
            1024
        );
        assert_eq!(
            parse_scaled_kib("1", Some("b"), "KiB", MAX_MEMORY_KIB).unwrap(),
            1
        );
        assert_eq!(
            parse_scaled_kib("1", Some("XB"), "KiB", MAX_MEMORY_KIB)
                .unwrap_err()
                .to_string(),
            "invalid argument: unknown suffix 'XB'"
        );
        assert!(parse_scaled_kib("16", Some("EiB"), "KiB", MAX_MEMORY_KIB).is_err());
    }
}
