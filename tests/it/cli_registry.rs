//! The registry as the POC uses it: `cocreate registry …` on real files,
//! good and bad, read back through the same CLI.

use crate::common;

use crate::common::{TestDb, cocreate, ok, registry_csv, stderr, stdout, write};

fn active_count(dir: &std::path::Path, db: &TestDb) -> String {
    let out = cocreate(dir, db, &["registry", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().last().unwrap_or("").to_string()
}

#[test]
fn a_good_file_imports_and_importing_it_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let file = write(dir.path(), "registry.csv", registry_csv(1, 30));
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "Read {} (UTF-8, separated by ',').\nAdded 30, updated 0, unchanged 0, inactivated 0, skipped 0.\n",
            file.display()
        )
    );
    let again = cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    assert!(stdout(&again).contains("Added 0, updated 0, unchanged 30, inactivated 0, skipped 0."));
    assert_eq!(
        active_count(dir.path(), &db),
        "30 active organisations, 0 inactive."
    );
}

#[test]
fn a_bad_header_is_refused_in_one_sentence_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let file = write(
        dir.path(),
        "wrong.csv",
        "Organisation;Town;Phone\nShoqata A;Tiranë;123\n",
    );
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {} was not imported: the first line is not a usable header: it needs columns for registration number, email; found 'Organisation', 'Town', 'Phone'\n",
            file.display()
        )
    );
    assert_eq!(
        active_count(dir.path(), &db),
        "0 active organisations, 0 inactive."
    );
}

#[test]
fn bad_rows_are_reported_by_line_and_skipped_while_good_rows_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let file = write(
        dir.path(),
        "rows.csv",
        "NIPT,Emri,Email,Gjuha\n\
         A1,Shoqata Një,nje@x.al,\n\
         A2,,dy@x.al,\n\
         A3,Shoqata Tre,tre-at-x.al,\n\
         A4,Shoqata Katër,kater@x.al,de\n\
         A1,Shoqata Një Sërish,nje2@x.al,\n\
         ,Pa numër,pa@x.al,\n\
         A7,Shoqata Shtatë,shtate@x.al; gabim@,en\n",
    );
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "Read {} (UTF-8, separated by ',').\n\
             Skipped rows (5):\n  \
             line 3 (A2): has no name\n  \
             line 4 (A3): has no valid email address ('tre-at-x.al' is not an email address)\n  \
             line 5 (A4): 'de' is not a language cocreate writes in (use sq for Albanian or en for English)\n  \
             line 6 (A1): repeats registration number A1 from line 2\n  \
             line 7: has no registration number\n\
             Imported with a note (1):\n  \
             line 8 (A7): 'gabim@' is not an email address; it was left out\n\
             Added 2, updated 0, unchanged 0, inactivated 0, skipped 5.\n",
            file.display()
        )
    );
}

#[test]
fn a_windows_1250_excel_export_with_semicolons_keeps_albanian_letters() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let text = "Nr. i regjistrimit;Emërtimi;E-mail;Qyteti;Fushat e veprimtarisë\r\n\
                L1;Shoqata Çelësi i Së Ardhmes;info@celesi.al;Korçë;Të drejtat e njeriut\r\n\
                L2;Qendra për Zhvillim Rajonal;qzhr@x.al;Gjirokastër;Zhvillim rural\r\n";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1250.encode(text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&bytes).is_err(), "really not UTF-8");
    let file = write(dir.path(), "excel.csv", &bytes);
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("separated by ';'"),
        "{}",
        stdout(&out)
    );
    let list = stdout(&cocreate(dir.path(), &db, &["registry", "list"]));
    assert!(list.contains("Shoqata Çelësi i Së Ardhmes"), "{list}");
    assert!(list.contains("Korçë"), "{list}");
    assert!(list.contains("Gjirokastër"), "{list}");
}

#[test]
fn utf8_with_a_byte_order_mark_and_windows_1252_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let bom = write(
        dir.path(),
        "bom.csv",
        "\u{feff}Registration number,Name,Email\nB1,Shoqata Ëndrra,e@x.al\n",
    );
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", "--partial", bom.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (bytes, _, _) = encoding_rs::WINDOWS_1252
        .encode("Registration number;Name;Email\nB2;Associação Française Ç;f@x.al\n");
    let latin = write(dir.path(), "latin.csv", &bytes);
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", "--partial", latin.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&cocreate(dir.path(), &db, &["registry", "list"]));
    assert!(list.contains("Shoqata Ëndrra"), "{list}");
    assert!(list.contains("Associação Française Ç"), "{list}");
}

