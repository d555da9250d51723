//! Sweep unit tests: point order, run identities, the ordered executor and the
//! checkpoint reader (the sections' validation is tested with the scenario).

use super::*;
use crate::scenario::{load_str, ScenarioDocument};

const SMALL: &str = include_str!("../../tests/data/sweep-small.toml");

fn doc(text: &str) -> ScenarioDocument {
    load_str("t.toml", text, &[]).unwrap_or_else(|e| panic!("expected valid:\n{e}"))
}

#[test]
fn the_full_example_sweep_is_valid() {
    let d = doc(include_str!("../../tests/data/full.toml"));
    let sw = Sweep::from_document(&d, None).unwrap();
    assert_eq!((sw.points().len(), sw.seeds), (3, 10));
    assert_eq!(sw.strategies[0].name, "paced");
}

#[test]
fn points_are_the_grid_product_in_declaration_order() {
    let d = doc(SMALL);
    let sw = Sweep::from_document(&d, None).unwrap();
    assert_eq!(sw.seeds, 4);
    assert_eq!(sw.points().len(), 6);
    let labels: Vec<String> = sw.points().iter().map(|p| p.labels.join("/")).collect();
    assert_eq!(
        labels,
        [
            "all-at-once/1",
            "all-at-once/3",
            "all-at-once/10",
            "batches/1",
            "batches/3",
            "batches/10"
        ]
    );
    assert_eq!(sw.x.as_deref(), Some("ca.pca.rate_limit_per_s"));
    assert_eq!(sw.group, ["strategy"]);
    // A point is the document with the strategy's bundle and the value applied.
    let p = &sw.points()[4];
    let expected = d
        .with_overrides(&[
            crate::scenario::Override::parse("rollout.pacing=batches").unwrap(),
            crate::scenario::Override::parse("rollout.batch_size=20").unwrap(),
            crate::scenario::Override::parse("rollout.batch_interval=20s").unwrap(),
            crate::scenario::Override::parse("ca.pca.rate_limit_per_s=3").unwrap(),
        ])
        .unwrap();
    assert_eq!(p.scenario(), expected.scenario);
    assert_eq!(p.scenario_hash, expected.hash);
    // Common random numbers: the same seeds at every point.
    assert_eq!(
        sw.run_id(13),
        RunId {
            index: 13,
            point: 3,
            seed_index: 1,
            seed: 8
        }
    );
    assert_eq!(sw.run_id(1).seed, sw.run_id(13).seed);
    assert_eq!(sw.runs(), 24);
    let cmd = sw.replay_command(13);
    assert!(
        cmd.starts_with("fleetsim run t.toml --seed 8 --set 'rollout.pacing=\"batches\"'"),
        "{cmd}"
    );
}

#[test]
fn seeds_flag_replaces_the_section() {
    let d = doc(SMALL);
    let sw = Sweep::from_document(&d, Some(2)).unwrap();
    assert_eq!(sw.runs(), 12);
    let e = Sweep::from_document(&doc(SMALL), Some(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sweep.seeds: must be 1..="), "{e}");
}

#[test]
fn executor_hands_results_over_in_index_order_for_any_pool() {
    let d = doc(SMALL);
    let sw = Sweep::from_document(&d, Some(3)).unwrap();
    let collect = |threads: usize, sel: RunSelection| {
        let pool = pool(threads).unwrap();
        let mut rows = Vec::new();
        execute(&sw, sel, &pool, |r| {
            rows.push(table::run_record(&sw, &r));
            Ok::<(), ()>(())
        })
        .unwrap();
        rows
    };
    let one = collect(1, RunSelection::all(sw.runs()));
    let two = collect(2, RunSelection::all(sw.runs()));
    assert_eq!(one, two);
    let indices: Vec<String> = one.iter().map(|r| r[0].clone()).collect();
    let expected: Vec<String> = (0..sw.runs()).map(|i| i.to_string()).collect();
    assert_eq!(indices, expected);
    let shard = collect(
        2,
        RunSelection::shard(sw.runs(), Shard { index: 1, count: 4 }),
    );
    let every_fourth: Vec<_> = one.iter().skip(1).step_by(4).cloned().collect();
    assert_eq!(shard, every_fourth);
}

#[test]
fn executor_stops_at_the_first_sink_error() {
    let d = doc(SMALL);
    let sw = Sweep::from_document(&d, Some(20)).unwrap();
    let pool = pool(2).unwrap();
    let mut seen = 0;
    let r = execute(&sw, RunSelection::all(sw.runs()), &pool, |res| {
        seen += 1;
        if res.id.index == 5 {
            Err("disk full")
        } else {
            Ok(())
        }
    });
    assert_eq!(r, Err("disk full"));
    assert_eq!(seen, 6);
}

#[test]
fn checkpoint_drops_a_cut_off_last_row_and_refuses_foreign_rows() {
    let d = doc(SMALL);
    let sw = Sweep::from_document(&d, Some(2)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pool = pool(2).unwrap();
    let out = run_into_dir(&sw, Shard::WHOLE, dir, false, &pool, &mut |_| {}).unwrap();
    assert_eq!(out.ran, 12);
    let full = std::fs::read_to_string(dir.join(RUNS)).unwrap();
    let curves = std::fs::read_to_string(dir.join(CURVES)).unwrap();
    // Simulate a kill: 5 rows and half of the sixth.
    let cut: usize = full.match_indices('\n').nth(5).unwrap().0 + 1;
    let half = cut + 20;
    std::fs::remove_file(dir.join(RUNS)).unwrap();
    std::fs::write(dir.join(RUNS_PARTIAL), &full[..half]).unwrap();
    let out = run_into_dir(&sw, Shard::WHOLE, dir, true, &pool, &mut |_| {}).unwrap();
    assert_eq!((out.resumed, out.ran), (5, 7));
    assert_eq!(std::fs::read_to_string(dir.join(RUNS)).unwrap(), full);
    assert_eq!(std::fs::read_to_string(dir.join(CURVES)).unwrap(), curves);
    // Killed before the header was complete.
    std::fs::remove_file(dir.join(RUNS)).unwrap();
    std::fs::write(dir.join(RUNS_PARTIAL), &full[..10]).unwrap();
    let out = run_into_dir(&sw, Shard::WHOLE, dir, true, &pool, &mut |_| {}).unwrap();
    assert_eq!((out.resumed, out.ran), (0, 12));
    assert_eq!(std::fs::read_to_string(dir.join(RUNS)).unwrap(), full);
    // A row that is not this sweep's.
    std::fs::remove_file(dir.join(RUNS)).unwrap();
    let tampered = full[..cut].replacen("\n1,0,all-at-once,1,8,", "\n1,0,all-at-once,1,9,", 1);
    assert_ne!(tampered, full[..cut]);
    std::fs::write(dir.join(RUNS_PARTIAL), tampered).unwrap();
    let e = run_into_dir(&sw, Shard::WHOLE, dir, true, &pool, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 3: expected run 1 (point 0, seed 8)"),
        "{e}"
    );
}
