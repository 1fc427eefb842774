//! Personal information detectors (Presidio-style: candidate + validator + context words).
//!
//! Candidates are found on a lightly folded copy of the text (full-width → ASCII, zero-width
//! characters dropped) with **explicit digit and letter boundary checks**: `\b` does not work
//! next to Chinese characters, which are word characters too. Validators raise the score
//! (ID check digit, birth date and region; Luhn for bank cards; operator prefixes for mobile
//! numbers) and context words in front of the number raise it again. Only findings with a score
//! of at least [`REPORT_SCORE`] are reported; each carries a masked value.

use crate::normalize::{Normalized, normalize_for_pii};
use serde::Serialize;

/// Findings below this score are not reported.
pub const REPORT_SCORE: f32 = 0.5;

/// What kind of personal information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// 居民身份证号码 (18 digits, or the legacy 15).
    IdCard,
    /// Mainland mobile number.
    Mobile,
    /// Landline with area code.
    Landline,
    /// Bank card number.
    BankCard,
    /// E-mail address.
    Email,
    /// Passport number.
    Passport,
    /// Vehicle licence plate.
    LicencePlate,
    /// IPv4 address.
    Ipv4,
    /// IPv6 address.
    Ipv6,
}

/// One detected item.
#[derive(Debug, Clone, Serialize)]
pub struct PiiFinding {
    /// The kind.
    pub kind: PiiKind,
    /// Byte offset in the original text.
    pub start: usize,
    /// Byte offset just past the item in the original text.
    pub end: usize,
    /// The masked value (safe to log and show).
    pub masked: String,
    /// Confidence 0–1.
    pub score: f32,
    /// Which checks passed (`check_digit`, `birth_date`, `region`, `luhn`, `prefix`, `context`).
    pub checks: Vec<&'static str>,
}

/// Province-level region prefixes (GB/T 2260 first two digits): 31 provinces, Taiwan, Hong Kong
/// and Macao.
const PROVINCES: [&str; 34] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
    "81", "82",
];

/// Mobile number prefixes (first three digits) allocated to operators and virtual operators.
const MOBILE_PREFIXES: [&str; 49] = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "145", "146", "147",
    "148", "149", "150", "151", "152", "153", "155", "156", "157", "158", "159", "162", "165",
    "166", "167", "170", "171", "172", "173", "175", "176", "177", "178", "180", "181", "182",
    "183", "184", "185", "186", "187", "188", "189", "190", "191", "199",
];
const MOBILE_PREFIXES_MORE: [&str; 6] = ["192", "193", "195", "196", "197", "198"];

/// ID card check: MOD 11-2 (ISO 7064) check character of an 18-character number.
pub fn id_check_char(first17: &str) -> Option<char> {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.chars().zip(W) {
        sum += c.to_digit(10)? * w;
    }
    "10X98765432".chars().nth((sum % 11) as usize)
}

/// Whether `yyyymmdd` is a real date between 1900-01-01 and today.
pub fn valid_birth_date(yyyymmdd: &str) -> bool {
    let Ok(n) = yyyymmdd.parse::<u32>() else {
        return false;
    };
    if yyyymmdd.len() != 8 {
        return false;
    }
    let (y, m, d) = (n / 10000, n / 100 % 100, n % 100);
    y >= 1900 && valid_ymd(y, m, d) && n <= today_yyyymmdd()
}

fn valid_ymd(y: u32, m: u32, d: u32) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// Today (UTC) as a `yyyymmdd` number.
fn today_yyyymmdd() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Civil-from-days (H. Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    u32::try_from(y * 10_000 + m * 100 + d).unwrap_or(u32::MAX)
}

/// Full validation of an 18-character ID number: region, birth date and check character.
pub fn id_card_valid(id: &str) -> bool {
    id.len() == 18
        && id.is_ascii()
        && PROVINCES.contains(&&id[..2])
        && valid_birth_date(&id[6..14])
        && id_check_char(&id[..17]).is_some_and(|c| id[17..].eq_ignore_ascii_case(&c.to_string()))
}

