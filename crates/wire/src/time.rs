//! ISO-8601 UTC timestamps with millisecond precision, as JavaScript's `Date.toISOString`
//! writes them (`2026-04-15T09:00:00.000Z`), to and from Unix milliseconds.
//!
//! The calendar math is Howard Hinnant's `civil_from_days` / `days_from_civil`
//! (<https://howardhinnant.github.io/date_algorithms.html>), on the proleptic Gregorian calendar
//! that both JS and ISO 8601 use.

use crate::Error;

const MS_PER_DAY: u64 = 86_400_000;

/// Days from 0000-03-01 to 1970-01-01 in Hinnant's era arithmetic.
const UNIX_EPOCH_DAYS: u64 = 719_468;

/// Days in a 400-year era.
const DAYS_PER_ERA: u64 = 146_097;

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`, exactly like JS `toISOString`.
///
/// After 9999-12-31T23:59:59.999Z the year is written as JS does, signed and with at least six
/// digits (`+010000-01-01T00:00:00.000Z`); [`parse_iso8601_ms`] rejects that form, so such
/// instants do not round-trip (no clock reading comes near them).
#[must_use]
pub fn iso8601_ms(unix_ms: u64) -> String {
    let days = unix_ms / MS_PER_DAY;
    let ms_of_day = unix_ms % MS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
    let (second, milli) = (ms_of_day / 1000 % 60, ms_of_day % 1000);
    let year = if year <= 9999 { format!("{year:04}") } else { format!("+{year:06}") };
    format!("{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SS.mmmZ` (24 ASCII characters, UTC, milliseconds) into
/// Unix milliseconds. Strict: no other offsets, precisions, separators or leap seconds, the day
/// must exist in that month, and the instant must not be before 1970-01-01T00:00:00.000Z.
///
/// # Errors
/// [`Error::Timestamp`] naming what is wrong.
pub fn parse_iso8601_ms(s: &str) -> Result<u64, Error> {
    let fail = |reason| Error::Timestamp { input: s.chars().take(64).collect(), reason };
    let b = s.as_bytes();
    if b.len() != 24 {
        return Err(fail("wrong length"));
    }
    for (i, want) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (23, b'Z')] {
        if b[i] != want {
            return Err(fail("wrong separator"));
        }
    }
    let num = |from: usize, to: usize| -> Result<u64, Error> {
        b[from..to].iter().try_fold(0u64, |acc, &d| match d {
            b'0'..=b'9' => Ok(acc * 10 + u64::from(d - b'0')),
            _ => Err(fail("non-digit in a number field")),
        })
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second, milli) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if year < 1970 {
        return Err(fail("before 1970"));
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(fail("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(fail("no such time of day"));
    }
    let days = days_from_civil(year, month, day);
    Ok(days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + milli)
}

/// (year, month 1..=12, day 1..=31) of the day `days` after 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + UNIX_EPOCH_DAYS;
    let era = z / DAYS_PER_ERA;
    let doe = z % DAYS_PER_ERA; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], year starting 1 March
    let mp = (5 * doy + 2) / 153; // [0, 11], 0 = March
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to the given date; needs `year >= 1970` and a valid month and day.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * DAYS_PER_ERA + doe - UNIX_EPOCH_DAYS
}

fn is_leap_year(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// RFC 2822 date (mail headers, RSS `pubDate`): `"Wed, 15 Apr 2026 09:00:00 +0000"`.
#[must_use]
pub fn rfc2822_date(unix_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let iso = iso8601_ms(unix_ms); // "YYYY-MM-DDTHH:MM:SS.mmmZ"
    let weekday = DAYS[((unix_ms / 86_400_000) % 7) as usize];
    let month = iso[5..7].parse::<usize>().unwrap_or(1).clamp(1, 12);
    format!("{weekday}, {} {} {} {} +0000", &iso[8..10], MONTHS[month - 1], &iso[0..4], &iso[11..19])
}
