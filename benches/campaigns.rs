//! Campaign detection over a large consultation's proposals: 10,000 texts of
//! 50–300 words grouped by `intake::campaigns::group`, in process (the
//! figure is the grouping's alone: normalising, signatures, banding,
//! confirming, joining).
//!
//!     cargo bench --bench campaigns
//!
//! The mix: campaigns of 1,000, 400, 150, 50 and 20 copies and 30 of 3 to 10
//! (each copy with its own organisation and signer, some with a sentence
//! dropped, a few words changed, or in capitals), one letter sent unchanged
//! 300 times (a web form's one-click campaign), and distinct proposals on
//! six topics filling the rest. The distinct ones are put together from
//! shared pools of phrases, so they are more alike than proposals written
//! apart and bring up more candidate pairs: a hard case. Every run must
//! find exactly the campaigns; each run's time and the median of RUNS runs
//! are printed.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use cocreate::intake::campaigns::group;

mod support;
use support::median;

const PROPOSALS: usize = 10_000;
/// Runs; BENCH_RUNS overrides it for a quick look.
const RUNS: usize = 5;
const TARGET_SECONDS: f64 = 2.0;

fn runs() -> usize {
    support::runs(RUNS)
}

/// Phrases by slot of a sentence, `|` between them: opener, subject, modal,
/// verb, (object by topic,) when, why.
const OPENERS: &str = "We propose that|Our proposal is that|In our view|We ask that|It is time that|\
    Our members believe that|Citizens expect that|We recommend that|After our survey|\
    Ne propozojmë që|Sipas nesh|Kërkojmë që";
const SUBJECTS: &str = "the ministry of finance|every municipality|the government|each ministry|\
    the budget office|local councils|the health inspectorate|public agencies|\
    the budget committee of parliament|state enterprises|school boards|the environment agency|\
    courts|the procurement agency|regional hospitals|bashkia|ministria e arsimit|\
    agjencia e prokurimit";
const MODALS: &str = "should|must|ought to|would do well to|could|is expected to";
const VERBS: &str = "publish|release|explain|disclose|put online|report|open up|present|review|\
    consult citizens on|audit|simplify";
/// Budget, health, education, environment, justice, procurement.
const OBJECTS: [&str; 6] = [
    "its spending data|the draft budget|monthly expenditure|a citizens' budget|salary costs",
    "waiting lists|medicine stocks|hospital budgets|inspection reports|complaints by patients",
    "school results|teacher vacancies|textbook costs|school transport plans|scholarship rules",
    "air quality data|building permits|waste collection contracts|river pollution reports|\
     tree felling permits",
    "court decisions|case backlogs|asset declarations of judges|legal aid budgets|prison conditions",
    "procurement contracts|tender documents|the names of bidders|contract amendments|\
     framework agreements",
];
const WHEN: &str = "every month|in machine-readable form|before the vote in parliament|\
    within thirty days|on a single portal|in plain language|line by line|as open data|each quarter|\
    in Albanian and English|at public hearings|çdo muaj|në faqen e internetit";
/// The last is none: some sentences give no reason.
const WHY: &str = "so that citizens can follow public money|so journalists can check how funds are used|\
    to reduce the risk of corruption|so that civil society can comment in time|\
    to rebuild trust in institutions|so that municipalities can be compared|\
    to let auditors trace each payment|so that waste is spotted early|\
    because people ask us every week|që qytetarët të jenë të informuar|";
const NAMES: &str = "Arbër|Elira|Dritan|Mirela|Gëzim|Besa|Ilir|Jonida|Sokol|Vjosa";

/// One of the phrases of `pool`.
fn pick<'p>(rng: &mut StdRng, pool: &'p str) -> &'p str {
    let phrases: Vec<&str> = pool.split('|').collect();
    phrases.choose(rng).unwrap()
}

/// A proposal on one topic of about `words` words, sentence by sentence.
fn proposal(rng: &mut StdRng, words: usize) -> Vec<String> {
    let objects = *OBJECTS.choose(rng).unwrap();
    let mut sentences = Vec::new();
    let mut count = 0;
    while count < words {
        let parts = [OPENERS, SUBJECTS, MODALS, VERBS, objects, WHEN, WHY].map(|p| pick(rng, p));
        let s = parts.join(" ").trim_end().to_string() + ".";
        count += s.split_whitespace().count();
        sentences.push(s);
    }
    sentences
}

/// The `n`th organisation's copy of a campaign letter: its own name and
/// signer; a third drop a sentence, half change a few words, a tenth are in
/// capitals.
fn copy(rng: &mut StdRng, letter: &[String], n: usize) -> String {
    let mut sentences = letter.to_vec();
    if rng.random_ratio(1, 3) {
        sentences.remove(rng.random_range(0..sentences.len()));
    }
    let mut words: Vec<String> = sentences.join(" ").split(' ').map(str::to_owned).collect();
    if rng.random_bool(0.5) {
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..words.len());
            words[at] = "indeed".into();
        }
    }
    let name = pick(rng, NAMES);
    let text = format!(
        "Dear Minister,\n\n{}\n\nOrganisation no. {n}, {name}",
        words.join(" ")
    );
    if rng.random_ratio(1, 10) {
        text.to_uppercase()
    } else {
        text
    }
}

/// The proposals, shuffled, and the campaign sizes hidden in them.
fn generate() -> (Vec<String>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(2026);
    let mut sizes = vec![1_000, 400, 150, 50, 20];
    sizes.extend((0..30).map(|i| 3 + i % 8));
    let mut texts = Vec::with_capacity(PROPOSALS);
    for &size in &sizes {
        let words = rng.random_range(80..=250);
        let letter = proposal(&mut rng, words);
        texts.extend((0..size).map(|n| copy(&mut rng, &letter, n)));
    }
    let unchanged = proposal(&mut rng, 120).join(" ");
    texts.extend(std::iter::repeat_n(unchanged, 300));
    sizes.push(300);
    while texts.len() < PROPOSALS {
        let words = rng.random_range(50..=300);
        texts.push(proposal(&mut rng, words).join(" "));
    }
    // A campaign's copies arrive among the other proposals, not together.
    texts.shuffle(&mut rng);
    sizes.sort_unstable();
    (texts, sizes)
}

fn main() {
    let (texts, want) = generate();
    let input: Vec<(i64, &str)> = (0..).zip(texts.iter().map(String::as_str)).collect();
    let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    println!(
        "campaign detection: {PROPOSALS} proposals, {words} words, {} campaigns hidden ({} copies)",
        want.len(),
        want.iter().sum::<usize>()
    );
    let mut times = Vec::new();
    for run in 1..=runs() {
        let start = Instant::now();
        let groups = group(&input);
        let seconds = start.elapsed().as_secs_f64();
        let mut found: Vec<usize> = groups.iter().map(Vec::len).collect();
        found.sort_unstable();
        assert_eq!(found, want, "the groups found are not the campaigns");
        println!("run {run}: {seconds:.3} s, {} groups", groups.len());
        times.push(seconds);
    }
    let m = median(times);
    println!(
        "median {m:.3} s ({:.1} µs per proposal); target under {TARGET_SECONDS} s: {}",
        m * 1e6 / PROPOSALS as f64,
        if m < TARGET_SECONDS { "met" } else { "NOT met" }
    );
}