/// Luhn checksum over a digit string.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

fn context_words(kind: PiiKind) -> &'static [&'static str] {
    match kind {
        PiiKind::IdCard => &["身份证", "证件号", "身份号码", "idcard", "id number"],
        PiiKind::Mobile => &["手机", "电话", "联系", "微信", "tel", "phone", "mobile"],
        PiiKind::Landline => &["电话", "座机", "固话", "tel", "phone", "传真"],
        PiiKind::BankCard => &["卡号", "银行卡", "账号", "开户行", "信用卡", "card"],
        PiiKind::Email => &["邮箱", "email", "mail"],
        PiiKind::Passport => &["护照", "passport"],
        PiiKind::LicencePlate => &["车牌", "牌照", "plate"],
        PiiKind::Ipv4 | PiiKind::Ipv6 => &["ip", "地址", "服务器", "address"],
    }
}

/// A context word within the 24 characters before `start` of the folded text.
fn has_context(t: &str, start: usize, kind: PiiKind) -> bool {
    let before = t.get(..start).unwrap_or("");
    let from = before.char_indices().rev().nth(23).map_or(0, |(i, _)| i);
    let window = before.get(from..).unwrap_or("").to_lowercase();
    context_words(kind).iter().any(|w| window.contains(w))
}

fn mask_keep(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i + tail >= n { *c } else { '*' })
        .collect()
}

struct Detector<'a> {
    t: &'a str,
    norm: &'a Normalized,
    original: &'a str,
    out: Vec<PiiFinding>,
}

