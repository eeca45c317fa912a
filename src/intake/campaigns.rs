//! Campaigns: near-identical proposals (form letters, copy-paste campaigns)
//! found among many, so a reviewer answers a campaign once.
//!
//! Texts are normalised, cut into overlapping word shingles, and summarised
//! by MinHash signatures whose agreement estimates the Jaccard similarity of
//! their shingle sets. Comparing every pair would be quadratic, so
//! locality-sensitive hashing (banding) proposes candidate pairs; each is
//! confirmed by its estimated similarity, and confirmed pairs are joined
//! transitively: copy A edited into B, and B into C, is one campaign.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use super::decision::on_every_core;

/// Words per shingle. One word would compare vocabularies, and proposals on
/// the same topic share most of theirs; three keep enough word order to tell
/// one author's phrasing from another's, while a changed word only spoils
/// three shingles (five words would spoil five, and lightly edited copies
/// would drift apart).
pub const SHINGLE_WORDS: usize = 3;

/// MinHash functions per signature. The estimate's standard error is
/// sqrt(J(1-J)/128), at most 0.044: a pair at 0.37 (the most alike of the
/// tests' distinct proposals) lies 3 errors below [`THRESHOLD`], a pair at
/// 0.71 (the least alike of their copies) 5 above. More functions cost
/// time linearly for a margin that grows with the square root.
pub const SIGNATURE_LEN: usize = 128;

/// Estimated Jaccard similarity of shingle sets at or above which two texts
/// are copies of one letter. Copies with other organisations' names and
/// signatures, a sentence more or less, a few words changed, other line
/// breaks and case share 0.71–0.97 of their shingles (the tests' letters);
/// proposals written apart share almost no three words in a row, and even
/// the tests' distinct proposals, put together from one pool of phrases to
/// be as alike as different proposals get, reach only 0.37.
pub const THRESHOLD: f64 = 0.5;

/// Words a text needs to be part of a campaign.
pub const MIN_WORDS: usize = 8;

/// LSH bands of `ROWS` hashes each: two texts are candidates when all of one
/// band agrees. With 32 × 4 a pair at [`THRESHOLD`] becomes a candidate with
/// probability 1 - (1 - 0.5⁴)³² ≈ 0.87, at 0.6 ≈ 0.99, at 0.7 > 0.999 (and
/// a campaign needs only a connected chain of pairs), while pairs at 0.2
/// come up in 5% of cases and are then rejected by the estimate.
const BANDS: usize = 32;
const ROWS: usize = SIGNATURE_LEN / BANDS;

type Signature = [u64; SIGNATURE_LEN];

/// The `SIGNATURE_LEN` functions, `x ↦ a·x + b` (mod 2⁶⁴) with odd `a`:
/// each a permutation of u64, and on shingle hashes (already mixed) their
/// minima estimate Jaccard as splitmix64 per function does (2,000 pairs at
/// each of 0.2, 0.35, 0.5 and 0.7: the same mean and spread) in half the
/// time. From splitmix64's sequence at a fixed start, so the same texts
/// group the same way every time.
const FUNCTIONS: [(u64, u64); SIGNATURE_LEN] = {
    let mut functions = [(0, 0); SIGNATURE_LEN];
    let mut state: u64 = 0x5EED_CA3D_A16E_0001;
    let mut i = 0;
    while i < SIGNATURE_LEN {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let a = mix(state) | 1;
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        functions[i] = (a, mix(state));
        i += 1;
    }
    functions
};

/// The functions' `a`s and `b`s apart, for [`minima`].
const MULTIPLIERS: [u64; SIGNATURE_LEN] = half(false);
const ADDENDS: [u64; SIGNATURE_LEN] = half(true);

/// Every function's `a` (or, with `addends`, its `b`).
const fn half(addends: bool) -> [u64; SIGNATURE_LEN] {
    let mut m = [0; SIGNATURE_LEN];
    let mut i = 0;
    while i < SIGNATURE_LEN {
        m[i] = if addends {
            FUNCTIONS[i].1
        } else {
            FUNCTIONS[i].0
        };
        i += 1;
    }
    m
}

