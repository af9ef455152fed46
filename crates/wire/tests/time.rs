//! ISO-8601 millisecond timestamps agree with JS `toISOString` and GNU `date -u`
//! (`date -u -d @1744123456.789 +%FT%T.%3NZ`), and parsing is strict.

use wire::{Error, iso8601_ms, parse_iso8601_ms};

/// (unix ms, string) pairs checked with `date -u -d @<s> +%FT%T.%3NZ` and node's toISOString.
const KNOWN: &[(u64, &str)] = &[
    (0, "1970-01-01T00:00:00.000Z"),
    (1_744_123_456_789, "2025-04-08T14:44:16.789Z"),
    (1_776_243_600_000, "2026-04-15T09:00:00.000Z"),
    (951_782_400_000, "2000-02-29T00:00:00.000Z"),
    (951_868_800_000, "2000-03-01T00:00:00.000Z"),
    (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
    (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
];

#[test]
fn known_instants_format_and_parse() {
    for &(ms, s) in KNOWN {
        assert_eq!(iso8601_ms(ms), s);
        assert_eq!(parse_iso8601_ms(s).expect(s), ms);
    }
}

#[test]
fn years_after_9999_use_the_js_extended_form() {
    // node: new Date(253402300800000).toISOString(), new Date(8.64e15).toISOString()
    assert_eq!(iso8601_ms(253_402_300_800_000), "+010000-01-01T00:00:00.000Z");
    assert_eq!(iso8601_ms(8_640_000_000_000_000), "+275760-09-13T00:00:00.000Z");
    assert!(parse_iso8601_ms("+010000-01-01T00:00:00.000Z").is_err());
    let _ = iso8601_ms(u64::MAX); // no overflow panic
}

#[test]
fn leap_days_exist_only_in_leap_years() {
    for year in [1972, 1996, 2000, 2024, 2400] {
        assert!(parse_iso8601_ms(&format!("{year}-02-29T00:00:00.000Z")).is_ok(), "{year}");
    }
    for year in [1970, 2023, 2100, 2200, 2300] {
        assert!(parse_iso8601_ms(&format!("{year}-02-29T00:00:00.000Z")).is_err(), "{year}");
    }
}

#[test]
fn every_day_for_sixty_years_and_many_instants_round_trip() {
    // Every midnight from 1970 to 2030 (covers 2000, a 400-year leap year), then a stride of
    // odd millisecond offsets up to year 9999.
    for day in 0..(60 * 366) {
        let ms = day * 86_400_000;
        assert_eq!(parse_iso8601_ms(&iso8601_ms(ms)).expect("parse"), ms);
    }
    let mut ms = 0u64;
    while ms <= 253_402_300_799_999 {
        let s = iso8601_ms(ms);
        assert_eq!(s.len(), 24);
        assert_eq!(parse_iso8601_ms(&s).expect(&s), ms);
        ms += 7_919_999_983; // ~91.7 days, prime: hits every time of day and month
    }
}

#[test]
fn consecutive_days_step_by_exactly_one_day() {
    let mut prev = parse_iso8601_ms("1999-12-31T00:00:00.000Z").expect("parse");
    for s in ["2000-01-01", "2000-01-02"] {
        let next = parse_iso8601_ms(&format!("{s}T00:00:00.000Z")).expect("parse");
        assert_eq!(next - prev, 86_400_000);
        prev = next;
    }
}

#[test]
fn parsing_is_strict() {
    let bad = [
        "",
        "2026-04-15T09:00:00Z",          // no milliseconds
        "2026-04-15T09:00:00.0000Z",     // too precise
        "2026-04-15T09:00:00.000+00:00", // offset
        "2026-04-15 09:00:00.000Z",      // space
        "2026-04-15t09:00:00.000z",      // lowercase
        "2026-13-01T00:00:00.000Z",      // month 13
        "2026-00-01T00:00:00.000Z",      // month 0
        "2026-04-31T00:00:00.000Z",      // 31 April
        "2026-04-00T00:00:00.000Z",      // day 0
        "2026-04-15T24:00:00.000Z",      // hour 24
        "2026-04-15T09:60:00.000Z",      // minute 60
        "2026-04-15T09:00:60.000Z",      // leap second
        "1969-12-31T23:59:59.999Z",      // before the epoch
        "2026-04-15T09:00:00.00aZ",      // non-digit
        "+026-04-15T09:00:00.000Z",      // sign
        "2026-04-15T09:00:00.000Z ",     // trailing space
        "２026-04-15T09:00:00.000Z",     // non-ASCII digit
    ];
    for s in bad {
        let err = parse_iso8601_ms(s).expect_err(s);
        assert!(matches!(err, Error::Timestamp { .. }), "{s}: {err:?}");
    }
}

#[test]
fn rfc2822_dates_name_the_right_weekday_and_month() {
    assert_eq!(wire::rfc2822_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_eq!(wire::rfc2822_date(1_744_123_456_789), "Tue, 08 Apr 2025 14:44:16 +0000");
    assert_eq!(wire::rfc2822_date(951_782_400_000), "Tue, 29 Feb 2000 00:00:00 +0000");
}