impl Detector<'_> {
    fn push(
        &mut self,
        kind: PiiKind,
        s: usize,
        e: usize,
        base: f32,
        mut checks: Vec<&'static str>,
        masked: String,
    ) {
        let mut score = base;
        if has_context(self.t, s, kind) {
            score += 0.3;
            checks.push("context");
        }
        if score < REPORT_SCORE {
            return;
        }
        let (start, end) = self.norm.span(self.original, s, e);
        self.out.push(PiiFinding {
            kind,
            start,
            end,
            masked,
            score: score.min(1.0),
            checks,
        });
    }

    fn digit_run(&mut self, s: usize) -> usize {
        let b = self.t.as_bytes();
        let mut i = s;
        let mut digits = String::new();
        let mut groups: Vec<usize> = vec![0];
        let mut seps = Vec::new();
        while let Some(&c) = b.get(i) {
            if c.is_ascii_digit() {
                digits.push(char::from(c));
                if let Some(g) = groups.last_mut() {
                    *g += 1;
                }
                i += 1;
            } else if (c == b' ' || c == b'-')
                && b.get(i + 1).is_some_and(u8::is_ascii_digit)
                && seps.len() < 5
            {
                seps.push(c);
                groups.push(0);
                i += 1;
            } else {
                break;
            }
        }
        // An ID number may end in X.
        if digits.len() == 17 && b.get(i).is_some_and(|c| *c == b'X' || *c == b'x') {
            digits.push('X');
            if let Some(g) = groups.last_mut() {
                *g += 1;
            }
            i += 1;
        }
        let end = i;
        // Explicit boundaries: no letter or digit glued to either end.
        let glued_after = b.get(end).is_some_and(u8::is_ascii_alphanumeric);
        let glued_before = s > 0 && b.get(s - 1).is_some_and(u8::is_ascii_alphanumeric);
        let dotted = b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit);
        if glued_after || glued_before || dotted {
            return end.max(s + 1);
        }
        self.classify(s, end, &digits, &groups);
        end
    }

    fn classify(&mut self, s: usize, e: usize, digits: &str, groups: &[usize]) {
        let plain = groups.len() == 1;
        let n = digits.len();
        // Identity card.
        if n == 18 && (plain || groups == [6, 8, 4]) && id_card_valid(digits) {
            let m = mask_keep(digits, 3, 4);
            self.push(
                PiiKind::IdCard,
                s,
                e,
                0.9,
                vec!["region", "birth_date", "check_digit"],
                m,
            );
            return;
        }
        if n == 15 && plain && PROVINCES.contains(&&digits[..2]) {
            let date = format!("19{}", &digits[6..12]);
            if valid_birth_date(&date) {
                self.push(
                    PiiKind::IdCard,
                    s,
                    e,
                    0.5,
                    vec!["region", "birth_date"],
                    mask_keep(digits, 3, 3),
                );
                return;
            }
        }
        // Mobile, optionally with +86 / 0086.
        let (mobile, plus) = match n {
            11 => (Some(digits), false),
            13 if digits.starts_with("86") => (digits.get(2..), true),
            15 if digits.starts_with("0086") => (digits.get(4..), true),
            _ => (None, false),
        };
        if let Some(m) = mobile {
            let grouping_ok = plain
                || groups == [3, 4, 4]
                || (plus
                    && (groups == [2, 3, 4, 4] || groups == [4, 3, 4, 4] || groups == [2, 11]));
            let prefix = &m[..3];
            if grouping_ok
                && (MOBILE_PREFIXES.contains(&prefix) || MOBILE_PREFIXES_MORE.contains(&prefix))
            {
                let s = if s > 0 && self.t.as_bytes().get(s - 1) == Some(&b'+') {
                    s - 1
                } else {
                    s
                };
                self.push(
                    PiiKind::Mobile,
                    s,
                    e,
                    0.7,
                    vec!["prefix"],
                    mask_keep(m, 3, 4),
                );
                return;
            }
        }
        // Landline: 0 + area code (2–3 digits) + 7–8 digits.
        if digits.starts_with('0') && !digits.starts_with("00") {
            let area_ok = |a: &str| a == "010" || a.starts_with("02") || a.len() == 4;
            let ok = match groups {
                [a, b] => (3..=4).contains(a) && (7..=8).contains(b) && area_ok(&digits[..*a]),
                [_] => (10..=12).contains(&n),
                _ => false,
            };
            if ok {
                let base = if plain { 0.4 } else { 0.6 };
                self.push(
                    PiiKind::Landline,
                    s,
                    e,
                    base,
                    vec![],
                    mask_keep(digits, 4, 2),
                );
                return;
            }
        }
        // Bank card: 16–19 digits, plain or in groups of four.
        let grouped4 = groups.len() >= 4
            && groups.iter().rev().skip(1).all(|g| *g == 4)
            && groups.last().is_some_and(|g| (1..=4).contains(g));
        if (16..=19).contains(&n) && (plain || grouped4) && !digits.ends_with('X') {
            let mut score = 0.3;
            let mut checks = Vec::new();
            if luhn_valid(digits) {
                score += 0.3;
                checks.push("luhn");
            }
            if digits.starts_with("62") {
                score += 0.1;
                checks.push("prefix");
            }
            self.push(
                PiiKind::BankCard,
                s,
                e,
                score,
                checks,
                mask_keep(digits, 0, 4),
            );
        }
    }

    fn email(&mut self, at: usize) {
        let b = self.t.as_bytes();
        let local_ok = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
        let dom_ok = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'-';
        let mut s = at;
        while s > 0 && b.get(s - 1).copied().is_some_and(local_ok) {
            s -= 1;
        }
        let mut e = at + 1;
        while b.get(e).copied().is_some_and(dom_ok) {
            e += 1;
        }
        while e > at + 1 && matches!(b.get(e - 1), Some(b'.') | Some(b'-')) {
            e -= 1;
        }
        let (Some(local), Some(domain)) = (self.t.get(s..at), self.t.get(at + 1..e)) else {
            return;
        };
        let tld = domain.rsplit('.').next().unwrap_or("");
        if local.is_empty()
            || !domain.contains('.')
            || tld.len() < 2
            || !tld.bytes().all(|c| c.is_ascii_alphabetic())
        {
            return;
        }
        let masked = format!("{}***@{domain}", &local[..1]);
        self.push(PiiKind::Email, s, e, 0.9, vec!["format"], masked);
    }

    fn ipv4(&mut self, s: usize) -> Option<usize> {
        let b = self.t.as_bytes();
        if s > 0
            && b.get(s - 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.')
        {
            return None;
        }
        let mut i = s;
        let mut octets = Vec::new();
        loop {
            let st = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) && i - st < 4 {
                i += 1;
            }
            let part = self.t.get(st..i)?;
            if part.is_empty() || part.len() > 3 || (part.len() > 1 && part.starts_with('0')) {
                return None;
            }
            octets.push(part.parse::<u8>().ok()?);
            if octets.len() == 4 {
                break;
            }
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        if b.get(i).is_some_and(|c| c.is_ascii_alphanumeric())
            || (b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            return None;
        }
        let masked = format!("{}.{}.*.*", octets[0], octets[1]);
        self.push(PiiKind::Ipv4, s, i, 0.6, vec!["format"], masked);
        Some(i)
    }

    fn ipv6(&mut self, s: usize) -> Option<usize> {
        let b = self.t.as_bytes();
        if s > 0
            && b.get(s - 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b':')
        {
            return None;
        }
        let mut e = s;
        while b
            .get(e)
            .is_some_and(|c| c.is_ascii_hexdigit() || *c == b':' || *c == b'.')
        {
            e += 1;
        }
        while e > s && b.get(e - 1) == Some(&b'.') {
            e -= 1;
        }
        let cand = self.t.get(s..e)?;
        if cand.bytes().filter(|c| *c == b':').count() < 2
            || b.get(e).is_some_and(u8::is_ascii_alphanumeric)
        {
            return None;
        }
        let addr: std::net::Ipv6Addr = cand.parse().ok()?;
        let masked = format!("{:x}:*", addr.segments()[0]);
        self.push(PiiKind::Ipv6, s, e, 0.6, vec!["format"], masked);
        Some(e)
    }

    /// `E`/`G` passports: E + 8 digits, E + letter + 7 digits, G + 8 digits.
    fn passport(&mut self, s: usize) -> Option<usize> {
        let b = self.t.as_bytes();
        if s > 0 && b.get(s - 1).is_some_and(u8::is_ascii_alphanumeric) {
            return None;
        }
        let body = self.t.get(s..s + 9)?.as_bytes();
        let ok = match body.first()? {
            b'E' => {
                body[1..].iter().all(u8::is_ascii_digit)
                    || (body[1].is_ascii_uppercase()
                        && !matches!(body[1], b'I' | b'O')
                        && body[2..].iter().all(u8::is_ascii_digit))
            }
            b'G' => body[1..].iter().all(u8::is_ascii_digit),
            _ => false,
        };
        if !ok || b.get(s + 9).is_some_and(u8::is_ascii_alphanumeric) {
            return None;
        }
        let v = self.t.get(s..s + 9)?;
        self.push(
            PiiKind::Passport,
            s,
            s + 9,
            0.5,
            vec!["format"],
            mask_keep(v, 1, 2),
        );
        Some(s + 9)
    }

    /// 京A12345, 京A·12345, 粤B D12345 (new-energy plates have six characters).
    fn plate(&mut self, s: usize, c: char) -> Option<usize> {
        const PROV: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";
        if !PROV.contains(c) {
            return None;
        }
        let b = self.t.as_bytes();
        let mut i = s + c.len_utf8();
        let letter = *b.get(i)?;
        if !letter.is_ascii_uppercase() || matches!(letter, b'I' | b'O') {
            return None;
        }
        i += 1;
        let rest_str = self.t.get(i..)?;
        if let Some(r) = rest_str
            .strip_prefix('·')
            .or_else(|| rest_str.strip_prefix(' '))
        {
            i += rest_str.len() - r.len();
        }
        let st = i;
        while b.get(i).is_some_and(|c| {
            c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, b'I' | b'O'))
        }) && i - st < 7
        {
            i += 1;
        }
        let body = self.t.get(st..i)?;
        let digits = body.bytes().filter(u8::is_ascii_digit).count();
        if !(5..=6).contains(&body.len())
            || digits < 3
            || b.get(i).is_some_and(u8::is_ascii_alphanumeric)
        {
            return None;
        }
        let masked = format!("{c}{}***{}", char::from(letter), &body[body.len() - 2..]);
        self.push(PiiKind::LicencePlate, s, i, 0.6, vec!["format"], masked);
        Some(i)
    }
}