/// Groups of near-identical texts, each group's ids in the order given,
/// groups ordered by their first member; texts alike with no other are in
/// no group.
///
/// Normalising and signing, nine tenths of the work, run on every core
/// (through `blocking::run`, so an async caller's other tasks move on).
pub fn group(texts: &[(i64, &str)]) -> Vec<Vec<i64>> {
    let mut normal: Vec<(&str, String)> = texts.iter().map(|(_, t)| (*t, String::new())).collect();
    on_every_core(&mut normal, |(text, out)| *out = normalise(text));
    let mut sets = Sets::new(texts.len());
    // Texts equal once normalised are copies and are signed once: a letter
    // sent unchanged by 10,000 would otherwise put 50 million pairs in a
    // bucket of every band. A text of fewer than MIN_WORDS words ("please
    // see the attached") is no campaign, however often it is sent: what
    // was proposed is elsewhere.
    let mut first: HashMap<&str, usize, FixedState> = HashMap::with_hasher(FixedState::default());
    let mut signed: Vec<(usize, Signature)> = Vec::new();
    for (i, (_, text)) in normal.iter().enumerate() {
        if text.split(' ').nth(MIN_WORDS - 1).is_none() {
            continue;
        }
        match first.entry(text) {
            Entry::Occupied(f) => sets.union(*f.get(), i),
            Entry::Vacant(v) => {
                v.insert(i);
                signed.push((i, [0; SIGNATURE_LEN]));
            }
        }
    }
    on_every_core(&mut signed, |(i, sig)| *sig = signature(&normal[*i].1));
    for band in 0..BANDS {
        let rows = band * ROWS..(band + 1) * ROWS;
        // The keys are MinHash values, already well mixed: a fast fixed
        // hasher (foldhash) is enough, and the same texts group the same
        // way every run.
        let mut buckets: HashMap<&[u64], Vec<usize>, FixedState> =
            HashMap::with_hasher(FixedState::default());
        for (at, (_, sig)) in signed.iter().enumerate() {
            buckets.entry(&sig[rows.clone()]).or_default().push(at);
        }
        for members in buckets.values().filter(|m| m.len() > 1) {
            // Each member is compared with one member (the first met) of
            // each set already seen in this bucket, not with every member:
            // a campaign of thousands of edited copies then costs one
            // comparison a copy, not one a pair (5,000 copies took 1 s on
            // two cores comparing pairs). A copy like another copy but not
            // like that set's first member can be missed in one band; the
            // other 31 bands, each with its own first members, join it.
            let mut heads: Vec<usize> = Vec::new();
            for &b in members {
                let (ib, sb) = &signed[b];
                let mut placed = false;
                for &h in &heads {
                    let (ih, sh) = &signed[h];
                    if sets.find(*ih) == sets.find(*ib) || similarity(sh, sb) >= THRESHOLD {
                        sets.union(*ih, *ib);
                        placed = true;
                        break;
                    }
                }
                if !placed {
                    heads.push(b);
                }
            }
        }
    }
    sets.groups(texts)
}

/// Lower-case words of letters and digits, one space apart. Diacritics are
/// kept: "ë" and "e" are different letters in Albanian. NFC first, so an
/// "ë" typed as "e" + combining diaeresis is the same letter and not a
/// word break.
fn normalise(text: &str) -> String {
    // Nearly every text is in NFC already (a keyboard types "ë" as one
    // character), and the quick check says so without building anything:
    // composing it anyway was a fifth of a digest's time.
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        words(text.chars(), text.len())
    } else {
        words(text.nfc(), text.len())
    }
}

fn words(chars: impl Iterator<Item = char>, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut pending_space = false;
    for c in chars {
        let alphanumeric = if c.is_ascii() {
            c.is_ascii_alphanumeric()
        } else {
            c.is_alphanumeric()
        };
        if alphanumeric {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
        } else {
            pending_space = true;
        }
    }
    out
}

/// The MinHash signature of a normalised text's shingles. Each word is
/// hashed once (foldhash with its fixed seed: signatures are never stored,
/// so only one process need agree with itself); a shingle's hash mixes its words' in order, and the
/// `SIGNATURE_LEN` functions are one multiply-add each on that, rather than
/// a hash each.
fn signature(text: &str) -> Signature {
    let hasher = FixedState::default();
    let words: Vec<u64> = text.split(' ').map(|w| hasher.hash_one(w)).collect();
    let shingles: Vec<u64> = words
        .windows(SHINGLE_WORDS)
        .map(|s| s.iter().fold(0u64, |h, w| mix(h.rotate_left(21) ^ w)))
        .collect();
    minima_fastest(&shingles)
}

