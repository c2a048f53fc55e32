//! Fixed round trips of a sync, counted at the services: proxies in front of Upstash and
//! PostgREST count every request they forward. A sync that fits one SCAN page and one batch
//! costs 4 subrequests (Upstash: lock + first SCAN page; values + unlock. Supabase: begin;
//! last batch + deactivations + finish), and the lock, the lease that covers the Supabase
//! writes after the unlock, and the run record hold on every path.

use chrono::{Duration, Utc};
use token_manager::jobs::restore::{restore, RestoreOptions};
use token_manager::jobs::sync::sync;
use token_manager::jobs::{JobError, Services, Trigger};
use token_manager::store::SyncBegin;

use crate::support::faults::{nth, Fault, FaultProxy};
use crate::support::{demo_tokens, jwt, var, TestStack};

/// Services whose Upstash and PostgREST requests go through counting proxies.
struct Counted {
    services: Services,
    upstash: FaultProxy,
    postgrest: FaultProxy,
}

impl Counted {
    async fn start(stack: &TestStack) -> Self {
        let upstash = FaultProxy::start(var("TM_TEST_UPSTASH_URL"), |_| Fault::Forward).await;
        let postgrest = FaultProxy::start(var("TM_TEST_POSTGREST_URL"), |_| Fault::Forward).await;
        let services = Services::new(stack.config_with(&[
            ("UPSTASH_REDIS_REST_URL", &upstash.url),
            ("SUPABASE_REST_URL", &postgrest.url),
        ]));
        Self {
            services,
            upstash,
            postgrest,
        }
    }

    /// Requests each service received so far: (Upstash, PostgREST).
    fn received(&self) -> (usize, usize) {
        (self.upstash.requests(), self.postgrest.requests())
    }
}

#[tokio::test]
async fn a_sync_of_22_tokens_costs_4_subrequests_new_unchanged_or_changed() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    stack.seed(&demo_tokens(exp));
    let counted = Counted::start(&stack).await;
    let services = &counted.services;

    let first = sync(services, Trigger::Http).await.unwrap();
    assert_eq!((first.inserted, first.tokens_synced), (22, 22));
    assert_eq!(counted.received(), (2, 2), "first sync: Upstash, PostgREST");
    assert_eq!(services.subrequests.count(), 4);
    assert!(!stack.lock_held());

    let again = sync(services, Trigger::Http).await.unwrap();
    assert_eq!((again.unchanged, again.inserted, again.updated), (22, 0, 0));
    assert_eq!(counted.received(), (4, 4), "a sync with nothing to write");

    stack.set("token:APEX_7000001", jwt("new", exp).as_str());
    stack.del("token:PAAPEX1361890000001");
    let changed = sync(services, Trigger::Http).await.unwrap();
    assert_eq!(
        (changed.inserted, changed.updated, changed.deactivated),
        (1, 0, 1)
    );
    assert_eq!(
        counted.received(),
        (6, 6),
        "a sync that writes and deactivates"
    );
    assert_eq!(services.subrequests.count(), 12);
    assert!(!stack.lock_held());

    // Every run is recorded with its counts, the last batch's included (Postgres adds them).
    let runs = stack
        .query(
            "select status, outcome, tokens_seen, inserted, updated, unchanged, deactivated,
                    lock_expires_at is null as lease_ended
               from sync_runs where kind = 'sync' order by started_at",
        )
        .await;
    let shape: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap(),
                r["inserted"].as_i64(),
                r["updated"].as_i64(),
                r["unchanged"].as_i64(),
                r["deactivated"].as_i64(),
                r["lease_ended"].as_bool(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("succeeded", Some(22), Some(0), Some(0), Some(0), Some(true)),
            ("succeeded", Some(0), Some(0), Some(22), Some(0), Some(true)),
            ("succeeded", Some(1), Some(0), Some(21), Some(1), Some(true)),
        ]
    );
    println!(
        "round trips: 22 tokens: Upstash 2 + PostgREST 2 = 4 subrequests per sync (new, unchanged, changed)"
    );
}