/// Finds personal information in `text`; spans point into `text`.
pub fn detect_pii(text: &str) -> Vec<PiiFinding> {
    let norm = normalize_for_pii(text);
    let t = norm.text.as_str();
    let mut d = Detector {
        t,
        norm: &norm,
        original: text,
        out: Vec::new(),
    };
    let b = t.as_bytes();
    // E-mail first: its local part may hold digits that must not become phone numbers.
    let mut taken: Vec<(usize, usize)> = Vec::new();
    for (at, _) in t.match_indices('@') {
        let before = d.out.len();
        d.email(at);
        if d.out.len() > before {
            let (s, e) = (d.out[before].start, d.out[before].end);
            taken.push((s, e));
        }
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let in_taken = |d: &Detector<'_>, pos: usize| {
            let (o, _) = d.norm.span(text, pos, pos + 1);
            taken.iter().any(|&(s, e)| s <= o && o < e)
        };
        if c.is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            if in_taken(&d, i) {
                i += 1;
                continue;
            }
            if let Some(e) = d.ipv4(i).or_else(|| d.ipv6(i)) {
                i = e;
                continue;
            }
            i = d.digit_run(i);
            continue;
        }
        if c.is_ascii_hexdigit()
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && let Some(e) = d.ipv6(i)
        {
            i = e;
            continue;
        }
        if (c == b'E' || c == b'G')
            && !in_taken(&d, i)
            && let Some(e) = d.passport(i)
        {
            i = e;
            continue;
        }
        if c == b':'
            && b.get(i + 1) == Some(&b':')
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && let Some(e) = d.ipv6(i)
        {
            i = e;
            continue;
        }
        if c >= 0xE0
            && let Some(ch) = t.get(i..).and_then(|s| s.chars().next())
        {
            if let Some(e) = d.plate(i, ch) {
                i = e;
                continue;
            }
            i += ch.len_utf8();
            continue;
        }
        i += 1;
    }
    d.out.sort_by_key(|f| f.start);
    d.out
}