/// [`minima`] compiled for the widest vectors the processor has: the
/// minima are a third of a digest's work, and eight multiply-adds at a
/// time (AVX-512) or four (AVX2) beat one.
fn minima_fastest(shingles: &[u64]) -> Signature {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the processor has just been found to have the
            // features the function is compiled for.
            return unsafe { minima_avx512(shingles) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { minima_avx2(shingles) };
        }
    }
    minima(shingles)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
fn minima_avx512(shingles: &[u64]) -> Signature {
    minima(shingles)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn minima_avx2(shingles: &[u64]) -> Signature {
    minima(shingles)
}

/// Each function's minimum over the shingles' hashes. The functions' two
/// halves are separate arrays so the compiler can load them as vectors.
#[inline(always)]
fn minima(shingles: &[u64]) -> Signature {
    let mut sig = [u64::MAX; SIGNATURE_LEN];
    for &h in shingles {
        for ((min, a), b) in sig.iter_mut().zip(&MULTIPLIERS).zip(&ADDENDS) {
            *min = (*min).min(h.wrapping_mul(*a).wrapping_add(*b));
        }
    }
    sig
}

/// splitmix64's finaliser: a bijection on u64 in which every input bit
/// moves about half the output bits, so a shingle's hash depends on all of
/// its words, in order.
const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The estimated Jaccard similarity: the share of functions whose minimum
/// the two texts have in common.
fn similarity(a: &Signature, b: &Signature) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / SIGNATURE_LEN as f64
}

/// Union-find over the texts' positions. The root is always a set's
/// smallest position, so walking positions in order meets each set at its
/// first member.
struct Sets {
    parent: Vec<usize>,
}

impl Sets {
    fn new(n: usize) -> Self {
        Sets {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            // Path halving keeps the chains short without recursion.
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        self.parent[a.max(b)] = a.min(b);
    }

    /// The sets of more than one text, as ids.
    fn groups(mut self, texts: &[(i64, &str)]) -> Vec<Vec<i64>> {
        let mut slot: Vec<Option<usize>> = vec![None; texts.len()];
        let mut groups: Vec<Vec<i64>> = Vec::new();
        for (i, (id, _)) in texts.iter().enumerate() {
            let root = self.find(i);
            let g = *slot[root].get_or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push(*id);
        }
        groups.retain(|g| g.len() > 1);
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The minima are the same whichever vectors compute them.
    #[test]
    fn every_build_of_the_minima_agrees() {
        let mut rng = StdRng::seed_from_u64(7);
        for n in [0, 1, 3, 250] {
            let shingles: Vec<u64> = (0..n).map(|_| rng.random()).collect();
            let plain = minima(&shingles);
            assert_eq!(minima_fastest(&shingles), plain);
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: checked just above.
                    assert_eq!(unsafe { minima_avx2(&shingles) }, plain);
                }
                if std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: checked just above.
                    assert_eq!(unsafe { minima_avx512(&shingles) }, plain);
                }
            }
        }
    }
    use rand::rngs::StdRng;
    use rand::seq::IndexedRandom;
    use rand::{Rng, SeedableRng};
    use std::collections::HashSet;

    const LETTER_SQ: &str = "Të nderuar përfaqësues të Ministrisë së Financave,

Ne, organizatat e shoqërisë civile që nënshkruajmë këtë letër, ju shkruajmë në kuadër të konsultimit për planin e veprimit të Partneritetit për Qeverisje të Hapur. Kërkojmë që buxheti i shtetit të publikohet çdo muaj në formë të hapur dhe të lexueshme nga kompjuteri, me të dhëna për çdo institucion dhe çdo zë shpenzimi.

Qytetarët kanë të drejtë të dinë si shpenzohen paratë e tyre. Sot raportet e zbatimit të buxhetit dalin me vonesë, në formate që nuk përpunohen dot, dhe shpesh pa shpjegime për ndryshimet gjatë vitit. Kjo e bën të vështirë për gazetarët, bashkitë dhe organizatat të ndjekin premtimet e qeverisë.

Propozojmë tre hapa konkretë. Së pari, një portal i vetëm ku publikohen të gjitha të dhënat buxhetore brenda tridhjetë ditëve nga mbyllja e çdo muaji. Së dyti, një buxhet qytetar në gjuhë të thjeshtë, i publikuar bashkë me projektbuxhetin. Së treti, dëgjesa publike para votimit në Kuvend, ku çdo ministri shpjegon prioritetet e veta.