#[test]
fn a_truncated_last_line_is_reported_and_the_rest_imports() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let mut csv = registry_csv(1, 3);
    csv.push_str("REG-000004,Shoqata Nr. 4,info4@x.al,+355");
    let file = write(dir.path(), "cut.csv", csv);
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "line 5 (REG-000004): has only 4 of the header's 7 columns (the line looks cut off)"
        ),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("Added 3, updated 0, unchanged 0, inactivated 0, skipped 1."));

    // Cut inside a quoted field: the rest of the file is one cell.
    let mut csv = registry_csv(1, 3);
    csv.push_str("REG-000004,\"Shoqata Nr. 4");
    let file = write(dir.path(), "cut2.csv", csv);
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("the line looks cut off"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn empty_and_zero_byte_files_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    for (name, bytes) in [("zero.csv", &b""[..]), ("blank.csv", b"\r\n\r\n  \n")] {
        let file = write(dir.path(), name, bytes);
        let out = cocreate(
            dir.path(),
            &db,
            &["registry", "import", file.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out),
            format!(
                "error: {} was not imported: the file is empty\n",
                file.display()
            )
        );
    }
    let header_only = write(dir.path(), "header.csv", "Registration number,Name,Email\n");
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", header_only.to_str().unwrap()],
    );
    assert!(stderr(&out).ends_with("was not imported: the file has a header but no rows\n"));
    let missing = cocreate(dir.path(), &db, &["registry", "import", "nowhere.csv"]);
    assert_eq!(
        stderr(&missing),
        "error: cannot read nowhere.csv: No such file or directory (os error 2)\n"
    );
    assert_eq!(
        active_count(dir.path(), &db),
        "0 active organisations, 0 inactive."
    );
}

#[test]
fn ten_thousand_duplicate_registration_numbers_are_summarised_and_fully_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let mut csv = String::from("Registration number,Name,Email\n");
    for i in 0..10_001 {
        csv.push_str(&format!("SAME-1,Shoqata {i},s{i}@x.al\n"));
    }
    let file = write(dir.path(), "dups.csv", csv);
    let report = dir.path().join("problems.csv");
    let out = cocreate(
        dir.path(),
        &db,
        &[
            "registry",
            "import",
            file.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Skipped rows (10,000):"), "{text}");
    assert!(text.contains("line 3 (SAME-1): repeats registration number SAME-1 from line 2"));
    assert!(text.contains(&format!(
        "… and 9,980 more, all listed in {}",
        report.display()
    )));
    assert!(text.contains("Added 1, updated 0, unchanged 0, inactivated 0, skipped 10,000."));
    assert_eq!(
        text.lines().count(),
        1 + 1 + 20 + 1 + 1,
        "the terminal is not flooded"
    );
    let mut rows = csv::Reader::from_path(&report).unwrap();
    assert_eq!(rows.records().count(), 10_000);
    assert_eq!(
        active_count(dir.path(), &db),
        "1 active organisations, 0 inactive."
    );
}

#[test]
fn a_dry_run_reports_everything_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let file = write(dir.path(), "r.csv", registry_csv(1, 12));
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", "--dry-run", file.to_str().unwrap()],
    );
    let shown = stdout(&out);
    assert!(
        shown.contains(
            "Added 12, updated 0, unchanged 0, inactivated 0, skipped 0.\nWould change:\n  REG-000001 Shoqata Nr. 1 për Transparencë: add\n"
        ),
        "{shown}"
    );
    assert!(
        shown.ends_with(
            "REG-000012 Shoqata Nr. 12 për Transparencë: add\nDry run: nothing was written.\n"
        ),
        "{shown}"
    );
    assert_eq!(
        active_count(dir.path(), &db),
        "0 active organisations, 0 inactive."
    );
}

