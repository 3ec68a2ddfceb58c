//! `text_utils`: text clean-up functions for plwasm, written with the plwasm-guest SDK.
//!
//! Install with `udf-examples/text-rust/install.sql`; the SQL signatures come from the module.

use plwasm_guest::{export, warning};

/// URL slug: lower case, accents folded to ASCII, runs of anything else become one `-`.
/// `slugify('Crème Brûlée — 2 for £5!')` = `creme-brulee-2-for-5`.
#[export]
fn slugify(s: &str) -> String {
    let mut slug = String::with_capacity(s.len());
    let mut pending_dash = false;
    for c in s.chars().flat_map(fold_char) {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    slug
}

/// Latin letters with diacritics to their ASCII base letters (ß, æ, œ, ø become two or one).
fn fold_char(c: char) -> impl Iterator<Item = char> {
    let folded: &str = match c {
        'à'..='å' | 'À'..='Å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' | 'Æ' => "ae",
        'ç' | 'Ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è'..='ë' | 'È'..='Ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ì'..='ï' | 'Ì'..='Ï' | 'ī' | 'į' | 'ı' => "i",
        'ł' | 'Ł' | 'ľ' => "l",
        'ñ' | 'Ñ' | 'ń' | 'ň' => "n",
        'ò'..='ö' | 'Ò'..='Ö' | 'ø' | 'Ø' | 'ō' | 'ő' => "o",
        'œ' | 'Œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'Š' | 'ş' => "s",
        'ß' => "ss",
        'ť' | 'ţ' => "t",
        'ù'..='ü' | 'Ù'..='Ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' | 'Ý' => "y",
        'ź' | 'ż' | 'ž' | 'Ž' => "z",
        _ => "",
    };
    let single = folded.is_empty().then_some(c);
    folded.chars().chain(single)
}

/// The canonical form of an e-mail address, or NULL if it is not one: trimmed, lower case, the
/// `+tag` removed; for Gmail, dots in the local part removed and googlemail.com → gmail.com.
#[export]
fn normalize_email(s: &str) -> Option<String> {
    let s = s.trim().to_lowercase();
    let (local, domain) = s.rsplit_once('@')?;
    let local = local.split('+').next().unwrap_or(local);
    if local.is_empty() || !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return None;
    }
    if local.contains(char::is_whitespace) || domain.contains(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-'))
    {
        return None;
    }
    let (local, domain) = match domain {
        "gmail.com" | "googlemail.com" => (local.replace('.', ""), "gmail.com"),
        _ => (local.to_string(), domain),
    };
    Some(format!("{local}@{domain}"))
}

/// `a****@example.com`: the local part masked after its first `keep` characters (1 when NULL).
#[export]
fn mask_email(s: &str, keep: Option<i32>) -> String {
    let keep = keep.unwrap_or(1).max(0) as usize;
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            let shown: String = local.chars().take(keep).collect();
            let hidden = local.chars().count().saturating_sub(keep);
            format!("{shown}{}@{domain}", "*".repeat(hidden))
        }
        None => "*".repeat(s.chars().count()),
    }
}

/// The host of a URL, lower case, without `www.`, user info or port; NULL if there is none.
#[export]
fn url_host(url: &str) -> Option<String> {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "0"));
    // `mailto:x` and the like have no authority: a port must be digits.
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let host = host.to_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_string();
    (!host.is_empty()).then_some(host)
}

/// Whether `s` is an e-mail address `normalize_email` accepts; says why not in a WARNING.
#[export(stable)]
fn check_email(s: &str) -> bool {
    let ok = normalize_email(s).is_some();
    if !ok {
        warning(&format!("\"{s}\" is not an e-mail address"));
    }
    ok
}