Këto masa nuk kërkojnë shpenzime të mëdha, por kërkojnë vullnet politik. Jemi të gatshëm të ndihmojmë me ekspertizën tonë dhe të marrim pjesë në grupet e punës.

Me respekt,
{org}
{signer}";

    const LETTER_EN: &str = "Dear Minister of Justice,

We write as organisations that took part in the last action plan. Draft laws are too often put to consultation for a week or less, sometimes over a holiday, and the comments received are never answered.

We propose a rule that every draft law stays open for comment for at least thirty days, that each draft is published with a short explanation in plain language, and that the ministry publishes a table of every comment with the reason it was accepted or refused.

Such a rule costs little and would make consultation more than a formality. We are ready to help draft it.

Yours sincerely,
{org}";

    const KINDS: [&str; 5] = [
        "Shoqata",
        "Qendra Rinore",
        "Forumi",
        "Lëvizja",
        "Fondacioni",
    ];
    const TOWNS: [&str; 10] = [
        "Tiranë", "Durrës", "Shkodër", "Korçë", "Elbasan", "Vlorë", "Fier", "Berat", "Lezhë",
        "Kukës",
    ];
    const SIGNERS: [&str; 5] = [
        "Arbër Hoxha",
        "Elira Çela",
        "Dritan Kola",
        "Gëzim Leka",
        "Besa Meçe",
    ];

    /// The Albanian letter as the `i`th of 50 organisations sent it: its own
    /// name and signer; a sentence added, one removed, or words changed; its
    /// own line breaks, punctuation or case.
    fn campaign_copy(i: usize) -> String {
        let org = format!("{} {}", KINDS[i % 5], TOWNS[i / 5]);
        let mut text = LETTER_SQ
            .replace("{org}", &org)
            .replace("{signer}", SIGNERS[i / 10]);
        let (kept, dropped) = (
            "gjatë vitit.",
            "Këto masa nuk kërkojnë shpenzime të mëdha, por kërkojnë vullnet politik. ",
        );
        match i % 4 {
            1 => {
                text = text.replace(
                    kept,
                    &format!("{kept} Te ne, të rinjtë nuk dinë ku ta gjejnë buxhetin e bashkisë."),
                )
            }
            2 => text = text.replace(dropped, ""),
            _ => {}
        }
        if i.is_multiple_of(3) {
            for (from, to) in [
                ("Kërkojmë", "Ju lutemi"),
                ("çdo muaj", "çdo tremujor"),
                ("thjeshtë", "kuptueshme"),
            ] {
                text = text.replace(from, to);
            }
        }
        match i % 5 {
            0 => text.to_uppercase(),
            1 => text.replace("\n\n", " "),
            2 => text.replace([',', '.'], ""),
            3 => text.replace('\n', "\r\n").replace(", ", " ;  "),
            _ => text,
        }
    }

    /// The English letter as the `i`th of 5 organisations sent it.
    fn small_campaign_copy(i: usize) -> String {
        let text = LETTER_EN.replace("{org}", &format!("{} Watch, {}", TOWNS[i], SIGNERS[i]));
        match i {
            1 => text.replace("We are ready to help draft it.", ""),
            2 => text.to_lowercase().replace("thirty", "30"),
            _ => text,
        }
    }

    /// Budget-transparency proposals, each in its own words: sentences put
    /// together from the same pools of phrases, so any two share most of
    /// their vocabulary and many phrases, but few sentences.
    fn distinct_proposals(n: usize) -> Vec<String> {
        const POOLS: [&str; 7] = [
            "We propose that|Our proposal is that|In our view|We ask that|It is time that|\
             Our members believe that",
            "the ministry of finance|every municipality|the government|each ministry|the budget office|\
             local councils|the treasury|public agencies|the budget committee of parliament|state enterprises",
            "should|must|ought to|would do well to|could",
            "publish|release|explain|disclose|put online|report|open up|present",
            "its spending data|the draft budget|procurement contracts|monthly expenditure|a citizens' budget|\
             audit findings|grant allocations|capital investment plans|salary costs|budget execution reports",
            "every month|in machine-readable form|before the vote in parliament|within thirty days|\
             on a single portal|in plain language|line by line|as open data|each quarter",
            "so that citizens can follow public money|so journalists can check how funds are used|\
             to reduce the risk of corruption|so that civil society can comment in time|\
             to rebuild trust in institutions|so that municipalities can be compared|\
             to let auditors trace each payment|so that waste is spotted early",
        ];
        let pools: Vec<Vec<&str>> = POOLS.iter().map(|p| p.split('|').collect()).collect();
        let mut rng = StdRng::seed_from_u64(7);
        let sentence = |rng: &mut StdRng| {
            let words: Vec<&str> = pools.iter().map(|p| *p.choose(rng).unwrap()).collect();
            words.join(" ") + "."
        };
        (0..n)
            .map(|_| {
                let sentences = rng.random_range(8..14);
                (0..sentences)
                    .map(|_| sentence(&mut rng))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    fn numbered(texts: impl IntoIterator<Item = String>, first: i64) -> Vec<(i64, String)> {
        (first..).zip(texts).collect()
    }

    fn borrowed(texts: &[(i64, String)]) -> Vec<(i64, &str)> {
        texts.iter().map(|(id, t)| (*id, t.as_str())).collect()
    }

    #[test]
    fn fifty_edited_copies_of_one_letter_are_one_group() {
        let texts = numbered((0..50).map(campaign_copy), 1);
        assert_eq!(group(&borrowed(&texts)), [Vec::from_iter(1..=50)]);
    }

    #[test]
    fn distinct_proposals_on_one_topic_are_not_grouped() {
        let texts = distinct_proposals(50);
        // Compared as bags of words, the average pair would pass the
        // threshold: it is word order that tells them apart.
        let folded: Vec<String> = texts.iter().map(|t| normalise(t)).collect();
        let words: Vec<HashSet<&str>> = folded.iter().map(|t| t.split(' ').collect()).collect();
        let mut sum = 0.0;
        for (k, b) in words.iter().enumerate() {
            for a in &words[..k] {
                sum += a.intersection(b).count() as f64 / a.union(b).count() as f64;
            }
        }
        let mean = sum / (50.0 * 49.0 / 2.0);
        assert!(mean >= THRESHOLD, "bag-of-words similarity {mean}");
        assert!(group(&borrowed(&numbered(texts, 1))).is_empty());
    }

    #[test]
    fn two_campaigns_among_distinct_proposals_are_two_groups() {
        let distinct = numbered(distinct_proposals(50), 100);
        let copies = numbered((0..50).map(campaign_copy), 200);
        let small = numbered((0..5).map(small_campaign_copy), 300);
        // Interleaved, the small campaign's first copy after the big one's.
        let mut texts = Vec::new();
        for i in 0..50 {
            texts.extend([distinct[i].clone(), copies[i].clone()]);
            texts.extend(i.checked_sub(1).and_then(|j| small.get(j)).cloned());
        }
        let want = [Vec::from_iter(200..250), Vec::from_iter(300..305)];
        assert_eq!(group(&borrowed(&texts)), want);
    }

    #[test]
    fn edge_cases() {
        assert!(group(&[]).is_empty());
        assert!(group(&[(1, LETTER_EN)]).is_empty());
        // Empty texts, or nothing but punctuation, are never alike.
        assert!(group(&[(1, ""), (2, ""), (3, " \n "), (4, "..."), (5, "...")]).is_empty());
        // Identical once normalised; ids in the order given, groups by
        // their first member. Short texts, identical or not, are no
        // campaign: "see the attached" sent with different files.
        let upper = LETTER_EN.to_uppercase();
        let note = "Ju lutem shikoni dokumentin e bashkëngjitur me propozimet tona.";
        let texts = [
            (10, LETTER_EN),
            (20, "Po!"),
            (30, "po"),
            (40, &upper),
            (50, "Ju lutem shikoni bashkëngjitur."),
            (60, "ju lutem shikoni bashkëngjitur"),
            (70, note),
            (80, note),
        ];
        assert_eq!(group(&texts), [vec![10, 40], vec![70, 80]]);
    }

    #[test]
    fn normalising_keeps_albanian_letters() {
        assert_eq!(
            normalise("  Çështja:  BUXHETI,\r\në-ja! "),
            "çështja buxheti ë ja"
        );
        // "ë" typed as "e" and a combining diaeresis is the same letter.
        assert_eq!(normalise("Të dhëna"), normalise("Te\u{308} dhe\u{308}na"));
    }
}