#[test]
fn match_explains_relevance_and_an_override_survives_a_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let file = write(
        dir.path(),
        "r.csv",
        "Registration number,Name,Email,Fields of activity\n\
         K1,Qendra Kundër Korrupsionit,k1@x.al,Antikorrupsion; Transparencë\n\
         S1,Klubi Sportiv,s1@x.al,Sport\n",
    );
    cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "match", "--policy-area", "anticor"],
    );
    let text = stdout(&out);
    assert!(text.contains("  directly relevant (1):\n    K1             Qendra Kundër Korrupsionit — matched: antikorrupsion*"), "{text}");
    assert!(!text.contains("S1"), "{text}");

    let set = cocreate(
        dir.path(),
        &db,
        &[
            "registry",
            "relevance",
            "set",
            "s1",
            "ANTICOR",
            "indirect",
            "--reason",
            "Runs the integrity in sport programme",
        ],
    );
    assert!(set.status.success(), "{}", stderr(&set));
    cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    let text = stdout(&cocreate(
        dir.path(),
        &db,
        &["registry", "match", "--policy-area", "ANTICOR"],
    ));
    assert!(
        text.contains(
            "S1             Klubi Sportiv — set by the POC: Runs the integrity in sport programme"
        ),
        "{text}"
    );

    let unknown = cocreate(
        dir.path(),
        &db,
        &["registry", "match", "--policy-area", "SPORT"],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        stderr(&unknown),
        "error: there is no policy area 'SPORT' in the built-in default config (known: ANTICOR, SERVICES, OPENDATA, FISCAL, PARTICIP)\n"
    );
    let no_reason = cocreate(
        dir.path(),
        &db,
        &[
            "registry",
            "relevance",
            "set",
            "K1",
            "FISCAL",
            "direct",
            "--reason",
            " ",
        ],
    );
    assert_eq!(
        stderr(&no_reason),
        "error: give a reason with --reason, so the decision can be explained later\n"
    );
}

#[test]
fn the_readme_example_imports_as_documented() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let example = readme
        .split("```csv\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has a csv example");
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let file = write(dir.path(), "example.csv", example);
    let out = cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    assert!(
        stdout(&out).contains("Added 2, updated 0, unchanged 0, inactivated 0, skipped 0."),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let list = stdout(&cocreate(dir.path(), &db, &["registry", "list"]));
    assert!(
        list.contains("<hello@ypn.example.org, director@ypn.example.org>"),
        "{list}"
    );
}

