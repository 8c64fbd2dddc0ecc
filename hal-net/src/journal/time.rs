//! Wall-clock times as the journal tools (`hal-sim check` and `import`, `hal-net report`)
//! read them from their command lines and write them for a reader.

use std::time::{Duration, UNIX_EPOCH};

/// Reads a wall-clock time as the journal tools take it on their command lines: Unix ms
/// (`1796000000000`), RFC 3339 with `Z` or an offset (`2026-12-05T09:05:00Z`,
/// `2026-12-05T10:05:00.250+01:00`; a space for the `T`, and no zone, mean UTC), or a date
/// (`2026-12-05`: its midnight, UTC).
pub fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map_err(|_| format!("'{text}' is too large for Unix ms"));
    }
    let is_date = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if is_date {
        return parse_time(&format!("{text}T00:00:00Z"));
    }
    let (local, offset_ms) = split_offset(text)?;
    let stamp = humantime::parse_rfc3339_weak(local).map_err(|e| {
        format!("'{text}' is neither Unix ms nor an RFC 3339 time like 2026-12-05T09:05:00Z ({e})")
    })?;
    let ms = stamp
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("'{text}' is before 1970"))?
        .as_millis();
    let ms = i128::try_from(ms).unwrap_or(i128::MAX) - i128::from(offset_ms);
    u64::try_from(ms).map_err(|_| format!("'{text}' is before 1970"))
}

/// Splits a trailing zone (`Z`, `+01:00`, `-0500`) from an RFC 3339 time: the time without
/// it, and the zone's offset east of UTC in ms.
fn split_offset(text: &str) -> Result<(&str, i64), String> {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return Ok((local, 0));
    }
    // A zone's sign comes after the time of day (the date has '-' too).
    let Some(time_at) = text.find(['T', 't', ' ']) else {
        return Ok((text, 0));
    };
    let Some(sign_at) = text[time_at..].rfind(['+', '-']).map(|i| i + time_at) else {
        return Ok((text, 0));
    };
    let zone = &text[sign_at + 1..];
    let digits: String = zone.chars().filter(|c| *c != ':').collect();
    let wrong = || {
        format!(
            "'{text}': the zone '{}' is not like +01:00",
            &text[sign_at..]
        )
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(wrong());
    }
    let hours: i64 = digits[..2].parse().map_err(|_| wrong())?;
    let minutes: i64 = digits[2..].parse().map_err(|_| wrong())?;
    if hours > 23 || minutes > 59 {
        return Err(wrong());
    }
    let sign = if text[sign_at..].starts_with('-') {
        -1
    } else {
        1
    };
    Ok((
        &text[..sign_at],
        sign * (hours * 3_600_000 + minutes * 60_000),
    ))
}

/// A wall-clock time for a reader: `2026-12-05T09:05:00.250Z`.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_ms_and_rfc3339_in_every_zone_read_the_same() {
        let ms = 1_796_461_500_250;
        assert_eq!(parse_time("1796461500250"), Ok(ms));
        assert_eq!(parse_time("2026-12-05T09:05:00.250Z"), Ok(ms));
        assert_eq!(parse_time("2026-12-05 09:05:00.250"), Ok(ms));
        assert_eq!(parse_time("2026-12-05T10:05:00.250+01:00"), Ok(ms));
        assert_eq!(parse_time("2026-12-05T04:05:00.250-0500"), Ok(ms));
        assert_eq!(rfc3339(ms), "2026-12-05T09:05:00.250Z");
        assert_eq!(parse_time("2026-12-05"), Ok(ms - 32_700_250));
    }

    #[test]
    fn a_wrong_time_says_what_is_wrong() {
        for (text, says) in [
            ("yesterday", "neither Unix ms nor an RFC 3339 time"),
            ("2026-12-05T09:05:00+1", "is not like +01:00"),
            ("2026-12-05T09:05:00+25:00", "is not like +01:00"),
            ("99999999999999999999999", "too large"),
            ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"),
            ("", "neither Unix ms"),
        ] {
            let error = parse_time(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
