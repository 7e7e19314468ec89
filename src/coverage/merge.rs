//! Combining coverage: a report's files re-keyed by repository path, and several reports or
//! uploads for one commit merged line by line (hits summed). The original replaced whole files
//! (and whole uploads), so parallel CI jobs could not each contribute part of the coverage.

use std::collections::{BTreeMap, HashMap};

use super::paths::Mapping;
use super::{FileCoverage, Report, Totals};

/// Coverage keyed by repository path.
pub type CommitCoverage = BTreeMap<String, FileCoverage>;

/// Re-keys a report by repository path using `mapping`; unmatched files are dropped (the
/// mapping lists them), and report paths that land on one repository file are merged.
pub fn remap(report: Report, mapping: &Mapping) -> CommitCoverage {
    let targets: HashMap<&str, &str> = mapping
        .matched
        .iter()
        .map(|(from, to)| (from.as_str(), to.as_str()))
        .collect();
    let mut out = CommitCoverage::new();
    for (path, coverage) in report.files {
        let Some(target) = targets.get(path.as_str()) else {
            continue;
        };
        match out.get_mut(*target) {
            Some(existing) => existing.merge(&coverage),
            None => {
                out.insert((*target).to_string(), coverage);
            }
        }
    }
    out
}

/// Adds `other` into `acc` line by line.
pub fn merge_into(acc: &mut CommitCoverage, other: &CommitCoverage) {
    for (path, coverage) in other {
        match acc.get_mut(path) {
            Some(existing) => existing.merge(coverage),
            None => {
                acc.insert(path.clone(), coverage.clone());
            }
        }
    }
}

/// Sum of the files' totals (the commit's coverage).
pub fn totals(files: &CommitCoverage) -> Totals {
    let mut t = Totals::default();
    for f in files.values() {
        t.add(&f.totals());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::paths::{GoModule, map_report};
    use crate::coverage::{Format, Line, parse};

    fn sample(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/coverage/original/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(path).unwrap()
    }

    /// The reference's test vectors end to end: detect, parse, map onto a stand-in tree, encode.
    #[test]
    fn original_samples_end_to_end() {
        let cases: [(&str, &[&str], &str, &str); 4] = [
            (
                "cobertura.xml",
                &["src/config.js", "README.md"],
                "src/config.js",
                "MgAAAAAAMg==",
            ),
            ("c.out", &["main.go", "go.mod"], "main.go", "AAAxHjEeMQ=="),
            (
                "coverage.lcov",
                &["main.go", "go.mod"],
                "main.go",
                "AAAxHjEeMQ==",
            ),
            (
                "simplecov-coverage.json",
                &["app/controllers/application_controller.rb", "Gemfile"],
                "app/controllers/application_controller.rb",
                "AAAxHjEeMQAxHjIAADEeMzQAADEAODgAADg4ADg4AAAAMQAb",
            ),
        ];
        let go = GoModule::from_go_mod("go.mod", "module github.com/cocov-ci/golang-sample\n");
        let modules: Vec<GoModule> = go.into_iter().collect();
        for (name, tree, key, wire) in cases {
            let report = parse(None, &sample(name)[..]).unwrap();
            let mapping = map_report(&report, tree, &modules);
            assert!(mapping.unmatched.is_empty(), "{name}: {mapping:?}");
            let files = remap(report, &mapping);
            assert_eq!(files[key].encode_wire(), wire, "{name}");
        }
    }

    #[test]
    fn original_jacoco_sample_end_to_end() {
        let report = parse(None, &sample("jacocoTestReport.xml")[..]).unwrap();
        assert_eq!(report.format, Format::Jacoco);
        let base = "app/src/main/kotlin/com/company/project/batch/parsing";
        let tree = [
            format!("{base}/FileWithNoExecutableCode.kt"),
            format!("{base}/ParsedBatchWriter.kt"),
        ];
        let mapping = map_report(&report, &tree, &[]);
        assert!(mapping.unmatched.is_empty(), "{mapping:?}");
        let mut files = remap(report, &mapping);
        // Pad with the stand-in sources' newline counts, as the original did.
        for (path, newlines) in [(&tree[0], 6), (&tree[1], 17)] {
            files.get_mut(path.as_str()).unwrap().pad_to(newlines);
        }
        assert_eq!(files[&tree[0]].encode_wire(), "AAAAAAAA");
        assert_eq!(
            files[&tree[1]].encode_wire(),
            "AAAAAAAAOQA1HjQeMx4xAAAzHjEA"
        );
        assert_eq!(totals(&files).lines_total, 7);
    }

    #[test]
    fn paths_landing_on_one_file_and_uploads_merge() {
        let lcov = "SF:/ci/src/a.c\nDA:1,1\nDA:2,0\nend_of_record\nSF:src/a.c\nDA:2,2\n\
                    end_of_record\nSF:/elsewhere/b.c\nDA:1,0\nend_of_record\n";
        let report = parse(None, lcov.as_bytes()).unwrap();
        let mapping = map_report(&report, &["src/a.c"], &[]);
        assert_eq!(mapping.unmatched, ["/elsewhere/b.c"]);
        let mut job1 = remap(report, &mapping);
        assert_eq!(
            job1["src/a.c"].lines().collect::<Vec<_>>(),
            [Line::Hits(1), Line::Hits(2)]
        );
        let job2: CommitCoverage = [(
            "src/a.c".to_string(),
            FileCoverage::from_lines([Line::Hits(0), Line::Hits(0), Line::Hits(0)]),
        )]
        .into_iter()
        .collect();
        merge_into(&mut job1, &job2);
        let t = totals(&job1);
        assert_eq!((t.lines_total, t.lines_covered, t.lines_missed), (3, 2, 1));
    }
}