#[tokio::test]
async fn failed_syncs_still_record_their_runs_and_free_the_lock() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));

    // 1. The last value pipeline (which carries the unlock) fails: nothing written, the run
    //    recorded as failed, the lock released by a request of its own.
    let upstash = FaultProxy::start(
        var("TM_TEST_UPSTASH_URL"),
        nth(1, |r| r.path == "/pipeline", Fault::Answer(500)),
    )
    .await;
    let services = Services::new(stack.config_with(&[("UPSTASH_REDIS_REST_URL", &upstash.url)]));
    let failed = sync(&services, Trigger::Http).await;
    assert!(matches!(failed, Err(JobError::Upstash(_))), "{failed:?}");
    let run = stack.last_run("sync").await;
    assert_eq!(
        (run["status"].as_str(), run["finished"].as_bool()),
        (Some("failed"), Some(true))
    );
    assert_eq!(stack.count("select 1 from tradovate_tokens").await, 0);
    assert!(!stack.lock_held(), "the failed run left its lock");
    assert_eq!(upstash.applied().len(), 1);
    // Lock + SCAN, values (failed), the unlock on its own.
    assert_eq!(upstash.requests(), 3);

    // 2. The last call (last batch + finish) fails: nothing of it written, the run recorded as
    //    failed by a second call, which also ends its lease: the next sync runs at once.
    let postgrest = FaultProxy::start(
        var("TM_TEST_POSTGREST_URL"),
        nth(
            0,
            |r| r.path.starts_with("/rpc/token_manager_finish_sync"),
            Fault::Answer(503),
        ),
    )
    .await;
    let services = Services::new(stack.config_with(&[("SUPABASE_REST_URL", &postgrest.url)]));
    let failed = sync(&services, Trigger::Http).await;
    assert!(matches!(failed, Err(JobError::Store(_))), "{failed:?}");
    let run = stack
        .query("select status, error, lock_expires_at is null as lease_ended from sync_runs order by started_at desc limit 1")
        .await;
    assert_eq!(
        (run[0]["status"].as_str(), run[0]["lease_ended"].as_bool()),
        (Some("failed"), Some(true)),
        "{run:?}"
    );
    assert!(run[0]["error"].as_str().unwrap().contains("503"));
    assert_eq!(stack.count("select 1 from tradovate_tokens").await, 0);
    assert!(!stack.lock_held());
    assert_eq!(
        postgrest.requests(),
        3,
        "begin, finish (failed), the failure's record"
    );
    let report = sync(&stack.services(), Trigger::Http).await.unwrap();
    assert_eq!(report.inserted, 22);
}

#[tokio::test]
async fn the_lease_refuses_syncs_and_restores_until_it_ends_or_expires() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();

    // A sync that released the Redis lock and is still writing to Supabase: its run holds
    // the lease. Another sync takes the free Redis lock but is refused by the lease, records
    // nothing and gives the lock back; a restore is refused too.
    let Ok(SyncBegin::Started(writing)) = services.store.begin_sync("http", 60_000).await else {
        panic!("the first begin starts a run");
    };
    let runs = stack.count("select 1 from sync_runs").await;
    let refused = sync(&services, Trigger::Http).await;
    assert!(
        matches!(refused, Err(JobError::SyncInProgress { .. })),
        "{refused:?}"
    );
    let refused = restore(&services, Trigger::Http, RestoreOptions::default()).await;
    assert!(
        matches!(refused, Err(JobError::SyncInProgress { .. })),
        "{refused:?}"
    );
    assert_eq!(stack.count("select 1 from sync_runs").await, runs);
    assert!(
        !stack.lock_held(),
        "a refused sync or restore kept the lock"
    );
    // A dry run only reads: not refused.
    let dry = RestoreOptions {
        dry_run: true,
        ..RestoreOptions::default()
    };
    restore(&services, Trigger::Http, dry).await.unwrap();

    // The lease of a run that died expires like the lock: then syncs run again, and the dead
    // run, should it come back, is refused (fencing): it writes nothing.
    stack
        .pg
        .batch_execute(&format!(
            "update sync_runs set lock_expires_at = now() - interval '1 second' where id = '{}'",
            writing.run_id
        ))
        .await
        .unwrap();
    stack.del("token:PAAPEX1361890000002");
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!((report.unchanged, report.deactivated), (21, 1));
    let stale = services
        .store
        .finish_sync(
            &writing.run_id,
            true,
            &[],
            &["APEX_136189".to_string()],
            serde_json::json!({}),
            None,
        )
        .await;
    let error = stale.expect_err("a run that outlived its lease is fenced off");
    assert!(error.to_string().contains("newer sync"), "{error}");
    assert_eq!(
        stack
            .count("select 1 from tradovate_tokens where is_active")
            .await,
        21,
        "the fenced run deactivated nothing"
    );
}