/// `text` with every finding replaced by its masked value.
pub fn mask_text(text: &str, findings: &[PiiFinding]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for f in findings {
        if f.start < pos {
            continue;
        }
        out.push_str(text.get(pos..f.start).unwrap_or(""));
        out.push_str(&f.masked);
        pos = f.end;
    }
    out.push_str(text.get(pos..).unwrap_or(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a valid ID number by computing its check character.
    fn make_id(first17: &str) -> String {
        let c = id_check_char(first17).unwrap_or('?');
        format!("{first17}{c}")
    }

    fn kinds(text: &str) -> Vec<(PiiKind, String)> {
        detect_pii(text)
            .into_iter()
            .map(|f| (f.kind, text[f.start..f.end].to_string()))
            .collect()
    }

    #[test]
    fn id_numbers_check_digit_date_and_region() {
        // The GB 11643 example number.
        assert!(id_card_valid("11010519491231002X"));
        assert!(id_card_valid("11010519491231002x"));
        for base in [
            "44030419900307123",
            "31010120000229456",
            "65010219851111001",
        ] {
            let id = make_id(base);
            assert!(id_card_valid(&id), "{id}");
            // Every other check character is rejected.
            for wrong in "0123456789X"
                .chars()
                .filter(|c| Some(*c) != id_check_char(base))
            {
                assert!(!id_card_valid(&format!("{base}{wrong}")), "{base}{wrong}");
            }
        }
        assert!(!id_card_valid(&make_id("44030419900230123")), "30 February");
        assert!(
            !id_card_valid(&make_id("31010119000229456")),
            "1900 is not a leap year"
        );
        assert!(
            !id_card_valid(&make_id("99030419900307123")),
            "no province 99"
        );
        assert!(
            !id_card_valid(&make_id("44030430000307123")),
            "born in the future"
        );
        assert!(!id_card_valid("4403041990030712"), "too short");
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("4111111111111111"));
        assert!(!luhn_valid("4111111111111112"));
        // Exactly one check digit completes a number.
        let valid: Vec<u32> = (0..10)
            .filter(|d| luhn_valid(&format!("621226220102355722{d}")))
            .collect();
        assert_eq!(valid.len(), 1);
    }

    #[test]
    fn digit_boundaries_next_to_chinese() {
        let id = "11010519491231002X";
        let text = format!("我的身份证号{id}，手机13812345678。");
        assert_eq!(
            kinds(&text),
            [
                (PiiKind::IdCard, id.to_string()),
                (PiiKind::Mobile, "13812345678".into())
            ]
        );
        // Glued to more digits or letters: not a phone number.
        assert!(kinds("订单1381234567890").is_empty());
        assert!(kinds("编号A13812345678").is_empty());
        // Invalid check digit: not reported as an ID.
        assert!(
            kinds("号码110105194912310021")
                .iter()
                .all(|k| k.0 != PiiKind::IdCard)
        );
    }

    #[test]
    fn all_kinds_with_masks_and_original_spans() {
        let text = "电话：１３８ ００１３ ８０００，+86 139 1234 5678；座机010-62345678；\
                    卡号6222 0212 3456 7890 128? 邮箱 zhang.san@example.com.cn；\
                    护照E12345678，车牌京A·12345，服务器192.168.1.20和2001:db8::1。";
        let found = detect_pii(text);
        let got: Vec<(PiiKind, &str, &str)> = found
            .iter()
            .map(|f| (f.kind, &text[f.start..f.end], f.masked.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (PiiKind::Mobile, "１３８ ００１３ ８０００", "138****8000"),
                (PiiKind::Mobile, "+86 139 1234 5678", "139****5678"),
                (PiiKind::Landline, "010-62345678", "0106*****78"),
                (
                    PiiKind::BankCard,
                    "6222 0212 3456 7890 128",
                    "***************0128"
                ),
                (
                    PiiKind::Email,
                    "zhang.san@example.com.cn",
                    "z***@example.com.cn"
                ),
                (PiiKind::Passport, "E12345678", "E******78"),
                (PiiKind::LicencePlate, "京A·12345", "京A***45"),
                (PiiKind::Ipv4, "192.168.1.20", "192.168.*.*"),
                (PiiKind::Ipv6, "2001:db8::1", "2001:*"),
            ]
        );
        assert!(found[0].checks.contains(&"context"));
        let masked = mask_text(text, &found);
        assert!(masked.contains("138****8000") && !masked.contains("１３８ ００１３"));
        assert!(masked.contains("z***@example.com.cn"));
    }

    #[test]
    fn bank_cards_luhn_raises_the_score() {
        let good = "4111111111111111";
        let bad = "4111111111111112";
        let score = |t: &str| detect_pii(t).first().map(|f| (f.kind, f.score));
        assert_eq!(
            score(&format!("号码{good}")),
            Some((PiiKind::BankCard, 0.6))
        );
        assert_eq!(
            score(&format!("号码{bad}")),
            None,
            "no Luhn, no context: not reported"
        );
        let with_context = score(&format!("银行卡号{bad}"));
        assert_eq!(with_context, Some((PiiKind::BankCard, 0.6)));
    }

    #[test]
    fn things_that_are_not_pii() {
        for t in [
            "版本1.2.3.4567",
            "价格 100 200 300 元",
            "日期2024-01-01",
            "300.1.1.1",
            "E1234567",
            "京A1",
            "abc@def",
        ] {
            assert!(kinds(t).is_empty(), "{t}: {:?}", kinds(t));
        }
    }
}