#[test]
fn several_imports_at_once_on_one_sqlite_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    // Create the schema first, so the processes race on data, not migrations.
    cocreate(dir.path(), &db, &["registry", "list"]);
    let children: Vec<_> = (0..6)
        .map(|i| {
            let file = write(
                dir.path(),
                &format!("part{i}.csv"),
                registry_csv(i * 1000, 1000),
            );
            common::command(dir.path(), &db)
                .args(["registry", "import", "--partial", file.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("Added 1,000"), "{}", stdout(&out));
    }
    assert_eq!(
        active_count(dir.path(), &db),
        "6,000 active organisations, 0 inactive."
    );
}

#[test]
fn an_import_killed_midway_leaves_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "big.csv", registry_csv(1, 30_000));
    for delay_ms in [50, 150, 300, 600, 1200] {
        let db = TestDb::sqlite();
        cocreate(dir.path(), &db, &["registry", "list"]);
        let mut child = common::command(dir.path(), &db)
            .args(["registry", "import", file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no chance to clean up
        let _ = child.wait();
        let count = active_count(dir.path(), &db);
        assert!(
            count == "0 active organisations, 0 inactive."
                || count == "30,000 active organisations, 0 inactive.",
            "killed after {delay_ms} ms: {count}"
        );
    }
}

/// Excel saves CSV with CRLF line ends: a skipped row's line, on the
/// terminal and in --report, is the line the POC finds in an editor.
#[test]
fn line_numbers_in_an_excel_file_with_crlf_are_the_lines_an_editor_shows() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let file = write(
        dir.path(),
        "excel.csv",
        "NIPT;Emri;Email\r\nA1;Shoqata Një;nje@x.al\r\nA2;;dy@x.al\r\n\r\nA4;Shoqata Katër;kater-x.al\r\n",
    );
    let report = dir.path().join("report.csv");
    let out = ok(
        dir.path(),
        &db,
        &[
            "registry",
            "import",
            file.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    let shown = out;
    assert!(shown.contains("  line 3 (A2): has no name\n"), "{shown}");
    assert!(
        shown.contains("  line 5 (A4): has no valid email address"),
        "{shown}"
    );
    let report = std::fs::read_to_string(report).unwrap();
    let lines: Vec<&str> = report
        .lines()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(lines, ["line", "3", "5"], "{report}");
}

/// An Albanian registry saved by Excel on Albanian Windows is Windows-1250;
/// a few organisations with č and ć must not come out with è and æ, and
/// the POC is told which encoding was chosen and how to choose the other.
#[test]
fn a_windows_1250_file_is_not_read_as_1252_and_the_choice_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let mut text = String::from("Nr. i regjistrimit;Emërtimi;E-mail;Qyteti\r\n");
    for i in 0..30 {
        text += &format!("L{i};Shoqata për Mbrojtjen e Fëmijëve {i};s{i}@x.al;Korçë\r\n");
    }
    text += "M1;Udruženje Kovačević i Ćorović;m@x.me;Tuzi\r\n";
    let (bytes, _, _) = encoding_rs::WINDOWS_1250.encode(&text);
    let file = write(dir.path(), "excel.csv", &bytes);
    let out = ok(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    assert!(
        out.contains(
            "(windows-1250, separated by ';').\nThe file is not UTF-8: it was read as windows-1250 by the letters it uses; if names look wrong (č as è, ć as æ), run again with --encoding windows-1252.\n"
        ),
        "{}",
        out
    );
    let list = stdout(&cocreate(dir.path(), &db, &["registry", "list"]));
    assert!(list.contains("Udruženje Kovačević i Ćorović"), "{list}");
    assert!(
        list.contains("Shoqata për Mbrojtjen e Fëmijëve 7"),
        "{list}"
    );
}

/// Before the real import, the POC sees who would be added, what would
/// change for whom (old → new) and who would be marked inactive: on the
/// terminal, in --changes and in --json.
#[test]
fn a_dry_run_lists_each_change_with_old_and_new_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let first = write(
        dir.path(),
        "first.csv",
        "NIPT,Emri,Email,Qyteti\nA1,Shoqata Një,nje@x.al,Tiranë\nA2,Shoqata Dy,dy@x.al,Durrës\nA3,Shoqata Tre,tre@x.al,Vlorë\n",
    );
    ok(
        dir.path(),
        &db,
        &["registry", "import", first.to_str().unwrap()],
    );
    let second = write(
        dir.path(),
        "second.csv",
        "NIPT,Emri,Email,Qyteti\nA1,Shoqata Një,nje@x.al,Tiranë\nA2,Shoqata e Dytë,dy@x.al,Shkodër\nA4,Shoqata Katër,kater@x.al,Fier\n",
    );
    let changes = dir.path().join("changes.csv");
    let out = ok(
        dir.path(),
        &db,
        &[
            "registry",
            "import",
            "--dry-run",
            second.to_str().unwrap(),
            "--changes",
            changes.to_str().unwrap(),
        ],
    );
    assert!(
        out.ends_with(
            "Added 1, updated 1, unchanged 1, inactivated 1, skipped 0.\n\
             Would change:\n  \
             A2 Shoqata e Dytë: name 'Shoqata Dy' → 'Shoqata e Dytë'; city 'Durrës' → 'Shkodër'\n  \
             A4 Shoqata Katër: add\n  \
             A3 Shoqata Tre: mark inactive\n\
             Dry run: nothing was written.\n"
        ),
        "{}",
        out
    );
    assert_eq!(
        std::fs::read_to_string(&changes).unwrap(),
        "registration_no,name,change,field,old,new\n\
         A2,Shoqata e Dytë,updated,name,Shoqata Dy,Shoqata e Dytë\n\
         A2,Shoqata e Dytë,updated,city,Durrës,Shkodër\n\
         A4,Shoqata Katër,added,,,\n\
         A3,Shoqata Tre,inactivated,,,\n"
    );
    let json = cocreate(
        dir.path(),
        &db,
        &[
            "registry",
            "import",
            "--dry-run",
            "--json",
            second.to_str().unwrap(),
        ],
    );
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        summary["changes"][0],
        serde_json::json!({
            "change": "updated", "registration_no": "A2", "name": "Shoqata e Dytë",
            "fields": [
                {"field": "name", "old": "Shoqata Dy", "new": "Shoqata e Dytë"},
                {"field": "city", "old": "Durrës", "new": "Shkodër"}
            ]
        })
    );
    assert_eq!(summary["changes"][2]["change"], "inactivated");
    // Nothing was written: the first file's names are still there.
    let list = stdout(&cocreate(dir.path(), &db, &["registry", "list"]));
    assert!(list.contains("Shoqata Dy"), "{list}");
}
